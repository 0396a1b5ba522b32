"""Local control plane, validation layer: CEL standard and Kubernetes library functions.

Two faces of the same functions: over plain JSON values for the fast CEL translator
(:data:`FUNCTIONS`, :data:`METHODS`), and over cel-python values for its interpreter
(:data:`EXTENSION_FUNCTIONS`: kube's string and list extensions cel-python lacks).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celpy import celtypes

__all__ = [
    "EXTENSION_FUNCTIONS",
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


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "size": _size,
    "int": _to_int,
    "uint": _to_int,
    "double": _to_double,
    "string": _to_string,
    "bool": _to_bool,
    "matches": _matches,
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


def _to_plain(value: Any) -> Any:
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.ListType | list):
        return [_to_plain(v) for v in value]
    if isinstance(value, celtypes.MapType | dict):
        return {_to_plain(k): _to_plain(v) for k, v in value.items()}
    return value


def _to_cel(value: Any) -> Any:
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        return celtypes.IntType(value)
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, list):
        return celtypes.ListType([_to_cel(v) for v in value])
    return value


def _wrap(func: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return _to_cel(func(*[_to_plain(a) for a in args]))

    return call


EXTENSION_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: _wrap(METHODS[name])
    for name in (
        "lowerAscii", "upperAscii", "trim", "split", "join", "replace", "indexOf",
        "lastIndexOf", "substring", "charAt", "isSorted", "sum", "min", "max",
    )
}  # fmt: skip
