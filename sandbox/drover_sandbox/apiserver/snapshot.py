"""Local control plane, on-disk snapshot: every object and the resourceVersion counter in one JSON
file, written atomically when something changed, so a restart keeps the objects.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .registry import Registry
from .store import Store

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")


def save(path: Path, store: Store) -> None:
    data = {"resourceVersion": store.rv, "objects": [obj for _, obj in store.all_objects()]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)
    store.dirty = False


def load(path: Path, store: Store, registry: Registry) -> int:
    """Restore objects (CRDs first, so their resources exist); returns how many were loaded."""
    if not path.exists():
        return 0
    data = json.loads(path.read_text())
    objects: list[dict[str, Any]] = data.get("objects") or []
    crds = [o for o in objects if o.get("kind") == "CustomResourceDefinition"]
    for crd in crds:
        registry.register_crd(crd)
    loaded = 0
    for obj in objects:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        res = registry.by_kind(api_version, kind)
        if res is None:
            continue
        store.restore(res.storage_key, obj)
        loaded += 1
    store.rv = max(int(data.get("resourceVersion") or 0), store.rv)
    # Events before the restart are unknown: resuming from an older version is 410 Gone.
    store.hub.floor_rv = store.rv
    store.dirty = False
    return loaded
