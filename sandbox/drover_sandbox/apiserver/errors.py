"""Local control plane, error layer: kube-apiserver ``Status`` bodies as a Python exception.

Every handler of ``drover_sandbox.apiserver`` raises :class:`ApiError`; the server turns it into the
exact ``Status`` JSON (code, reason, message, details) that kube-apiserver answers with.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ApiError",
    "Cause",
    "already_exists",
    "bad_request",
    "conflict",
    "field_error",
    "forbidden",
    "gone",
    "internal",
    "invalid",
    "method_not_allowed",
    "not_acceptable",
    "not_found",
    "qualified_resource",
    "too_many_requests",
    "unprocessable",
    "unsupported_media_type",
]

# field.ErrorType -> the word kube prints in front of the bad value (field/errors.go).
_TYPE_WORDS = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}
# Types whose body never shows the bad value.
_VALUELESS = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"}

OMIT = object()
"""Pass as ``value`` to :func:`field_error` to leave the value out (kube's omitValue)."""


@dataclass
class Cause:
    """One ``details.causes`` entry of a 422 Status: ``reason`` is kube's field.ErrorType."""

    reason: str
    message: str
    field: str

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def go_value(value: Any) -> str:
    """Render a JSON value as kube's ``ErrorBody`` does (``%v`` for numbers, ``%q`` for strings)."""
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def go_float(value: float) -> str:
    """Go's ``%v`` of a float64: shortest representation, exponent past 1e21, ``+Inf``."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mant, exp = text.split("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        digits = exp.lstrip("+-").rjust(2, "0")
        return f"{mant}e{sign}{digits}"
    return text


def field_error(reason: str, path: str, value: Any = OMIT, detail: str = "") -> Cause:
    """Build a cause exactly like kube's ``field.Error``: message is ``ErrorBody()``."""
    word = _TYPE_WORDS[reason]
    body = word if reason in _VALUELESS or value is OMIT else f"{word}: {go_value(value)}"
    if detail:
        body += f": {detail}"
    return Cause(reason=reason, message=body, field=path)


class ApiError(Exception):
    """An API failure carried to the HTTP layer, rendered by :meth:`to_status`."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers: dict[str, str] = headers or {}
        self.cause = ""

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            status["details"] = self.details
        status["code"] = self.code
        return status

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.reason!r}, {self.message!r})"


def qualified_resource(group: str, resource: str) -> str:
    """``resource.group`` (or just ``resource`` for the core group), as kube prints it."""
    return f"{resource}.{group}" if group else resource


def _details(group: str, kind_key: str, kind: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details[kind_key] = kind
    return details


def not_found(group: str, resource: str, name: str) -> ApiError:
    qr = qualified_resource(group, resource)
    details = _details(group, "kind", resource, name)
    return ApiError(404, "NotFound", f'{qr} "{name}" not found', details)


def already_exists(group: str, resource: str, name: str) -> ApiError:
    qr = qualified_resource(group, resource)
    return ApiError(
        409,
        "AlreadyExists",
        f'{qr} "{name}" already exists',
        _details(group, "kind", resource, name),
    )


OPTIMISTIC_LOCK_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def conflict(
    group: str, resource: str, name: str, message: str = OPTIMISTIC_LOCK_MESSAGE
) -> ApiError:
    """409 Conflict: ``Operation cannot be fulfilled on <resource.group> "<name>": <message>``."""
    qr = qualified_resource(group, resource)
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qr} "{name}": {message}',
        _details(group, "kind", resource, name),
    )


def _aggregate(causes: list[Cause]) -> str:
    # utilerrors.NewAggregate: duplicates dropped, one error bare, several in brackets.
    seen: list[str] = []
    for cause in causes:
        text = str(cause)
        if text not in seen:
            seen.append(text)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


def invalid(group: str, kind: str, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid: ``<Kind>.<group> "<name>" is invalid: <field>: <message>`` with causes."""
    qk = f"{kind}.{group}" if group else kind
    message = f'{qk} "{name}" is invalid'
    if causes:
        message += f": {_aggregate(causes)}"
    details: dict[str, Any] = {"name": name, "group": group, "kind": kind}
    if not name:
        del details["name"]
    if not group:
        del details["group"]
    details["causes"] = [c.to_dict() for c in causes]
    return ApiError(422, "Invalid", message, details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(group: str, resource: str, name: str, message: str) -> ApiError:
    qr = qualified_resource(group, resource)
    return ApiError(
        403,
        "Forbidden",
        f'{qr} "{name}" is forbidden: {message}',
        _details(group, "kind", resource, name),
    )


def method_not_allowed(verb: str = "", resource: str = "", group: str = "") -> ApiError:
    """405: ``<verb> is not supported on resources of kind "<resource.group>"``."""
    if verb:
        qr = qualified_resource(group, resource)
        message = f'{verb} is not supported on resources of kind "{qr}"'
        return ApiError(405, "MethodNotAllowed", message, _details(group, "kind", resource, ""))
    message = "the server does not allow this method on the requested resource"
    return ApiError(405, "MethodNotAllowed", message)


def gone(message: str) -> ApiError:
    """410 Expired, e.g. ``too old resource version: 5 (10)`` for a watch or list continue."""
    return ApiError(410, "Expired", message)


def unsupported_media_type(content_type: str = "") -> ApiError:
    message = "the body of the request was in an unknown format"
    if content_type:
        message += f" - accepted media types include: {content_type}"
    return ApiError(415, "UnsupportedMediaType", message)


def not_acceptable(accepted: str) -> ApiError:
    return ApiError(
        406,
        "NotAcceptable",
        f"only the following media types are accepted: {accepted}",
    )


def too_many_requests(
    retry_after: int = 1, message: str = "Too many requests, please try again later."
) -> ApiError:
    """429 with ``Retry-After``, as kube-apiserver's max-in-flight/APF filter answers it."""
    return ApiError(
        429,
        "TooManyRequests",
        message,
        {"retryAfterSeconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def internal(message: str) -> ApiError:
    """500: ``Internal error occurred: <message>`` with the cause kube adds."""
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        {"causes": [{"message": message}]},
    )


def unprocessable(message: str) -> ApiError:
    """422 as kube's ``NewGenericServerResponse``: a generic message, ``details`` empty.

    kube-apiserver answers a JSON patch that cannot be applied this way; the patch library's
    own error (``testing value /a failed: test failed``) is kept in ``.cause`` for logs.
    """
    err = ApiError(
        422, "Invalid", "the server rejected our request due to an error in our request", {}
    )
    err.cause = message
    return err
