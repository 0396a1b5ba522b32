"""Local control plane, object store: objects by resource, one resourceVersion counter, indexes.

Stored dicts are never mutated in place: every write stores a new dict, so readers and watch
events can share them. Every operation costs the same whatever the history (no request log).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .watch import WatchHub

Key = tuple[str, str]  # (group, plural)
ObjKey = tuple[Key, str, str]  # (storage key, namespace, name)


class Store:
    def __init__(self, watch_capacity: int = 20_000) -> None:
        self.rv = 0
        self.objects: dict[Key, dict[tuple[str, str], dict[str, Any]]] = {}
        self.by_uid: dict[str, ObjKey] = {}
        self.dependents: dict[str, set[ObjKey]] = {}  # owner uid -> dependents
        self.hub = WatchHub(watch_capacity)
        self.dirty = False
        self._sorted: dict[Key, list[tuple[str, str]]] = {}  # cached sorted keys per resource

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def bucket(self, key: Key) -> dict[tuple[str, str], dict[str, Any]]:
        b = self.objects.get(key)
        if b is None:
            b = self.objects[key] = {}
        return b

    def sorted_keys(self, key: Key) -> list[tuple[str, str]]:
        """(namespace, name) of every object, sorted; rebuilt only after a create or delete."""
        cached = self._sorted.get(key)
        if cached is None:
            cached = self._sorted[key] = sorted(self.objects.get(key, {}))
        return cached

    def get(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(key, {}).get((namespace, name))

    def get_by_uid(self, uid: str) -> dict[str, Any] | None:
        ref = self.by_uid.get(uid)
        return self.get(*ref) if ref else None

    def items(self, key: Key, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        for (ns, _), obj in self.objects.get(key, {}).items():
            if namespace is None or ns == namespace:
                yield obj

    def count(self, key: Key) -> int:
        return len(self.objects.get(key, {}))

    def put(self, key: Key, obj: dict[str, Any], event_type: str) -> dict[str, Any]:
        """Store `obj` (a fresh dict) with a new resourceVersion and publish the event."""
        meta = obj["metadata"]
        rv = self.next_rv()
        meta["resourceVersion"] = str(rv)
        okey = (key, meta.get("namespace", ""), meta["name"])
        old = self.get(*okey)
        if old is not None:
            self._unindex(okey, old)
        else:
            self._sorted.pop(key, None)
        self.bucket(key)[(okey[1], okey[2])] = obj
        self._index(okey, obj)
        self.hub.publish(key, (rv, event_type, obj))
        self.dirty = True
        return obj

    def remove(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get(key, {}).pop((namespace, name), None)
        if obj is None:
            return None
        self._unindex((key, namespace, name), obj)
        self._sorted.pop(key, None)
        rv = self.next_rv()
        gone = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(rv)}}
        self.hub.publish(key, (rv, "DELETED", gone))
        self.dirty = True
        return gone

    def restore(self, key: Key, obj: dict[str, Any]) -> None:
        """Put an object back as it was (snapshot load): no new version, no event."""
        meta = obj["metadata"]
        self.bucket(key)[(meta.get("namespace", ""), meta["name"])] = obj
        self._sorted.pop(key, None)
        self._index((key, meta.get("namespace", ""), meta["name"]), obj)

    def drop_resource(self, key: Key) -> None:
        for ns, name in list(self.objects.get(key, {})):
            self.remove(key, ns, name)
        self.objects.pop(key, None)
        self._sorted.pop(key, None)

    def _index(self, okey: ObjKey, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.by_uid[meta["uid"]] = okey
        for ref in meta.get("ownerReferences") or []:
            if ref.get("uid"):
                self.dependents.setdefault(ref["uid"], set()).add(okey)

    def _unindex(self, okey: ObjKey, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.by_uid.pop(meta["uid"], None)
        for ref in meta.get("ownerReferences") or []:
            deps = self.dependents.get(ref.get("uid", ""))
            if deps is not None:
                deps.discard(okey)
                if not deps:
                    del self.dependents[ref["uid"]]

    def dependents_of(self, uid: str) -> list[ObjKey]:
        return list(self.dependents.get(uid, ()))

    def all_objects(self) -> Iterator[tuple[Key, dict[str, Any]]]:
        for key, bucket in self.objects.items():
            for obj in bucket.values():
                yield key, obj
