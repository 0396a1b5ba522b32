"""Local control plane, validation layer: CEL standard and Kubernetes library functions.

Over plain JSON values (and :class:`datetime.timedelta` / :class:`datetime.datetime` for CEL's
durations and timestamps), for the CEL translator in :mod:`.celfast`.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "FUNCTIONS",
    "METHODS",
    "CelError",
    "CelType",
    "cel_eq",
    "cel_type",
]


class CelError(Exception):
    """A CEL evaluation error (``no such key: x``, ``division by zero``, ...)."""


@dataclass(frozen=True)
class CelType:
    """A CEL type value, the result of ``type(x)`` and of the identifiers ``int``, ``string``..."""

    name: str


def cel_type(value: Any) -> CelType:
    if value is None:
        return CelType("null_type")
    if isinstance(value, bool):
        return CelType("bool")
    if isinstance(value, int):
        return CelType("int")
    if isinstance(value, float):
        return CelType("double")
    if isinstance(value, str):
        return CelType("string")
    if isinstance(value, bytes):
        return CelType("bytes")
    if isinstance(value, list):
        return CelType("list")
    if isinstance(value, dict):
        return CelType("map")
    if isinstance(value, timedelta):
        return CelType("google.protobuf.Duration")
    if isinstance(value, datetime):
        return CelType("google.protobuf.Timestamp")
    if isinstance(value, CelType):
        return CelType("type")
    raise CelError("unsupported value type")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def cel_eq(a: Any, b: Any) -> bool:
    """CEL heterogeneous equality: numbers compare by value, other types must match."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(cel_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(cel_eq(a[k], b[k]) for k in a)
    return bool(a == b)


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise CelError(f"invalid regex: {exc}") from None


def _want(value: Any, kind: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise CelError("no such overload")
    if not isinstance(value, kind):
        raise CelError("no such overload")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise CelError("no such overload")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise CelError("no such overload")
    return value


def _size(value: Any) -> int:
    if isinstance(value, str | bytes | list | dict):
        return len(value)
    raise CelError("no such overload")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise CelError("no such overload")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value) or not -(2**63) <= value < 2**63:
            raise CelError("range error converting double to int")
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise CelError(f"cannot convert {value!r} to int") from None
    raise CelError("no such overload")


def _to_double(value: Any) -> float:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise CelError(f"cannot convert {value!r} to double") from None
    raise CelError("no such overload")


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return value.decode()
    raise CelError("no such overload")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false", "True", "False", "1", "0", "t", "f"):
        return value in ("true", "True", "1", "t")
    raise CelError("no such overload")


def _matches(text: Any, pattern: Any) -> bool:
    return _regex(_str(pattern)).search(_str(text)) is not None


def _split(text: Any, sep: Any, limit: int = -1) -> list[str]:
    whole, separator = _str(text), _str(sep)
    if limit == 0:
        return []
    if separator == "":
        parts = list(whole)
        if limit > 0 and len(parts) > limit:
            parts = [*parts[: limit - 1], "".join(parts[limit - 1 :])]
        return parts
    return whole.split(separator, limit - 1 if limit > 0 else -1)


def _replace(text: Any, old: Any, new: Any, limit: int = -1) -> str:
    return _str(text).replace(_str(old), _str(new), limit)


def _index_of(target: Any, item: Any, start: int = 0) -> int:
    if isinstance(target, str):
        return target.find(_str(item), start)
    if isinstance(target, list):
        for index, value in enumerate(target):
            if cel_eq(value, item):
                return index
        return -1
    raise CelError("no such overload")


def _last_index_of(target: Any, item: Any) -> int:
    if isinstance(target, str):
        return target.rfind(_str(item))
    if isinstance(target, list):
        for index in range(len(target) - 1, -1, -1):
            if cel_eq(target[index], item):
                return index
        return -1
    raise CelError("no such overload")


def _substring(text: Any, start: int, end: int | None = None) -> str:
    whole = _str(text)
    stop = len(whole) if end is None else end
    if not 0 <= start <= stop <= len(whole):
        bad = start if start > len(whole) or start < 0 else stop
        raise CelError(f"index out of range: {bad}")
    return whole[start:stop]


def _char_at(text: Any, index: int) -> str:
    whole = _str(text)
    if not 0 <= index <= len(whole):
        raise CelError(f"index out of range: {index}")
    return whole[index : index + 1]


def _join(items: Any, sep: str = "") -> str:
    items = _list(items)
    return _str(sep).join(_str(i) for i in items)


def _comparable(items: Any) -> list[Any]:
    items = _list(items)
    if items and not (all(_is_number(i) for i in items) or all(isinstance(i, str) for i in items)):
        raise CelError("no such overload")
    return list(items)


def _is_sorted(items: Any) -> bool:
    values = _comparable(items)
    return all(a <= b for a, b in itertools.pairwise(values))


def _sum(items: Any) -> Any:
    values = _comparable(items)
    return sum(values) if values else 0


def _min(items: Any) -> Any:
    values = _comparable(items)
    if not values:
        raise CelError("min(list) argument must not be empty")
    return min(values)


def _max(items: Any) -> Any:
    values = _comparable(items)
    if not values:
        raise CelError("max(list) argument must not be empty")
    return max(values)


def _starts_with(text: Any, prefix: Any) -> bool:
    return bool(_str(text).startswith(_str(prefix)))


def _ends_with(text: Any, suffix: Any) -> bool:
    return bool(_str(text).endswith(_str(suffix)))


def _str_contains(text: Any, part: Any) -> bool:
    return _str(part) in _str(text)


def _ascii_case(upper: bool) -> Callable[[Any], str]:
    delta = -32 if upper else 32
    low, high = ("a", "z") if upper else ("A", "Z")

    def convert(text: Any) -> str:
        return "".join(
            chr(ord(c) + delta) if low <= c <= high else c for c in _str(text)
        )  # fmt: skip

    return convert


def _trim(text: Any) -> str:
    return str(_str(text).strip())


# Go's time.ParseDuration units, which cel-go's duration() uses.
_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0,
    "m": 60.0, "h": 3600.0,
}  # fmt: skip
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def _to_duration(text: Any) -> timedelta:
    """``duration('1h30m')``: Go's duration syntax, as cel-go parses it."""
    if isinstance(text, timedelta):
        return text
    raw = _str(text)
    body = raw[1:] if raw[:1] in "+-" else raw
    parts = _DURATION_PART.findall(body)
    if body == "0":
        return timedelta(0)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise CelError(f"invalid duration: {raw!r}")
    seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    return timedelta(seconds=-seconds if raw.startswith("-") else seconds)


def _to_timestamp(text: Any) -> datetime:
    """``timestamp('2024-01-02T03:04:05Z')``: RFC 3339, as cel-go parses it."""
    if isinstance(text, datetime):
        return text
    raw = _str(text)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise CelError(f"invalid timestamp: {raw!r}") from None
    if value.tzinfo is None or "T" not in raw:
        raise CelError(f"invalid timestamp: {raw!r}")
    return value.astimezone(UTC)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "size": _size,
    "int": _to_int,
    "uint": _to_int,
    "double": _to_double,
    "string": _to_string,
    "bool": _to_bool,
    "matches": _matches,
    "duration": _to_duration,
    "timestamp": _to_timestamp,
}
METHODS: dict[str, Callable[..., Any]] = {
    "size": _size,
    "startsWith": _starts_with,
    "endsWith": _ends_with,
    "contains": _str_contains,
    "matches": _matches,
    "lowerAscii": _ascii_case(upper=False),
    "upperAscii": _ascii_case(upper=True),
    "trim": _trim,
    "split": _split,
    "join": _join,
    "replace": _replace,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "substring": _substring,
    "charAt": _char_at,
    "isSorted": _is_sorted,
    "sum": _sum,
    "min": _min,
    "max": _max,
}
