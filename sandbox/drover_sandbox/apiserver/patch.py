"""Local control plane, patch layer: JSON merge, JSON and strategic merge patches, and apply.

Pure functions over decoded JSON objects. Failures raise :class:`ApiError` with the status
kube-apiserver answers (a failed JSON patch ``test`` is a 422; strategic merge on a custom
resource is a 415). Server-side apply and managedFields live in :mod:`.apply` and are
re-exported here.
"""

from __future__ import annotations

from typing import Any

from .apply import record_update, server_side_apply
from .errors import ApiError, bad_request, unprocessable, unsupported_media_type
from .mergekeys import BUILTIN_MERGE_KEYS, SET, merge_keys_for
from .structural import clone

__all__ = [
    "BUILTIN_MERGE_KEYS",
    "PATCH_CONTENT_TYPES_CUSTOM",
    "SET",
    "json_merge_patch",
    "json_patch",
    "merge_keys_for",
    "record_update",
    "server_side_apply",
    "strategic_merge_patch",
    "strategic_merge_unsupported",
]


PATCH_CONTENT_TYPES_CUSTOM = (
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)


def json_merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    return _merge_into(clone(doc) if isinstance(doc, dict) else {}, patch)


def _merge_into(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            target[key] = _merge_into(current if isinstance(current, dict) else {}, value)
        else:
            target[key] = clone(value)
    return target


# --- RFC 6902 -------------------------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise unprocessable(f'invalid JSON pointer: "{path}"')
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise KeyError(token)
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise KeyError(token)
    return index


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict):
            node = node[part]
        elif isinstance(node, list):
            node = node[_index(node, part, allow_end=False)]
        else:
            raise KeyError(part)
    return node


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    if isinstance(parent, dict):
        return parent[parts[-1]]
    if isinstance(parent, list):
        return parent[_index(parent, parts[-1], allow_end=False)]
    raise KeyError(parts[-1])


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    if isinstance(parent, dict):
        parent[parts[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, parts[-1], allow_end=True), value)
    else:
        raise KeyError(parts[-1])
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _parent(doc, parts)
    if isinstance(parent, dict):
        return parent.pop(parts[-1])
    if isinstance(parent, list):
        return parent.pop(_index(parent, parts[-1], allow_end=False))
    raise KeyError(parts[-1])


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 on a copy of ``doc``; 400 for a malformed patch, 422 when an op does not apply."""
    if not isinstance(ops, list):
        raise bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )  # fmt: skip
    result = clone(doc)
    for op in ops:
        if not isinstance(op, dict):
            raise bad_request("json: cannot unmarshal into Go value of type jsonpatch.Operation")
        result = _apply_op(result, op)
    return result


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    path = op.get("path", "")
    parts = _pointer(path)
    try:
        if kind == "add":
            return _add(doc, parts, _value(op))
        if kind == "remove":
            if not parts:
                raise KeyError(path)
            _remove(doc, parts)
            return doc
        if kind == "replace":
            if not parts:
                return _value(op)
            _get(doc, parts)
            parent = _parent(doc, parts)
            if isinstance(parent, dict):
                parent[parts[-1]] = _value(op)
            else:
                parent[_index(parent, parts[-1], allow_end=False)] = _value(op)
            return doc
        if kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            try:
                value = _get(doc, source) if kind == "copy" else _remove(doc, source)
            except (KeyError, IndexError, TypeError):
                message = (
                    f"{kind} operation does not apply: doc is missing from path: {op.get('from')}"
                )
                raise unprocessable(f"{message}: missing value") from None
            return _add(doc, parts, clone(value))
        if kind == "test":
            try:
                current = _get(doc, parts)
            except (KeyError, IndexError, TypeError):
                current = _MISSING
            if current is _MISSING or not _equal(current, op.get("value")):
                raise unprocessable(f"testing value {path} failed: test failed")
            return doc
    except (KeyError, IndexError, TypeError):
        raise unprocessable(_missing_message(str(kind), path)) from None
    raise unprocessable(f"Unexpected kind: {kind}")


_MISSING = object()


def _value(op: dict[str, Any]) -> Any:
    if "value" not in op:
        raise unprocessable(f"{op.get('op')} operation, missing value: {op.get('path')}")
    return clone(op["value"])


def _missing_message(kind: str, path: str) -> str:
    if kind == "replace":
        return f"replace operation does not apply: doc is missing key: {path}: missing value"
    if kind == "remove":
        return f'remove operation does not apply: doc is missing path: "{path}": missing value'
    return f'{kind} operation does not apply: doc is missing path: "{path}": missing value'


# --- strategic merge patch ------------------------------------------------------------------


def strategic_merge_unsupported() -> ApiError:
    """The 415 kube answers for a strategic merge patch on a custom resource."""
    return unsupported_media_type(PATCH_CONTENT_TYPES_CUSTOM)


def strategic_merge_patch(doc: Any, patch: Any, merge_keys: dict[str, str]) -> Any:
    """Apply a strategic merge patch as kubectl sends it.

    Handles ``$patch: replace|delete|merge`` on maps and list items, ``$retainKeys``,
    ``$setElementOrder/<list>``, ``$deleteFromPrimitiveList/<list>`` and merging of lists by
    ``merge_keys`` (paths like ``spec.template.spec.containers``; :data:`SET` for scalar sets).
    """
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch must be a JSON object")
    merged = _smp_map(clone(doc) if isinstance(doc, dict) else {}, patch, "", merge_keys)
    return {} if merged is None else merged


def _smp_map(
    orig: dict[str, Any], patch: dict[str, Any], path: str, keys: dict[str, str]
) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: clone(v) for k, v in patch.items() if not k.startswith("$")}
    if directive not in (None, "merge"):
        raise bad_request(f"Unknown patch type: {directive}")
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        for key in [k for k in orig if k not in retain]:
            del orig[key]
    orders = {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
        elif key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(orig.get(name), list) and isinstance(value, list):
                orig[name] = [v for v in orig[name] if v not in value]
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        child_path = f"{path}.{key}" if path else key
        if value is None:
            orig.pop(key, None)
        elif isinstance(value, dict) and isinstance(orig.get(key), dict):
            merged = _smp_map(orig[key], value, child_path, keys)
            if merged is None:
                orig.pop(key, None)
            else:
                orig[key] = merged
        elif isinstance(value, dict):
            merged = _smp_map({}, value, child_path, keys)
            if merged is not None and value.get("$patch") != "delete":
                orig[key] = merged
            else:
                orig.pop(key, None)
        elif isinstance(value, list) and child_path in keys:
            orig[key] = _smp_list(orig.get(key), value, child_path, keys)
        else:
            orig[key] = clone(value)
    for key, order in orders.items():
        child_path = f"{path}.{key}" if path else key
        if isinstance(orig.get(key), list) and isinstance(order, list):
            orig[key] = _reorder(orig[key], order, keys.get(child_path, SET))
    return orig


def _smp_list(orig: Any, patch: list[Any], path: str, keys: dict[str, str]) -> list[Any]:
    current = clone(orig) if isinstance(orig, list) else []
    key = keys[path]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [clone(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if key == SET:
        for item in patch:
            if item not in current:
                current.append(clone(item))
        return current
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {key}")
        match = next(
            (i for i, o in enumerate(current) if isinstance(o, dict) and o.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if match is not None:
                del current[match]
            continue
        if match is None:
            merged = _smp_map({}, item, path, keys)
            if merged is not None:
                current.append(merged)
        else:
            merged = _smp_map(current[match], item, path, keys)
            if merged is None:
                del current[match]
            else:
                current[match] = merged
    return current


def _reorder(items: list[Any], order: list[Any], key: str) -> list[Any]:
    def ident(item: Any) -> Any:
        if key == SET or not isinstance(item, dict):
            return repr(item)
        return repr(item.get(key))

    wanted = [ident(o) if key == SET else repr(o.get(key)) for o in order if o is not None]
    position = {w: i for i, w in enumerate(wanted)}
    ranked = sorted(
        enumerate(items), key=lambda p: (position.get(ident(p[1]), len(wanted) + p[0]))
    )  # fmt: skip
    return [item for _, item in ranked]
