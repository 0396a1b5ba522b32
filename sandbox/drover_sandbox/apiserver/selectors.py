"""Local control plane, selectors: parse and match label and field selectors.

Pure functions; a parse error raises ValueError with a message kube-apiserver would give.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)([\w./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def parse_label_selector(text: str | None) -> Matcher:
    if not text:
        return lambda labels: True
    reqs: list[Matcher] = []
    for part in _split_top(text):
        reqs.append(_label_requirement(part.strip()))
    return lambda labels: all(r(labels) for r in reqs)


def _label_requirement(part: str) -> Matcher:
    for op in ("!=", "==", "="):
        if op in part and "(" not in part:
            key, value = (s.strip() for s in part.split(op, 1))
            if op == "!=":
                return lambda labels, k=key, v=value: labels.get(k) != v
            return lambda labels, k=key, v=value: labels.get(k) == v
    m = _SET_RE.match(part)
    if not m:
        raise ValueError(f"unable to parse requirement: {part!r}")
    neg, key, op, values = m.groups()
    if op:
        vals = {v.strip() for v in values.split(",") if v.strip()}
        if op == "in":
            return lambda labels, k=key, vs=vals: labels.get(k) in vs
        return lambda labels, k=key, vs=vals: labels.get(k) not in vs
    if neg:
        return lambda labels, k=key: k not in labels
    return lambda labels, k=key: k in labels


def field_value(obj: dict[str, Any], path: str) -> str | None:
    cur: Any = obj
    for seg in path.split("."):
        if not isinstance(cur, dict) or seg not in cur:
            return None
        cur = cur[seg]
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return None if cur is None else str(cur)


def parse_field_selector(text: str | None) -> Matcher:
    if not text:
        return lambda obj: True
    reqs: list[Matcher] = []
    for part in _split_top(text):
        part = part.strip()
        for op in ("!=", "==", "="):
            if op in part:
                path, value = (s.strip() for s in part.split(op, 1))
                break
        else:
            raise ValueError(f"invalid selector: '{text}'; can't understand '{part}'")
        if op == "!=":
            reqs.append(lambda o, p=path, v=value: (field_value(o, p) or "") != v)
        else:
            reqs.append(lambda o, p=path, v=value: (field_value(o, p) or "") == v)
    return lambda obj: all(r(obj) for r in reqs)


def build_matcher(label_selector: str | None, field_selector: str | None) -> Matcher:
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(field_selector)
    return lambda obj: labels((obj.get("metadata") or {}).get("labels") or {}) and fields(obj)


def field_selector_keys(text: str | None) -> list[str]:
    """The field paths a field selector names (`a.b=c,d!=e` -> ["a.b", "d"])."""
    keys = []
    for part in _split_top(text or ""):
        for op in ("!=", "==", "="):
            if op in part:
                keys.append(part.split(op, 1)[0].strip())
                break
    return keys
