"""Local control plane, validation layer: the static checks kube runs on CEL rules at CRD creation.

Field references through ``self``/``oldSelf`` must exist in the schema (unless it preserves
unknown fields) and functions must be known, else the rule does not compile and the CRD is
rejected with cel-go's ``ERROR: <input>:1:5: undefined field 'x'`` style message.
"""

from __future__ import annotations

from typing import Any

from lark import Token, Tree

from .celfuncs import FUNCTIONS, METHODS

__all__ = ["KNOWN_FUNCTIONS", "check_rule", "syntax_error"]

# Standard CEL and Kubernetes CEL library functions; some run only through cel-python.
KNOWN_FUNCTIONS = frozenset(
    {
        *FUNCTIONS, *METHODS,
        "all", "exists", "exists_one", "map", "filter", "has", "dyn", "type", "bytes",
        "duration", "timestamp", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
        "getFullYear", "getHours", "getMilliseconds", "getMinutes", "getMonth", "getSeconds",
        "quantity", "isQuantity", "url", "isURL", "getScheme", "getHost", "getHostname",
        "getPort", "getEscapedPath", "getQuery", "ip", "isIP", "cidr", "isCIDR", "format",
        "reverse", "optional", "orValue", "hasValue", "value", "sets", "add", "asInteger",
        "asApproximateFloat", "isGreaterThan", "isLessThan", "compareTo", "sign",
    }
)  # fmt: skip


def syntax_error(exc: Exception) -> str:
    """cel-python's parse error in cel-go's words."""
    line = getattr(exc, "line", 1) or 1
    column = getattr(exc, "column", 0) or 0
    first = str(exc.args[0] if exc.args else exc).splitlines()[0].strip()
    return f"ERROR: <input>:{line}:{column}: Syntax error: {first}"


def check_rule(tree: Tree[Any], schema: dict[str, Any]) -> str | None:
    """The first static error of a parsed rule against its node's schema, or None."""
    try:
        _walk(tree, schema)
    except _CheckError as exc:
        return str(exc)
    return None


class _CheckError(Exception):
    pass


def _walk(node: Any, schema: dict[str, Any]) -> dict[str, Any] | None:
    """Check ``node``; return the schema its value has when it is a path through self."""
    if isinstance(node, Token):
        return None
    data = node.data
    if data == "ident":
        return schema if str(node.children[0]) in ("self", "oldSelf") else None
    if data == "member_dot":
        target = _walk(node.children[0], schema)
        return _field(target, node.children[1]) if target is not None else None
    if data == "member_index":
        target = _walk(node.children[0], schema)
        _walk(node.children[1], schema)
        if target is None:
            return None
        items = target.get("items") if target.get("type") == "array" else None
        extra = target.get("additionalProperties")
        return items if isinstance(items, dict) else extra if isinstance(extra, dict) else None
    if data in ("member_dot_arg", "ident_arg"):
        name_index = 1 if data == "member_dot_arg" else 0
        name = node.children[name_index]
        if str(name) not in KNOWN_FUNCTIONS:
            raise _CheckError(
                f"ERROR: <input>:{name.line}:{name.column}: undeclared reference to "
                f"'{name}' (in container '')"
            )
    children = [c for c in node.children if c is not None]
    results = [_walk(c, schema) for c in children]
    passthrough = (
        data in ("member", "primary", "paren_expr", "unary", "expr") and len(children) == 1
    )
    if passthrough or (len(children) == 1 and data in _SINGLE):
        return results[0]
    return None


_SINGLE = {"conditionalor", "conditionaland", "relation", "addition", "multiplication"}


# kube's CEL sees only these ObjectMeta fields of a resource.
_CEL_METADATA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "generateName": {"type": "string"}},
}


def _field(schema: dict[str, Any], name_token: Token) -> dict[str, Any] | None:
    name = str(name_token)
    props = schema.get("properties") or {}
    resource = "metadata" in props or bool(schema.get("x-kubernetes-embedded-resource"))
    if resource and name == "metadata":
        return _CEL_METADATA
    if resource and name in ("apiVersion", "kind"):
        return {"type": "string"}
    if name in props:
        found: dict[str, Any] = props[name]
        return found
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    if schema.get("type") == "object" and not schema.get("x-kubernetes-preserve-unknown-fields"):
        if schema.get("x-kubernetes-embedded-resource") and name in (
            "apiVersion",
            "kind",
            "metadata",
        ):
            return None
        raise _CheckError(
            f"ERROR: <input>:{name_token.line}:{(name_token.column or 1) - 1}: "
            f"undefined field '{name}'"
        )
    return None
