"""Local control plane, deletion and garbage collection: finalizers, deletionTimestamp,
owner-reference GC (background, foreground, orphan, blockOwnerDeletion) and namespace deletion.

`Collector.delete` is what DELETE does; `Collector.run` is the background collector.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from .registry import Registry
from .store import Key, Store

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
NAMESPACE_FINALIZER = "kubernetes"
MAX_RETRY_DELAY = 2.0  # seconds between looks at a deletion that waits for finalizers
DANGLING_DELAY = 1.0  # seconds before a dependent without any live owner is collected


def _with_meta(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    meta = {**obj["metadata"], **changes}
    return {**obj, "metadata": {k: v for k, v in meta.items() if v is not None}}


class Collector:
    def __init__(self, store: Store, registry: Registry, now: Callable[[], str]) -> None:
        self.store = store
        self.registry = registry
        self.now = now
        self.queue: asyncio.Queue[tuple[str, Any]] | None = None
        self._pending: list[tuple[str, Any]] = []
        self._attempts: dict[tuple[str, Any], int] = {}
        self._waiting: set[tuple[str, Any]] = set()
        self.crd_removed: Callable[[dict[str, Any]], None] = lambda crd: None

    def enqueue(self, kind: str, arg: Any) -> None:
        if self.queue is None:
            self._pending.append((kind, arg))
        else:
            self.queue.put_nowait((kind, arg))

    def enqueue_later(self, delay: float, kind: str, arg: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.enqueue(kind, arg)
            return
        loop.call_later(delay, self.enqueue, kind, arg)

    # -- what DELETE does ------------------------------------------------------------------
    def delete(self, key: Key, obj: dict[str, Any], policy: str | None) -> tuple[bool, Any]:
        """Delete now, or mark deleting; returns (removed, object or tombstone)."""
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if key == ("", "namespaces"):
            return False, self._delete_namespace(obj)
        if policy == "Foreground" and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        elif policy == "Orphan" and ORPHAN not in finalizers:
            finalizers.append(ORPHAN)
        if not finalizers:
            return True, self.remove(key, obj)
        if meta.get("deletionTimestamp") and finalizers == meta.get("finalizers"):
            return False, obj
        changes: dict[str, Any] = {"finalizers": finalizers}
        if not meta.get("deletionTimestamp"):
            changes["deletionTimestamp"] = self.now()
            changes["deletionGracePeriodSeconds"] = 0
            if meta.get("generation"):
                changes["generation"] = int(meta["generation"]) + 1
        stored = self.store.put(key, _with_meta(obj, **changes), "MODIFIED")
        if FOREGROUND in finalizers:
            self.enqueue("foreground", meta["uid"])
        if ORPHAN in finalizers:
            self.enqueue("orphan", meta["uid"])
        return False, stored

    def remove(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        gone = self.store.remove(key, meta.get("namespace", ""), meta["name"])
        if self.store.dependents_of(meta["uid"]):
            self.enqueue("owner-gone", meta["uid"])
        if key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self.crd_removed(obj)
        return gone or obj

    def after_write(self, key: Key, obj: dict[str, Any]) -> dict[str, Any] | None:
        """After an update: an object being deleted whose last finalizer went is removed."""
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            if key == ("", "namespaces") and (obj.get("spec") or {}).get("finalizers"):
                return None
            return self.remove(key, obj)
        if meta.get("ownerReferences"):
            # Like kube's collector, a dependent whose owners are all gone is collected a little
            # later (an owner may be created just after its dependents).
            self.enqueue_later(
                DANGLING_DELAY, "check-owners", (key, meta.get("namespace", ""), meta["name"])
            )
        return None

    def _delete_namespace(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["metadata"].get("deletionTimestamp"):
            return obj
        new = _with_meta(obj, deletionTimestamp=self.now(), deletionGracePeriodSeconds=0)
        new["status"] = {**(obj.get("status") or {}), "phase": "Terminating"}
        stored = self.store.put(("", "namespaces"), new, "MODIFIED")
        self.enqueue("namespace", obj["metadata"]["name"])
        return stored

    # -- the background collector ----------------------------------------------------------
    async def run(self) -> None:
        self.queue = asyncio.Queue()
        for item in self._pending:
            self.queue.put_nowait(item)
        self._pending.clear()
        while True:
            kind, arg = await self.queue.get()
            try:
                again = self._process(kind, arg)
            except Exception:
                import logging

                logging.getLogger(__name__).exception("gc: %s %s failed", kind, arg)
                again = False
            key = (kind, arg)
            if not again:
                self._attempts.pop(key, None)
                continue
            # Not finished (finalizers pending): look again, backing off up to MAX_RETRY_DELAY.
            attempt = self._attempts[key] = self._attempts.get(key, 0) + 1
            if key not in self._waiting:
                self._waiting.add(key)
                delay = min(0.05 * 2 ** (attempt - 1), MAX_RETRY_DELAY)
                asyncio.get_running_loop().call_later(delay, self._retry, kind, arg)

    def _retry(self, kind: str, arg: Any) -> None:
        self._waiting.discard((kind, arg))
        self.enqueue(kind, arg)

    def _process(self, kind: str, arg: Any) -> bool:
        """Do one step; True means 'not finished, look again shortly'."""
        if kind == "owner-gone":
            for dep_key in self.store.dependents_of(arg):
                self._collect_if_orphaned(*dep_key)
            return False
        if kind == "check-owners":
            self._collect_if_orphaned(*arg)
            return False
        if kind == "foreground":
            return self._foreground(arg)
        if kind == "orphan":
            return self._orphan(arg)
        if kind == "namespace":
            return self._namespace(arg)
        return False

    def _owner_exists(self, ref: dict[str, Any]) -> bool:
        return self.store.get_by_uid(ref.get("uid", "")) is not None

    def _collect_if_orphaned(self, key: Key, namespace: str, name: str) -> None:
        obj = self.store.get(key, namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        refs = obj["metadata"].get("ownerReferences") or []
        if refs and not any(self._owner_exists(r) for r in refs):
            self.delete(key, obj, "Background")

    def _foreground(self, uid: str) -> bool:
        ref = self.store.by_uid.get(uid)
        owner = self.store.get(*ref) if ref else None
        if owner is None or FOREGROUND not in (owner["metadata"].get("finalizers") or []):
            return False
        blocking = False
        for dep_key in self.store.dependents_of(uid):
            dep = self.store.get(*dep_key)
            if dep is None:
                continue
            if not dep["metadata"].get("deletionTimestamp"):
                self.delete(dep_key[0], dep, "Foreground")
                dep = self.store.get(*dep_key)
            if dep is not None and any(
                r.get("uid") == uid and r.get("blockOwnerDeletion")
                for r in dep["metadata"].get("ownerReferences") or []
            ):
                blocking = True
        if blocking:
            return True
        self._drop_finalizer(ref[0], owner, FOREGROUND)
        return False

    def _orphan(self, uid: str) -> bool:
        ref = self.store.by_uid.get(uid)
        owner = self.store.get(*ref) if ref else None
        if owner is None:
            return False
        for dep_key in self.store.dependents_of(uid):
            dep = self.store.get(*dep_key)
            if dep is None:
                continue
            refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            self.store.put(dep_key[0], _with_meta(dep, ownerReferences=refs or None), "MODIFIED")
        self._drop_finalizer(ref[0], owner, ORPHAN)
        return False

    def _drop_finalizer(self, key: Key, obj: dict[str, Any], finalizer: str) -> None:
        finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        new = _with_meta(obj, finalizers=finalizers or None)
        if finalizers:
            self.store.put(key, new, "MODIFIED")
        else:
            self.remove(key, new)

    def _namespace(self, name: str) -> bool:
        ns = self.store.get(("", "namespaces"), "", name)
        if ns is None:
            return False
        remaining = False
        keys = {(r.group, r.plural) for r in self.registry.all() if r.namespaced}
        keys |= {k for k in self.store.objects if k != ("", "namespaces")}
        for key in keys:
            for obj in list(self.store.items(key, name)):
                remaining = True
                if not obj["metadata"].get("deletionTimestamp"):
                    self.delete(key, obj, "Background")
        if remaining:
            return True
        with contextlib.suppress(KeyError):
            spec = {**(ns.get("spec") or {}), "finalizers": []}
            ns = {**ns, "spec": spec}
        if not ns["metadata"].get("finalizers"):
            self.remove(("", "namespaces"), ns)
        else:
            self.store.put(("", "namespaces"), ns, "MODIFIED")
        return False
