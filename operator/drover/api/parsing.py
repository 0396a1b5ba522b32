"""API layer: turns manifests into models, and validation errors into field-named messages.

`parse_resource` is what handlers call: it returns the kind's model or raises `InvalidResource`
whose lines each name a field path (`spec.replicas.min`) and say how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from drover.api.base import API_VERSION
from drover.api.common import ResourceBase
from drover.api.registry import kind_info


@dataclass(frozen=True)
class FieldError:
    """One problem: the dotted field path and what to do about it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidResource(ValueError):
    """A manifest the models refuse; `errors` name each offending field."""

    def __init__(self, kind: str, name: str, errors: list[FieldError]) -> None:
        self.kind = kind
        self.name = name
        self.errors = errors
        lines = "; ".join(str(e) for e in errors)
        super().__init__(f"invalid {kind} {name or '(unnamed)'}: {lines}")


def _path(loc: tuple[int | str, ...], suffix: str = "") -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return (out + suffix).lstrip(".")


def _message(error: Any, plural: str) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "missing":
        return "required field is missing: add it"
    if kind == "extra_forbidden":
        parent = _path(error["loc"][:-1])
        where = f"{plural}.{parent}" if plural else parent
        return f"unknown field: remove it or fix its spelling (the fields: kubectl explain {where})"
    if kind == "value_error":
        return str(msg).removeprefix("Value error, ")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{msg}; got {error.get('input')!r}"
    return str(msg)


def field_errors(exc: ValidationError, plural: str = "") -> list[FieldError]:
    """One FieldError per pydantic error, with rule errors pointed at the field they name."""
    out = []
    for error in exc.errors():
        suffix = ""
        if error["type"] == "drover_rule":
            suffix = str((error.get("ctx") or {}).get("field_path", ""))
        out.append(FieldError(_path(error["loc"], suffix), _message(error, plural)))
    return out


def parse_resource(manifest: dict[str, Any]) -> ResourceBase:
    """The model of a Drover manifest (any of the four kinds); raises InvalidResource."""
    kind = str(manifest.get("kind", ""))
    name = str((manifest.get("metadata") or {}).get("name", ""))
    if manifest.get("apiVersion") != API_VERSION:
        raise InvalidResource(kind, name, [FieldError("apiVersion", f"must be {API_VERSION}")])
    try:
        info = kind_info(kind)
    except KeyError as err:
        raise InvalidResource(kind, name, [FieldError("kind", str(err.args[0]))]) from None
    try:
        return info.model.model_validate(manifest)
    except ValidationError as exc:
        raise InvalidResource(kind, name, field_errors(exc, info.plural)) from None
