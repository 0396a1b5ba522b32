"""Test support for the API tests: the committed CRDs as JSON Schema, API-server-style defaulting,
and evaluation of the CRDs' x-kubernetes-validations CEL rules with cel-python.

These mirror what kube-apiserver does with a CRD: default, then validate the schema, then run the
CEL rules on each node (with `self` bound to that node).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from celpy import celtypes

ROOT = Path(__file__).resolve().parents[3]
CRD_DIR = ROOT / "crds"
CHART_CRD_DIR = ROOT / "charts" / "drover" / "crds"
EXAMPLES_DIR = ROOT / "examples"
INVALID_DIR = ROOT / "tests" / "invalid"


def load_crds() -> dict[str, dict[str, Any]]:
    """kind -> committed CRD (from crds/)."""
    crds = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        crds[crd["spec"]["names"]["kind"]] = crd
    return crds


def root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def to_json_schema(node: Any) -> Any:
    """OpenAPI v3.0 structural schema -> JSON Schema 2020-12 (nullable, int-or-string, bools)."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "default"):
            continue
        if key in ("properties",):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            if value is True:
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                out[key] = node[bound]
        elif key in ("minimum", "maximum"):
            other = "exclusiveMinimum" if key == "minimum" else "exclusiveMaximum"
            if node.get(other) is not True:
                out[key] = value
        else:
            out[key] = to_json_schema(value)
    if node.get("type") == "object" and "properties" in node:
        # Structural schemas prune unknown fields; the API server with fieldValidation=Strict
        # (what kubectl apply sends) refuses them, which is what we check.
        out["additionalProperties"] = False
    if node.get("x-kubernetes-int-or-string"):
        out = {k: v for k, v in out.items() if k != "type"}
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def validator_for(crd: dict[str, Any]) -> jsonschema.Draft202012Validator:
    schema = to_json_schema(root_schema(crd))
    # metadata is validated by the API server itself, not by the CRD schema.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft202012Validator(schema)


def schema_errors(manifest: dict[str, Any], crd: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted path, message) for each schema violation."""
    out = []
    for error in validator_for(crd).iter_errors(manifest):
        out.append((dotted(error.absolute_path), error.message))
    return sorted(out)


def dotted(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """A copy of value with the schema's defaults applied, as the API server does."""
    value = copy.deepcopy(value)
    _default(value, schema)
    return value


def _default(value: Any, schema: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                _default(value[name], prop)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default(item, schema["items"])


def to_cel(value: Any, schema: dict[str, Any]) -> Any:
    """A JSON value as CEL sees it under this schema (numbers typed by the schema, as k8s does)."""
    if value is None:
        return None
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties") or {}
        return celtypes.MapType(
            {
                celtypes.StringType(k): to_cel(v, props.get(k, extra))
                for k, v in value.items()
                if v is not None
            }
        )
    if kind == "array":
        return celtypes.ListType([to_cel(v, schema.get("items", {})) for v in value])
    if kind == "number":
        return celtypes.DoubleType(float(value))
    if kind == "integer":
        return celtypes.IntType(int(value))
    if kind == "boolean":
        return celtypes.BoolType(bool(value))
    if isinstance(value, str):
        return celtypes.StringType(value)
    return celpy.json_to_cel(value)


_ENV = celpy.Environment()


@functools.cache
def program(expression: str) -> Any:
    return _ENV.program(_ENV.compile(expression))


def cel_holds(expression: str, value: Any, schema: dict[str, Any]) -> bool:
    """True when the rule evaluates to true; an evaluation error counts as a violation (k8s)."""
    try:
        result = program(expression).evaluate({"self": to_cel(value, schema)})
    except celpy.CELEvalError:
        return False
    return isinstance(result, celtypes.BoolType) and bool(result)


def cel_violations(value: Any, schema: dict[str, Any], path: str = "") -> list[dict[str, str]]:
    """Every x-kubernetes-validations rule that fails, with the path it reports (+ fieldPath)."""
    out: list[dict[str, str]] = []
    if value is None:
        return out
    for rule in schema.get("x-kubernetes-validations", ()):
        if not cel_holds(rule["rule"], value, schema):
            out.append(
                {
                    "path": (path + rule.get("fieldPath", "")).lstrip("."),
                    "message": rule["message"],
                    "rule": rule["rule"],
                }
            )
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name in value:
                out += cel_violations(value[name], prop, f"{path}.{name}" if path else name)
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += cel_violations(item, schema["items"], f"{path}[{i}]")
    return out


# examples/gitops holds Argo CD and Flux objects, not Drover's: tests/unit/gitops checks them.
NOT_DROVER_EXAMPLES = ("gitops",)


def example_files() -> list[Path]:
    """Every manifest of Drover's own kinds under examples/."""
    return sorted(
        p
        for p in EXAMPLES_DIR.rglob("*.yaml")
        if p.relative_to(EXAMPLES_DIR).parts[0] not in NOT_DROVER_EXAMPLES
    )


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def read_expectations(path: Path) -> dict[str, str]:
    """The `# expect-<key>: value` header lines of an invalid manifest."""
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("# expect-also:"):
            continue  # see read_also
        if line.startswith("# expect-"):
            key, _, value = line[len("# expect-") :].partition(":")
            out[key.strip()] = value.strip()
    return out


def read_also(path: Path) -> list[tuple[str, str]]:
    """The `# expect-also: <path> | <message>` lines: further problems of the same manifest,
    each of which must be reported too (not only the first)."""
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("# expect-also:"):
            field, _, message = line.removeprefix("# expect-also:").partition("|")
            out.append((field.strip(), message.strip()))
    return out
