"""Serve layer: redaction of personal data from the texts the router stores as feedback.

Built-in redactors (`email`, `iban`, `card`, `ipv4`, `phone`) and the service's own regular
expressions replace each match with a placeholder (`[EMAIL]`, `[CARD]`, ..., `[<NAME>]` for a
pattern of the service). They run in that order (the service's patterns last), so an IBAN or a
card number is not half-taken by a later one. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["BUILTIN_REDACTORS", "Redactor", "compile_pattern"]


def _phone(match: re.Match[str]) -> str:
    """A phone number: 7 to 15 digits (ITU-T E.164 allows at most 15), written with a `+`, with
    separators or as 10 or more digits in a row; an ISO date (2026-12-07) is not one."""
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    if not 7 <= digits <= 15 or re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return text
    if text.startswith("+") or digits >= 10 or re.search(r"[\s().-]", text):
        return "[PHONE]"
    return text


_Replacement = str | Callable[[re.Match[str]], str]
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# name -> (pattern, replacement), in the order they run.
BUILTIN_REDACTORS: dict[str, tuple[re.Pattern[str], _Replacement]] = {
    "email": (
        re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
        "[EMAIL]",
    ),
    "iban": (
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
        "[IBAN]",
    ),
    # 13 to 19 digits, optionally grouped by single spaces or dashes (every card scheme's length
    # range); no Luhn check: a mistyped card number is still a card number.
    "card": (re.compile(r"(?<![\w+])\d(?:[ -]?\d){12,18}(?!\w)"), "[CARD]"),
    "ipv4": (re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w.])"), "[IP]"),
    "phone": (re.compile(r"(?<![\w+])(?:\+|\(\+?)?\d[\d ().-]{5,}\d(?!\w)"), _phone),
}


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A service's redaction pattern, compiled; ValueError says why it is not a regex."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    if compiled.fullmatch(""):
        raise ValueError(f"{pattern!r} matches the empty string: it would redact nothing useful")
    return compiled


class Redactor:
    """Applies the chosen built-in redactors, then the service's `(name, pattern)` pairs."""

    def __init__(self, builtin: Sequence[str], patterns: Sequence[tuple[str, str]] = ()) -> None:
        unknown = sorted(set(builtin) - set(BUILTIN_REDACTORS))
        if unknown:
            raise ValueError(f"unknown redactor(s) {unknown}; use {list(BUILTIN_REDACTORS)}")
        self.steps: list[tuple[re.Pattern[str], _Replacement]] = [
            BUILTIN_REDACTORS[name] for name in BUILTIN_REDACTORS if name in set(builtin)
        ]
        for name, pattern in patterns:
            self.steps.append((compile_pattern(pattern), f"[{name.upper()}]"))

    def text(self, value: str) -> str:
        for pattern, replacement in self.steps:
            value = pattern.sub(replacement, value)
        return value

    def value(self, value: Any) -> Any:
        """`value` with every string in it (through dicts and lists) redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value
