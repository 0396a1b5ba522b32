"""k8s layer: the last body the watch showed of each Drover resource, for reads of a dependency.

A service reads its model and its index, a fine-tune its base model, an index its embedder, on
every reconcile; with a thousand services those GETs were the largest share of the operator's
API requests (bench/reconcile.py). kopf already watches these objects, so the operator keeps the
last body each watch event showed (as controller-runtime's informer cache does) and reads a
dependency from it. A body here can be a moment older than the API server's: that is safe,
because when a dependency changes its watch event reconciles the objects that read it
(handlers/kicks.py). A name not here yet (created a moment ago) is read from the API server.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from typing import Any

Key = tuple[str, str, str]  # kind, namespace, name


class WatchCache:
    def __init__(self) -> None:
        self._bodies: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(kind: str, body: Mapping[str, Any]) -> Key:
        meta = body.get("metadata") or {}
        return kind, meta.get("namespace") or "default", str(meta.get("name"))

    def seen(self, kind: str, body: Mapping[str, Any], event_type: str | None) -> None:
        """Record the body of a watch event; a deleted object is forgotten."""
        key = self.key(kind, body)
        with self._lock:
            if event_type == "DELETED":
                self._bodies.pop(key, None)
            else:
                self._bodies[key] = _lean(body)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of the last body seen, or None when this name was never seen (or deleted)."""
        with self._lock:
            body = self._bodies.get((kind, namespace, name))
        return copy.deepcopy(body) if body is not None else None

    def __len__(self) -> int:
        return len(self._bodies)


def _lean(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `body` without what no dependency read needs and what costs the most memory:
    managedFields and kopf's annotations (the last-handled spec is a copy of the whole spec)."""
    lean = copy.deepcopy({k: v for k, v in body.items() if k != "metadata"})
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if "last-handled-configuration" not in k and not k.startswith("kopf.zalando.org/")
    }
    lean["metadata"] = copy.deepcopy({**meta, "annotations": annotations})
    return lean


WATCHED = WatchCache()
