"""Local control plane, schema layer: structural OpenAPI v3 validation, defaulting and pruning.

Pure functions over a CRD version's ``openAPIV3Schema``, answering with kube-apiserver's exact
field errors (``spec.x: Invalid value: -1: spec.x in body should be greater than or equal to 0``).
The server runs them in kube's order: :func:`prune`, :func:`apply_defaults`, :func:`validate`.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from .errors import OMIT, Cause, field_error, go_float
from .structural import OBJECT_META_FIELDS, apply_defaults, clone, prune

__all__ = ["OBJECT_META_FIELDS", "apply_defaults", "clone", "json_type", "prune", "validate"]

_EMBEDDED = "x-kubernetes-embedded-resource"
_INT_OR_STRING = "x-kubernetes-int-or-string"
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def json_type(value: Any) -> str:
    """The JSON type name kube-openapi reports for a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@functools.lru_cache(maxsize=1024)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if schema.get(_INT_OR_STRING):
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    expected = schema.get("type")
    if not expected:
        return True
    actual = json_type(value)
    if expected == actual:
        return True
    if expected == "number":
        return actual == "integer"
    # go-openapi accepts a float64 holding a whole number where an integer is expected.
    return expected == "integer" and actual == "number" and float(value).is_integer()


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return field_error("FieldValueInvalid", path, value, detail)


def validate(obj: Any, schema: dict[str, Any], *, root: str = "") -> list[Cause]:
    """Validate ``obj`` against a structural schema; kube's field errors in its order."""
    causes: list[Cause] = []
    _validate(obj, schema or {}, root, causes, top=True)
    for cause in causes:
        if not cause.field:
            cause.field = "<nil>"  # kube's root is a nil field.Path
    return causes


# Exact JSON type matches that need no further type check (the common case).
_EXACT = {"object": dict, "string": str, "array": list, "integer": int, "boolean": bool}
_STRING_KEYS = ("maxLength", "minLength", "pattern", "format")


def _validate(value: Any, schema: dict[str, Any], path: str, out: list[Cause], top: bool) -> None:
    expected = schema.get("type")
    kind = type(value)
    if kind is _EXACT.get(expected or ""):
        if "enum" in schema:
            _validate_enum(value, schema, path, out)
        if kind is dict:
            _validate_object(value, schema, path, out, top)
        elif kind is str:
            if any(k in schema for k in _STRING_KEYS):
                _validate_string(value, schema, path, out)
        elif kind is list:
            _validate_array(value, schema, path, out)
        elif kind is int:
            _validate_number(value, schema, path, out)
        return
    untyped = not expected and not schema.get(_INT_OR_STRING)
    if value is None and (schema.get("nullable") or untyped):
        return
    if not _type_ok(value, schema):
        name = path or "."
        wanted = "integer,string" if schema.get(_INT_OR_STRING) else expected
        actual = json_type(value)
        detail = f'{name} in body must be of type {wanted}: "{actual}"'
        out.append(field_error("FieldValueTypeInvalid", path, actual, detail))
        return
    if value is None:
        return
    _validate_enum(value, schema, path, out)
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        _validate_number(value, schema, path, out)
    elif isinstance(value, str):
        _validate_string(value, schema, path, out)
    elif isinstance(value, list):
        _validate_array(value, schema, path, out)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, out, top)


def _validate_enum(value: Any, schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    enum = schema.get("enum")
    if enum is None or any(_json_equal(value, allowed) for allowed in enum):
        return
    allowed = [a if isinstance(a, str) else json.dumps(a) for a in enum]
    detail = "supported values: " + ", ".join(json.dumps(a, ensure_ascii=False) for a in allowed)
    out.append(field_error("FieldValueNotSupported", path, value, detail))


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _validate_number(value: float, schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    name = path or "."
    fmt = schema.get("format")
    if fmt in _INT_RANGES and isinstance(value, int):
        low, high = _INT_RANGES[fmt]
        if not low <= value <= high:
            detail = f'{name} in body must be of type {fmt}: "{value}"'
            out.append(field_error("FieldValueTypeInvalid", path, value, detail))
    multiple = schema.get("multipleOf")
    if multiple and (value / multiple) != int(value / multiple):
        out.append(
            _invalid(path, value, f"{name} in body should be a multiple of {go_float(multiple)}")
        )
    if "maximum" in schema:
        high = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= high:
            out.append(
                _invalid(path, value, f"{name} in body should be less than {go_float(high)}")
            )
        elif value > high:
            detail = f"{name} in body should be less than or equal to {go_float(high)}"
            out.append(_invalid(path, value, detail))
    if "minimum" in schema:
        low = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= low:
            out.append(
                _invalid(path, value, f"{name} in body should be greater than {go_float(low)}")
            )
        elif value < low:
            detail = f"{name} in body should be greater than or equal to {go_float(low)}"
            out.append(_invalid(path, value, detail))


def _validate_string(value: str, schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    name = path or "."
    max_length = schema.get("maxLength")
    if max_length is not None and len(value) > max_length:
        unit = "byte" if max_length == 1 else "bytes"
        detail = f"may not be more than {max_length} {unit}"
        out.append(field_error("FieldValueTooLong", path, value, detail))
    min_length = schema.get("minLength")
    if min_length is not None and len(value) < min_length:
        detail = f"{name} in body should be at least {min_length} chars long"
        out.append(_invalid(path, value, detail))
    pattern = schema.get("pattern")
    if pattern is not None and not _pattern(pattern).search(value):
        out.append(_invalid(path, value, f"{name} in body should match '{pattern}'"))
    fmt = schema.get("format")
    checker = {"date-time": _DATE_TIME, "date": _DATE, "uuid": _UUID}.get(fmt or "")
    if checker is not None and not checker.match(value):
        detail = f"{name} in body must be of type {fmt}: {json.dumps(value)}"
        out.append(field_error("FieldValueTypeInvalid", path, value, detail))


def _validate_array(value: list[Any], schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    name = path or "."
    max_items = schema.get("maxItems")
    if max_items is not None and len(value) > max_items:
        detail = f"must have at most {max_items} items"
        out.append(field_error("FieldValueTooMany", path, len(value), detail))
    min_items = schema.get("minItems")
    if min_items is not None and len(value) < min_items:
        detail = f"{name} in body should have at least {min_items} items"
        out.append(_invalid(path, len(value), detail))
    if schema.get("uniqueItems") and len({_canonical(v) for v in value}) != len(value):
        out.append(_invalid(path, "", f"{name} in body shouldn't contain duplicates"))
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            _validate(item, items, f"{path}[{index}]", out, top=False)
    _validate_list_type(value, schema, path, out)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _validate_list_type(
    value: list[Any], schema: dict[str, Any], path: str, out: list[Cause]
) -> None:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        seen: set[str] = set()
        for index, item in enumerate(value):
            key = _canonical(item)
            if key in seen:
                out.append(field_error("FieldValueDuplicate", f"{path}[{index}]", item))
            seen.add(key)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen_keys: set[str] = set()
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            ident = {k: item.get(k) for k in keys}
            key = _canonical(ident)
            if key in seen_keys:
                out.append(_duplicate_map(f"{path}[{index}]", ident))
            seen_keys.add(key)


def _duplicate_map(path: str, ident: dict[str, Any]) -> Cause:
    # kube prints the key map with Go's %#v: map[string]interface {}{"name":"a"}.
    inner = ", ".join(f"{json.dumps(k)}:{_go_literal(v)}" for k, v in sorted(ident.items()))
    message = f"Duplicate value: map[string]interface {{}}{{{inner}}}"
    return Cause(reason="FieldValueDuplicate", message=message, field=path)


def _go_literal(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}"
    if value is None:
        return "interface {}(nil)"
    return json.dumps(value)


def _validate_object(
    value: dict[str, Any], schema: dict[str, Any], path: str, out: list[Cause], top: bool
) -> None:
    name = path or "."
    props: dict[str, Any] = schema.get("properties") or {}
    for required in schema.get("required") or []:
        if required not in value:
            out.append(field_error("FieldValueRequired", _join(path, required), OMIT))
    max_props = schema.get("maxProperties")
    if max_props is not None and len(value) > max_props:
        detail = f"must have at most {max_props} items"
        out.append(field_error("FieldValueTooMany", path, len(value), detail))
    min_props = schema.get("minProperties")
    if min_props is not None and len(value) < min_props:
        detail = f"{name} in body should have at least {min_props} properties"
        out.append(_invalid(path, len(value), detail))
    if schema.get(_EMBEDDED):
        for key in ("apiVersion", "kind"):
            if not value.get(key):
                out.append(
                    field_error("FieldValueRequired", _join(path, key), OMIT, "must not be empty")
                )
    extra = schema.get("additionalProperties")
    for key, child in value.items():
        child_path = _join(path, key)
        if key in props:
            if top and key == "metadata":
                _validate_metadata(child, props[key], child_path, out)
            else:
                _validate(child, props[key], child_path, out, top=False)
        elif isinstance(extra, dict):
            _validate(child, extra, child_path, out, top=False)


def _validate_metadata(value: Any, schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    # Only name and generateName may be constrained by a CRD schema; the rest is ObjectMeta.
    if not isinstance(value, dict):
        return
    props = schema.get("properties") or {}
    for key in ("name", "generateName"):
        if key in props and key in value:
            _validate(value[key], props[key], _join(path, key), out, top=False)
