"""Local control plane, presentation layer: ``meta.k8s.io/v1`` Tables for ``kubectl get``.

:func:`build_table` renders objects with a CRD's ``additionalPrinterColumns`` (a small JSONPath
evaluator reads the cells) or the default NAME/AGE columns; ages are formatted as kubectl
prints them (``5s``, ``3m2s``, ``2d3h``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from .tables_builtin import BUILTIN_API_VERSIONS, make_printers

__all__ = ["build_table", "human_duration", "jsonpath_values"]

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created."
)
_AGE_COLUMN = {
    "name": "Age",
    "type": "date",
    "jsonPath": ".metadata.creationTimestamp",
    "description": AGE_DESCRIPTION,
}


def human_duration(seconds: float) -> str:
    """kube's ``duration.HumanDuration``: ``5s``, ``3m2s``, ``15m``, ``5h3m``, ``2d3h``."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


_TOKEN = re.compile(
    r"""\.\.(?P<rdesc>[A-Za-z0-9_\-]+)"""
    r"""|\.(?P<field>[A-Za-z0-9_\-$]+)"""
    r"""|\[\?\(@(?P<fpath>(?:\.[A-Za-z0-9_\-]+)+)\s*(?P<op>==|!=)\s*(?P<fval>"[^"]*"|'[^']*'|[^)\s]+)\s*\)\]"""
    r"""|\[(?P<quoted>'[^']*'|"[^"]*")\]"""
    r"""|\[(?P<index>-?\d+|\*)\]"""
    r"""|\.(?P<star>\*)"""
)


def _parse(path: str) -> list[tuple[str, Any]]:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if text.startswith("$"):
        text = text[1:]
    steps: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"unsupported JSONPath {path!r} at {text[position:]!r}")
        groups = match.groupdict()
        if groups["field"] is not None:
            steps.append(("field", groups["field"]))
        elif groups["quoted"] is not None:
            steps.append(("field", groups["quoted"][1:-1]))
        elif groups["index"] is not None:
            steps.append(("index", groups["index"]))
        elif groups["star"] is not None:
            steps.append(("index", "*"))
        elif groups["rdesc"] is not None:
            steps.append(("descend", groups["rdesc"]))
        else:
            raw = groups["fval"]
            value: Any = raw[1:-1] if raw[0] in "\"'" else json.loads(raw)
            steps.append(("filter", (groups["fpath"][1:].split("."), groups["op"], value)))
        position = match.end()
    return steps


def _descend(value: Any, name: str) -> list[Any]:
    found: list[Any] = []
    if isinstance(value, dict):
        if name in value:
            found.append(value[name])
        for child in value.values():
            found.extend(_descend(child, name))
    elif isinstance(value, list):
        for child in value:
            found.extend(_descend(child, name))
    return found


def _filter(items: Any, fpath: list[str], op: str, want: Any) -> list[Any]:
    if isinstance(items, dict):
        items = list(items.values())
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        current: Any = item
        for key in fpath:
            current = current.get(key) if isinstance(current, dict) else None
        if current is None:
            continue
        if (current == want) == (op == "=="):
            out.append(item)
    return out


def jsonpath_values(obj: Any, path: str) -> list[Any]:
    """Values a kubectl-style JSONPath (``.status.conditions[?(@.type=="Ready")].status``) finds."""
    values = [obj]
    for kind, arg in _parse(path):
        nxt: list[Any] = []
        for value in values:
            if kind == "field" and isinstance(value, dict) and arg in value:
                nxt.append(value[arg])
            elif kind == "index":
                if arg == "*":
                    if isinstance(value, list):
                        nxt.extend(value)
                    elif isinstance(value, dict):
                        nxt.extend(value.values())
                elif isinstance(value, list) and -len(value) <= int(arg) < len(value):
                    nxt.append(value[int(arg)])
            elif kind == "descend":
                nxt.extend(_descend(value, arg))
            elif kind == "filter":
                nxt.extend(_filter(value, *arg))
        values = nxt
    return values


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _cell(obj: dict[str, Any], column: dict[str, Any], now: datetime) -> Any:
    try:
        values = jsonpath_values(obj, str(column.get("jsonPath", "")))
    except ValueError:
        return None
    values = [v for v in values if v is not None]
    if not values:
        return None
    kind = column.get("type", "string")
    if kind == "date":
        moment = _parse_time(values[0])
        if moment is None:
            return "<invalid>"
        return human_duration((now - moment).total_seconds())
    if len(values) > 1:
        return ",".join(v if isinstance(v, str) else json.dumps(v) for v in values)
    value = values[0]
    if kind in ("integer", "number", "boolean"):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _age(timestamp: Any, now: datetime) -> str:
    moment = _parse_time(timestamp)
    if moment is None:
        return "<unknown>"
    return human_duration((now - moment).total_seconds())


_BUILTIN = make_printers(_age)
_NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": NAME_DESCRIPTION,
    "priority": 0,
}


def _definition(column: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": column.get("name", ""),
        "type": column.get("type", "string"),
        "format": column.get("format", ""),
        "description": column.get("description", ""),
        "priority": int(column.get("priority", 0)),
    }


def _builtin_printer(objs: list[dict[str, Any]], kind: str | None) -> Any:
    if kind is None and objs and objs[0].get("apiVersion") in BUILTIN_API_VERSIONS:
        kind = str(objs[0].get("kind", ""))
    return _BUILTIN.get(kind or "")


def build_table(
    objs: list[dict[str, Any]],
    printer_columns: list[dict[str, Any]] | None,
    *,
    now: datetime | str,
    list_meta: dict[str, Any],
    include_object: str = "Metadata",
    kind: str | None = None,
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``objs``: Name, then the printer columns (default: Age).

    Without printer columns, built-in kinds (``kind``, else the objects' own apiVersion/kind)
    get kube's columns (``Pod``: Name, Ready, Status, Restarts, Age, ...). ``include_object``
    is the ``includeObject`` query parameter: ``Metadata`` (default) puts a
    PartialObjectMetadata in each row, ``Object`` the whole object, ``None`` nothing.
    """
    if isinstance(now, str):
        parsed = _parse_time(now)
        if parsed is None:
            raise ValueError(f"now must be an RFC 3339 time, got {now!r}")
        now = parsed
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    printer = None if printer_columns else _builtin_printer(objs, kind)
    if printer is not None:
        definitions = [dict(c) for c in printer[0]]
        definitions[0]["description"] = definitions[0]["description"] or NAME_DESCRIPTION
        cells = [printer[1](obj, now) for obj in objs]
    else:
        columns = list(printer_columns) if printer_columns else [_AGE_COLUMN]
        definitions = [_NAME_COLUMN, *[_definition(c) for c in columns]]
        cells = [
            [(obj.get("metadata") or {}).get("name", ""), *[_cell(obj, c, now) for c in columns]]
            for obj in objs
        ]
    rows = []
    for obj, row_cells in zip(objs, cells, strict=True):
        row: dict[str, Any] = {"cells": row_cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata") or {},
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta),
        "columnDefinitions": definitions,
        "rows": rows,
    }
