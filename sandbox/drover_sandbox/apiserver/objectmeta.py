"""Local control plane, ObjectMeta validation: label and annotation keys and values and owner
references, with kube-apiserver's messages (apimachinery's validation.IsQualifiedName and
IsValidLabelValue). Pure functions returning causes.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import Cause, field_error

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_PREFIX_MSG = (
    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
    "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
    "'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
MAX_ANNOTATIONS_BYTES = 256 * 1024


def qualified_name_errors(key: str) -> list[str]:
    prefix, slash, name = key.rpartition("/")
    errors = []
    if slash and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)):
        errors.append(_PREFIX_MSG)
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    elif not _NAME.match(name):
        errors.append(_NAME_MSG)
    return errors


def validate_map(meta: dict[str, Any], key: str) -> list[Cause]:
    value = meta.get(key)
    path = f"metadata.{key}"
    if value is None:
        return []
    if not isinstance(value, dict):
        return [field_error("FieldValueTypeInvalid", path, value, "must be a map of strings")]
    causes = []
    for k, v in value.items():
        if not isinstance(v, str):
            causes.append(field_error("FieldValueTypeInvalid", path, v, "values must be strings"))
            continue
        causes += [field_error("FieldValueInvalid", path, k, e) for e in qualified_name_errors(k)]
        if key == "labels":
            if len(v) > 63:
                causes.append(
                    field_error("FieldValueInvalid", path, v, "must be no more than 63 characters")
                )
            elif not _VALUE.match(v):
                causes.append(field_error("FieldValueInvalid", path, v, _VALUE_MSG))
    if key == "annotations":
        size = sum(len(k) + len(v) for k, v in value.items() if isinstance(v, str))
        if size > MAX_ANNOTATIONS_BYTES:
            causes.append(
                field_error(
                    "FieldValueTooLong",
                    path,
                    detail=f"must have at most {MAX_ANNOTATIONS_BYTES} bytes",
                )
            )
    return causes


def validate_owner_references(meta: dict[str, Any]) -> list[Cause]:
    refs = meta.get("ownerReferences")
    if refs is None:
        return []
    causes = []
    controllers = 0
    for i, ref in enumerate(refs if isinstance(refs, list) else []):
        path = f"metadata.ownerReferences[{i}]"
        for fld in ("apiVersion", "kind", "name", "uid"):
            if not (isinstance(ref, dict) and ref.get(fld)):
                causes.append(
                    field_error(
                        "FieldValueInvalid", f"{path}.{fld}", "", f"{fld} must not be empty"
                    )
                )
        if isinstance(ref, dict) and ref.get("controller"):
            controllers += 1
    if controllers > 1:
        causes.append(
            field_error(
                "FieldValueInvalid",
                "metadata.ownerReferences",
                refs,
                "Only one reference can have Controller set to true",
            )
        )
    return causes
