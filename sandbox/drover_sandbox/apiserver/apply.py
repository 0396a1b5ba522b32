"""Local control plane, patch layer: server-side apply and ``metadata.managedFields``.

Field ownership is tracked per manager as sets of field paths, stored in kube's ``FieldsV1``
form (``f:spec``, ``k:{"name":"a"}``, ``v:"x"``, ``.``). :func:`server_side_apply` merges an
applied configuration and detects conflicts with other managers; :func:`record_update` keeps
ownership current for ordinary writes (create, update, patch).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .errors import ApiError
from .mergekeys import SET, merge_keys_for
from .structural import clone

__all__ = [
    "fields_to_paths",
    "list_map_keys_from_schema",
    "paths_to_fields",
    "record_update",
    "server_side_apply",
]

Elem = tuple[str, str]  # ("f", name) | ("k", '{"name":"a"}') | ("v", '"x"') | (".", "")
Path = tuple[Elem, ...]
_IGNORED_META = {
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
    "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
}  # fmt: skip
_ITEM = (".", "")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def list_map_keys_from_schema(schema: dict[str, Any], path: str = "") -> dict[str, str]:
    """Merge keys of a CRD schema: ``x-kubernetes-list-type`` map (first key) and set lists."""
    keys: dict[str, str] = {}
    if schema.get("type") == "array" or "items" in schema:
        if schema.get("x-kubernetes-list-type") == "map":
            map_keys = schema.get("x-kubernetes-list-map-keys") or []
            if map_keys:
                keys[path] = map_keys[0]
        elif schema.get("x-kubernetes-list-type") == "set":
            keys[path] = SET
        items = schema.get("items")
        if isinstance(items, dict):
            keys.update(list_map_keys_from_schema(items, path))
    for name, sub in (schema.get("properties") or {}).items():
        keys.update(list_map_keys_from_schema(sub, f"{path}.{name}" if path else name))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        keys.update(list_map_keys_from_schema(extra, path))
    return keys


def _keys(merge_keys: dict[str, str] | None, obj: Any) -> dict[str, str]:
    # ObjectMeta's list types apply to every kind; None means "the built-in keys of the kind".
    kind = str(obj.get("kind", "")) if isinstance(obj, dict) else ""
    base = merge_keys_for(kind)
    return {**base, **merge_keys} if merge_keys is not None else dict(base)


def _fieldset(
    value: Any, keys: dict[str, str], ignore: Iterable[str] = (), *, leaves_only: bool = False
) -> dict[Path, Any]:
    """Every owned path of an object mapped to its value (list items map to the item)."""
    out: dict[Path, Any] = {}
    ignored = set(ignore)
    if isinstance(value, dict):
        for key, child in value.items():
            if key in ("apiVersion", "kind") or key in ignored:
                continue
            if key == "metadata" and isinstance(child, dict):
                meta = {k: v for k, v in child.items() if k not in _IGNORED_META}
                if meta:
                    _walk(meta, (("f", "metadata"),), "metadata", keys, out)
                continue
            _walk(child, (("f", key),), key, keys, out)
    return out


def _walk(value: Any, path: Path, dotted: str, keys: dict[str, str], out: dict[Path, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            _walk(child, (*path, ("f", key)), f"{dotted}.{key}", keys, out)
        return
    key = keys.get(dotted)
    if isinstance(value, list) and key is not None and value:
        for item in value:
            if key == SET:
                out[(*path, ("v", _dumps(item)))] = item
            elif isinstance(item, dict) and key in item:
                item_path = (*path, ("k", _dumps({key: item[key]})))
                out[(*item_path, _ITEM)] = item
                for field, child in item.items():
                    _walk(child, (*item_path, ("f", field)), dotted, keys, out)
        return
    out[path] = value


def paths_to_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """Encode paths as a ``fieldsV1`` object."""
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for kind, name in path:
            token = "." if kind == "." else f"{kind}:{name}"
            node = node.setdefault(token, {})
    return root


def fields_to_paths(fields: dict[str, Any], prefix: Path = ()) -> set[Path]:
    """Decode a ``fieldsV1`` object into paths."""
    paths: set[Path] = set()
    for token, child in (fields or {}).items():
        if token == ".":
            paths.add((*prefix, _ITEM))
            continue
        kind, _, name = token.partition(":")
        path = (*prefix, (kind, name))
        if child:
            paths |= fields_to_paths(child, path)
        else:
            paths.add(path)
    return paths


def _display(path: Path) -> str:
    text = ""
    for kind, name in path:
        if kind == "f":
            text += f".{name}"
        elif kind == "k":
            pairs = json.loads(name)
            text += "[" + ",".join(f"{k}={_dumps(v)}" for k, v in pairs.items()) + "]"
        elif kind == "v":
            text += f"[={name}]"
    return text


def _entry(manager: str, operation: str, api_version: str, now: str, paths: set[Path],
           subresource: str = "") -> dict[str, Any]:  # fmt: skip
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": paths_to_fields(paths),
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def _merge(live: Any, applied: Any, dotted: str, keys: dict[str, str]) -> Any:
    if isinstance(live, dict) and isinstance(applied, dict):
        result = dict(live)
        for key, value in applied.items():
            child = f"{dotted}.{key}" if dotted else key
            result[key] = _merge(live.get(key), value, child, keys) if key in live else value
        return result
    key = keys.get(dotted)
    if isinstance(live, list) and isinstance(applied, list) and key is not None:
        if key == SET:
            return live + [v for v in applied if v not in live]
        merged = list(live)
        for item in applied:
            index = next(
                (i for i, o in enumerate(merged) if isinstance(o, dict)
                 and isinstance(item, dict) and o.get(key) == item.get(key)),
                None,
            )  # fmt: skip
            if index is None:
                merged.append(item)
            else:
                merged[index] = _merge(merged[index], item, dotted, keys)
        return merged
    return applied


def _delete_path(obj: Any, path: Path) -> None:
    node = obj
    for kind, name in path[:-1]:
        node = _step(node, kind, name)
        if node is None:
            return
    kind, name = path[-1]
    if kind == "f" and isinstance(node, dict):
        node.pop(name, None)
    elif kind == "k" and isinstance(node, list):
        want = json.loads(name)
        node[:] = [i for i in node if not (isinstance(i, dict) and _matches(i, want))]
    elif kind == "v" and isinstance(node, list):
        value = json.loads(name)
        node[:] = [i for i in node if i != value]


def _matches(item: dict[str, Any], want: dict[str, Any]) -> bool:
    return all(item.get(k) == v for k, v in want.items())


def _step(node: Any, kind: str, name: str) -> Any:
    if kind == "f" and isinstance(node, dict):
        return node.get(name)
    if kind == "k" and isinstance(node, list):
        want = json.loads(name)
        return next((i for i in node if isinstance(i, dict) and _matches(i, want)), None)
    return None


def _managers(obj: Any) -> list[dict[str, Any]]:
    if not isinstance(obj, dict):
        return []
    entries: list[dict[str, Any]] = clone((obj.get("metadata") or {}).get("managedFields") or [])
    return entries


def _same(a: Any, b: Any) -> bool:
    # JSON equality without Python's True == 1.
    if type(a) is not type(b):
        return False
    return a == b if not isinstance(a, dict | list) else _dumps(a) == _dumps(b)


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    *,
    force: bool,
    now: str,
    merge_keys: dict[str, str] | None = None,
    ignore: Iterable[str] = (),
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge an applied configuration into ``live``; return the object and its managedFields.

    Raise a 409 listing the fields another manager owns with a different value unless
    ``force``; fields this manager applied before and no longer applies, and nobody else
    owns, are removed. ``merge_keys`` (dotted path → key) says which lists merge by key:
    None means the built-in keys of the object's kind (:func:`merge_keys_for`); for a custom
    resource pass :func:`list_map_keys_from_schema`. ``ignore`` names top-level fields the
    server resets (``status`` on the main resource of a kind with a status subresource).
    """
    keys = _keys(merge_keys, applied)
    api_version = str(applied.get("apiVersion", ""))
    applied_values = _fieldset(applied, keys, ignore)
    applied_paths = set(applied_values)
    entries = _managers(live)
    mine = [e for e in entries if e.get("manager") == manager and e.get("operation") == "Apply"]
    others = [e for e in entries if e not in mine]
    live_values = _fieldset(live, keys, ignore) if live is not None else {}
    conflicts: list[tuple[dict[str, Any], Path]] = []
    for entry in others:
        owned = fields_to_paths(entry.get("fieldsV1") or {})
        for path in sorted(owned & applied_paths):
            if path[-1] == _ITEM or path[-1][0] == "v" or path not in live_values:
                continue
            if not _same(live_values[path], applied_values[path]):
                conflicts.append((entry, path))
    if conflicts and not force:
        raise _conflict_error(conflicts)
    taken = {(id(e), p) for e, p in conflicts}
    new_others = []
    for entry in others:
        owned = fields_to_paths(entry.get("fieldsV1") or {})
        kept = {p for p in owned if (id(entry), p) not in taken}
        if kept:
            entry["fieldsV1"] = paths_to_fields(kept)
            new_others.append(entry)
    body = {k: v for k, v in applied.items() if k not in set(ignore)}
    result = clone(_merge(live, body, "", keys) if live is not None else body)
    previous: set[Path] = set()
    for entry in mine:
        previous |= fields_to_paths(entry.get("fieldsV1") or {})
    still_owned = set().union(*(fields_to_paths(e["fieldsV1"]) for e in new_others))
    removed = previous - applied_paths - still_owned
    # Whole list items first (their key fields are needed to find them), then fields.
    for path in sorted(removed, key=lambda p: (p[-1] != _ITEM, -len(p))):
        _delete_path(result, path[:-1] if path[-1] == _ITEM else path)
    entry = _entry(manager, "Apply", api_version, now, applied_paths)
    managed = [entry, *new_others] if not mine else _replace(entries, mine[0], entry, new_others)
    result.setdefault("metadata", {})["managedFields"] = managed
    return result, managed


def _replace(
    entries: list[dict[str, Any]],
    old: dict[str, Any],
    new: dict[str, Any],
    others: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    by_key = {(e.get("manager"), e.get("operation"), e.get("subresource")): e for e in others}
    out = []
    for entry in entries:
        key = (entry.get("manager"), entry.get("operation"), entry.get("subresource"))
        if entry is old or entry == old:
            out.append(new)
        elif key in by_key:
            out.append(by_key[key])
    return out


def _conflict_error(conflicts: list[tuple[dict[str, Any], Path]]) -> ApiError:
    def who(entry: dict[str, Any]) -> str:
        return f'"{entry.get("manager", "")}" using {entry.get("apiVersion", "")}'

    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {who(e)}",
         "field": _display(p)}
        for e, p in conflicts
    ]  # fmt: skip
    count = len(conflicts)
    if count == 1:
        entry, path = conflicts[0]
        detail = f"conflict with {who(entry)}: {_display(path)}"
    else:
        lines: list[str] = []
        for name in sorted({who(e) for e, _ in conflicts}):
            lines.append(f"conflicts with {name}:")
            lines.extend(f"- {_display(p)}" for e, p in conflicts if who(e) == name)
        detail = "\n".join(lines)
    plural = "conflict" if count == 1 else "conflicts"
    message = f"Apply failed with {count} {plural}: {detail}"
    return ApiError(409, "Conflict", message, {"causes": causes})


def record_update(
    live_before: dict[str, Any] | None,
    live_after: dict[str, Any],
    manager: str,
    now: str,
    *,
    operation: str = "Update",
    subresource: str = "",
    merge_keys: dict[str, str] | None = None,
    ignore: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """The managedFields after a non-apply write by ``manager``.

    The manager takes ownership of every field it added or changed (other managers lose
    those); removed fields leave every manager's set. ``merge_keys`` and ``ignore`` as in
    :func:`server_side_apply`; ``subresource="status"`` for writes through ``/status``.
    """
    keys = _keys(merge_keys, live_after)
    before = _fieldset(live_before, keys, ignore) if live_before is not None else {}
    after = _fieldset(live_after, keys, ignore)
    # A list item's own marker (".") changes hands only when the item is new.
    changed = {
        p
        for p, v in after.items()
        if p not in before or (p[-1] != _ITEM and not _same(before[p], v))
    }
    removed = set(before) - set(after)
    entries = _managers(live_before)
    ident = (manager, operation, subresource)
    result: list[dict[str, Any]] = []
    found = False
    for entry in entries:
        owned = fields_to_paths(entry.get("fieldsV1") or {}) - removed
        if (entry.get("manager"), entry.get("operation"), entry.get("subresource", "")) == ident:
            found = True
            owned |= changed
            entry = _entry(manager, operation, str(live_after.get("apiVersion", "")), now,
                           owned, subresource)  # fmt: skip
        else:
            owned -= changed
            if owned:
                entry["fieldsV1"] = paths_to_fields(owned)
        if owned:
            result.append(entry)
    if not found and changed:
        api_version = str(live_after.get("apiVersion", ""))
        result.append(_entry(manager, operation, api_version, now, changed, subresource))
    return result
