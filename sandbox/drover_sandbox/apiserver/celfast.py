"""Local control plane, validation layer: CEL parse trees translated to Python closures.

cel-python's interpreter costs ~0.2 ms per rule; the server validates hundreds of objects a
second. :func:`translate` turns a cel-python parse tree of the common CEL subset (the one CRD
rules use) into closures over plain JSON values; it returns None for anything else, and the
caller then evaluates with cel-python itself.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from lark import Token, Tree

from .celfuncs import FUNCTIONS, METHODS, CelError, CelType, cel_type
from .celops import ADDITION, MULTIPLICATION, RELATIONS, check_int

__all__ = ["CelError", "FastProgram", "translate"]

Env = dict[str, Any]
Node = Callable[[Env], Any]
FastProgram = Callable[[dict[str, Any]], Any]
_MACROS = {"all", "exists", "exists_one", "map", "filter"}
_TYPE_IDENTS = {"int", "uint", "double", "string", "bool", "bytes", "list", "map", "null_type"}


class _Unsupported(Exception):
    """A construct this translator leaves to cel-python."""


def translate(tree: Tree[Any]) -> FastProgram | None:
    """A callable ``f(variables) -> value`` for the tree, or None when unsupported."""
    try:
        node = _compile(tree)
    except _Unsupported:
        return None

    def run(variables: dict[str, Any]) -> Any:
        return node(variables)

    return run


def _compile(tree: Any) -> Node:
    if isinstance(tree, Token):
        raise _Unsupported(tree.type)
    handler = _HANDLERS.get(tree.data)
    if handler is None:
        raise _Unsupported(tree.data)
    return handler(tree)


def _passthrough(tree: Tree[Any]) -> Node:
    children = [c for c in tree.children if c is not None]
    if len(children) == 1:
        return _compile(children[0])
    raise _Unsupported(tree.data)


def _expr(tree: Tree[Any]) -> Node:
    children = [c for c in tree.children if c is not None]
    if len(children) == 1:
        return _compile(children[0])
    cond, yes, no = (_compile(c) for c in children)

    def ternary(env: Env) -> Any:
        test = cond(env)
        if not isinstance(test, bool):
            raise CelError("no such overload")
        return yes(env) if test else no(env)

    return ternary


def _logic(tree: Tree[Any]) -> Node:
    children = [c for c in tree.children if c is not None]
    if len(children) == 1:
        return _compile(children[0])
    left, right = _compile(children[0]), _compile(children[1])
    short = tree.data == "conditionalor"  # True short-circuits ||, False short-circuits &&

    def logic(env: Env) -> Any:
        error: CelError | None = None
        try:
            a = left(env)
            if a is short:
                return short
            if not isinstance(a, bool):
                raise CelError("no such overload")
        except CelError as exc:
            error = exc
        b = right(env)
        if b is short:
            return short
        if not isinstance(b, bool):
            raise CelError("no such overload")
        if error is not None:
            raise error
        return not short

    return logic


def _binary(tree: Tree[Any], table: Mapping[str, Callable[[Any, Any], Any]]) -> Node:
    children = [c for c in tree.children if c is not None]
    if len(children) == 1:
        return _compile(children[0])
    op_tree, rhs = children
    op = table[op_tree.data]
    left, right = _compile(op_tree.children[0]), _compile(rhs)
    return lambda env: op(left(env), right(env))


def _unary(tree: Tree[Any]) -> Node:
    children = [c for c in tree.children if c is not None]
    if len(children) == 1:
        return _compile(children[0])
    op, operand_tree = children
    operand = _compile(operand_tree)
    if op.data == "unary_not":

        def negate(env: Env) -> Any:
            value = operand(env)
            if not isinstance(value, bool):
                raise CelError("no such overload")
            return not value

        return negate

    def minus(env: Env) -> Any:
        value = operand(env)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CelError("no such overload")
        return check_int(-value)

    return minus


def _select(target: Any, name: str) -> Any:
    if isinstance(target, dict):
        if name in target:
            return target[name]
        raise CelError(f"no such key: {name}")
    raise CelError(f"no such key: {name}")


def _member_dot(tree: Tree[Any]) -> Node:
    target_tree, name_token = tree.children
    target, name = _compile(target_tree), str(name_token)
    return lambda env: _select(target(env), name)


def _member_index(tree: Tree[Any]) -> Node:
    target, index = _compile(tree.children[0]), _compile(tree.children[1])

    def lookup(env: Env) -> Any:
        container, key = target(env), index(env)
        if isinstance(container, list):
            if isinstance(key, bool) or not isinstance(key, int):
                raise CelError("no such overload")
            if not 0 <= key < len(container):
                raise CelError(f"index out of bounds: {key}")
            return container[key]
        if isinstance(container, dict):
            if key in container:
                return container[key]
            raise CelError(f"no such key: {key}")
        raise CelError("no such overload")

    return lookup


def _args(tree: Tree[Any] | None) -> list[Any]:
    return [] if tree is None else list(tree.children)


def _member_dot_arg(tree: Tree[Any]) -> Node:
    target_tree, name_token, *rest = tree.children
    name = str(name_token)
    arg_trees = _args(rest[0] if rest else None)
    target = _compile(target_tree)
    if name in _MACROS:
        return _macro(name, target, arg_trees)
    method = METHODS.get(name)
    if method is None:
        raise _Unsupported(name)
    args = [_compile(a) for a in arg_trees]
    return lambda env: method(target(env), *[a(env) for a in args])


def _macro(name: str, target: Node, arg_trees: list[Any]) -> Node:
    if len(arg_trees) not in (2, 3) or (len(arg_trees) == 3 and name != "map"):
        raise _Unsupported(name)
    var = _ident_name(arg_trees[0])
    body = [_compile(a) for a in arg_trees[1:]]

    def items(env: Env) -> list[Any]:
        collection = target(env)
        if isinstance(collection, list | dict):
            return list(collection)
        raise CelError("no such overload")

    def bound(env: Env, item: Any) -> Env:
        scope = dict(env)
        scope[var] = item
        return scope

    def predicate(env: Env, item: Any) -> bool:
        value = body[0](bound(env, item))
        if not isinstance(value, bool):
            raise CelError("no such overload")
        return value

    if name in ("all", "exists"):
        want = name == "exists"

        def quantifier(env: Env) -> bool:
            error: CelError | None = None
            for item in items(env):
                try:
                    if predicate(env, item) is want:
                        return want
                except CelError as exc:
                    error = error or exc
            if error is not None:
                raise error
            return not want

        return quantifier
    if name == "exists_one":
        return lambda env: sum(1 for i in items(env) if predicate(env, i)) == 1
    if name == "filter":
        return lambda env: [i for i in items(env) if predicate(env, i)]
    if len(body) == 2:  # map(x, filter, transform)
        return lambda env: [
            body[1](bound(env, i)) for i in items(env) if predicate(env, i)
        ]  # fmt: skip
    return lambda env: [body[0](bound(env, i)) for i in items(env)]


def _ident_name(tree: Any) -> str:
    while isinstance(tree, Tree):
        if tree.data == "ident":
            return str(tree.children[0])
        children = [c for c in tree.children if c is not None]
        if len(children) != 1:
            break
        tree = children[0]
    raise _Unsupported("macro variable")


def _ident(tree: Tree[Any]) -> Node:
    name = str(tree.children[0])
    if name in _TYPE_IDENTS:
        type_value = CelType(name)

        def type_or_var(env: Env) -> Any:
            return env.get(name, type_value)

        return type_or_var

    def variable(env: Env) -> Any:
        try:
            return env[name]
        except KeyError:
            raise CelError(f"undeclared reference to '{name}'") from None

    return variable


def _ident_arg(tree: Tree[Any]) -> Node:
    name_token, *rest = tree.children
    name = str(name_token)
    arg_trees = _args(rest[0] if rest else None)
    if name == "has":
        return _has(arg_trees)
    if name == "dyn" and len(arg_trees) == 1:
        return _compile(arg_trees[0])
    if name == "type" and len(arg_trees) == 1:
        operand = _compile(arg_trees[0])
        return lambda env: cel_type(operand(env))
    func = FUNCTIONS.get(name)
    if func is None:
        raise _Unsupported(name)
    args = [_compile(a) for a in arg_trees]
    return lambda env: func(*[a(env) for a in args])


def _has(arg_trees: list[Any]) -> Node:
    node = arg_trees[0] if len(arg_trees) == 1 else None
    while isinstance(node, Tree) and node.data != "member_dot":
        children = [c for c in node.children if c is not None]
        if len(children) != 1:
            raise _Unsupported("has() argument")
        node = children[0]
    if node is None:
        raise _Unsupported("has() argument")
    target, name = _compile(node.children[0]), str(node.children[1])

    def has(env: Env) -> bool:
        value = target(env)
        if isinstance(value, dict):
            return name in value
        raise CelError("no such overload")

    return has


@functools.lru_cache(maxsize=4096)
def _literal_value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if text[-1] in "uU":
        raise _Unsupported("uint")
    if text.lstrip("-").startswith(("0x", "0X")):
        return int(text, 16)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text[0] in "bB":
        raise _Unsupported("bytes")
    if text[0] in "\"'rR":
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise _Unsupported("string literal") from None
    return float(text)


def _literal(tree: Tree[Any]) -> Node:
    value = _literal_value(str(tree.children[0]))
    return lambda env: value


def _list_lit(tree: Tree[Any]) -> Node:
    items = [_compile(c) for c in _args(tree.children[0] if tree.children else None)]
    return lambda env: [item(env) for item in items]


def _map_lit(tree: Tree[Any]) -> Node:
    parts = [_compile(c) for c in _args(tree.children[0] if tree.children else None)]
    pairs = list(zip(parts[::2], parts[1::2], strict=True))
    return lambda env: {k(env): v(env) for k, v in pairs}


_HANDLERS: dict[str, Callable[[Tree[Any]], Node]] = {
    "expr": _expr,
    "conditionalor": _logic,
    "conditionaland": _logic,
    "relation": lambda t: _binary(t, RELATIONS),
    "addition": lambda t: _binary(t, ADDITION),
    "multiplication": lambda t: _binary(t, MULTIPLICATION),
    "unary": _unary,
    "member": _passthrough,
    "primary": _passthrough,
    "paren_expr": _passthrough,
    "member_dot": _member_dot,
    "member_index": _member_index,
    "member_dot_arg": _member_dot_arg,
    "ident": _ident,
    "ident_arg": _ident_arg,
    "literal": _literal,
    "list_lit": _list_lit,
    "map_lit": _map_lit,
}
