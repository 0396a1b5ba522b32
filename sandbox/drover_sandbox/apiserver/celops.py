"""Local control plane, validation layer: CEL operators over plain JSON values.

Comparison, membership and arithmetic with CEL's semantics (heterogeneous numeric equality,
64-bit overflow and division errors) for the fast CEL translator in :mod:`.celfast`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from .celfuncs import CelError, cel_eq

__all__ = ["ADDITION", "MULTIPLICATION", "RELATIONS", "check_int", "is_numbers"]


def is_numbers(a: Any, b: Any) -> bool:
    return (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    )


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        same = type(a) is type(b) and isinstance(a, str | bytes | bool | timedelta | datetime)
        if is_numbers(a, b) or same:
            return op(a, b)
        raise CelError("no such overload")

    return compare


def _contains(a: Any, b: Any) -> bool:
    if isinstance(b, list):
        return any(cel_eq(a, item) for item in b)
    if isinstance(b, dict):
        return a in b if isinstance(a, str | int | bool) else False
    raise CelError("no such overload")


RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "relation_lt": _ordered(lambda a, b: a < b),
    "relation_le": _ordered(lambda a, b: a <= b),
    "relation_gt": _ordered(lambda a, b: a > b),
    "relation_ge": _ordered(lambda a, b: a >= b),
    "relation_eq": cel_eq,
    "relation_ne": lambda a, b: not cel_eq(a, b),
    "relation_in": _contains,
}


_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def check_int(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not _INT_MIN <= value <= _INT_MAX:
        raise CelError("integer overflow")
    return value


def _add(a: Any, b: Any) -> Any:
    if is_numbers(a, b):
        return check_int(a + b)
    if type(a) is type(b) and isinstance(a, str | list | bytes | timedelta):
        return a + b
    if isinstance(a, datetime) and isinstance(b, timedelta):
        return a + b
    raise CelError("no such overload")


def _sub(a: Any, b: Any) -> Any:
    if is_numbers(a, b):
        return check_int(a - b)
    if isinstance(a, datetime) and isinstance(b, timedelta | datetime):
        return a - b
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return a - b
    raise CelError("no such overload")


def _mul(a: Any, b: Any) -> Any:
    if is_numbers(a, b):
        return check_int(a * b)
    raise CelError("no such overload")


def _div(a: Any, b: Any) -> Any:
    if not is_numbers(a, b):
        raise CelError("no such overload")
    if isinstance(a, int) and isinstance(b, int):
        if b == 0:
            raise CelError("division by zero")
        quotient = abs(a) // abs(b)
        return check_int(quotient if (a >= 0) == (b >= 0) else -quotient)
    if b == 0:
        return float("inf") if a > 0 else float("-inf") if a < 0 else float("nan")
    return a / b


def _mod(a: Any, b: Any) -> Any:
    if not (is_numbers(a, b) and isinstance(a, int) and isinstance(b, int)):
        raise CelError("no such overload")
    if b == 0:
        raise CelError("modulus by zero")
    remainder = abs(a) % abs(b)
    return remainder if a >= 0 else -remainder


ADDITION = {"addition_add": _add, "addition_sub": _sub}
MULTIPLICATION = {
    "multiplication_mul": _mul,
    "multiplication_div": _div,
    "multiplication_mod": _mod,
}
