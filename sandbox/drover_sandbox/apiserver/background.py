"""Local control plane, background loops: periodic snapshots to disk and Event expiry.

Started by `server.py` on application start-up and cancelled on shutdown.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import snapshot
from .gc import Collector
from .store import Store

EVENT_KEYS = (("", "events"), ("events.k8s.io", "events"))


async def save_snapshots(store: Store, path: Path | None, interval: float = 1.0) -> None:
    """Write the snapshot (in a thread) whenever something changed since the last one."""
    assert path is not None
    while True:
        await asyncio.sleep(interval)
        if store.dirty:
            await asyncio.get_running_loop().run_in_executor(
                None, snapshot.save, path, _frozen(store)
            )


def _frozen(store: Store) -> Store:
    """A shallow copy the thread can read while the loop keeps writing (stored objects are
    never mutated in place, so sharing them is safe)."""
    copy = Store.__new__(Store)
    copy.rv = store.rv
    copy.objects = {k: dict(v) for k, v in store.objects.items()}
    copy.dirty = False
    store.dirty = False
    return copy


async def expire_events(store: Store, collector: Collector, ttl: float) -> None:
    """Events expire `ttl` seconds after creation, as with kube-apiserver's --event-ttl (1 h)."""
    while True:
        await asyncio.sleep(min(60.0, ttl / 4))
        cutoff = (datetime.now(UTC) - timedelta(seconds=ttl)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for key in EVENT_KEYS:
            for obj in list(store.items(key)):
                if obj["metadata"].get("creationTimestamp", "") < cutoff:
                    collector.remove(key, obj)
