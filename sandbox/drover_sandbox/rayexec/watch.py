"""Local stack, Ray executor: an in-memory cache of RayJobs and RayServices kept by list + watch.

One thread per kind lists (remembering the resourceVersion), then watches from it; a 410 Gone or a
broken stream means a fresh list. Every change wakes the executor through `changed`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch

log = logging.getLogger("drover.rayexec")

GROUP, VERSION = "ray.io", "v1"
Key = tuple[str, str]  # (namespace, name)


class Cache:
    """Objects of one plural, keyed by (namespace, name); `deleted` collects removed objects."""

    def __init__(self, plural: str) -> None:
        self.plural = plural
        self.lock = threading.Lock()
        self.objects: dict[Key, dict[str, Any]] = {}
        self.deleted: list[dict[str, Any]] = []
        self.synced = threading.Event()

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.objects.values())

    def take_deleted(self) -> list[dict[str, Any]]:
        with self.lock:
            out, self.deleted = self.deleted, []
            return out

    def replace(self, items: list[dict[str, Any]]) -> None:
        with self.lock:
            fresh = {_key(o): o for o in items}
            self.deleted += [o for k, o in self.objects.items() if k not in fresh]
            self.objects = fresh
        self.synced.set()

    def apply(self, kind: str, obj: dict[str, Any]) -> None:
        with self.lock:
            if kind == "DELETED":
                self.objects.pop(_key(obj), None)
                self.deleted.append(obj)
            else:
                self.objects[_key(obj)] = obj

    def update_status(self, obj: dict[str, Any]) -> None:
        """Record our own write so the next pass does not act on a stale status."""
        with self.lock:
            key = _key(obj)
            current = self.objects.get(key)
            if current is None:
                return
            old_rv = int(current["metadata"].get("resourceVersion") or 0)
            if int(obj["metadata"].get("resourceVersion") or 0) >= old_rv:
                self.objects[key] = obj


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def watch_forever(
    api: client.CustomObjectsApi, cache: Cache, stop: threading.Event, changed: Callable[[], None]
) -> None:
    """List + watch `cache.plural` until `stop` is set (watches end every 30 s to check it)."""
    while not stop.is_set():
        try:
            listing = api.list_cluster_custom_object(GROUP, VERSION, cache.plural)
            cache.replace(list(listing.get("items") or []))
            changed()
            version = listing["metadata"].get("resourceVersion")
            while not stop.is_set():
                stream = watch.Watch()
                for event in stream.stream(
                    api.list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    cache.plural,
                    resource_version=version,
                    timeout_seconds=5,
                    allow_watch_bookmarks=True,
                ):
                    obj, kind = event["object"], event["type"]
                    if kind == "ERROR":
                        raise _Gone(str(obj))
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if kind != "BOOKMARK":
                        cache.apply(kind, obj)
                        changed()
                    if stop.is_set():
                        stream.stop()
                        break
        except _Gone:
            log.info("watch of %s expired (410); listing again", cache.plural)
        except client.ApiException as exc:
            if exc.status != 410:
                log.warning("watch of %s failed (%s); retrying in 2 s", cache.plural, exc.status)
                stop.wait(2)
        except Exception as exc:
            log.warning("watch of %s broke (%s); retrying in 2 s", cache.plural, exc)
            stop.wait(2)


class _Gone(Exception):
    pass
