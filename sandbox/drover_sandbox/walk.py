"""Local stack: watch Drover resources move through their phases, printing each change.

Shared by `drover demo` and the end-to-end test: `Walker.until` polls the four kinds, prints a
line whenever a resource's phase or main condition message changes, and returns once a predicate
holds (or raises `TimeoutError` naming what it was waiting for). Bounded: every wait has a limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "drover.dev", "v1alpha1"
PLURALS = {
    "FoundationModel": "foundationmodels",
    "FineTuneJob": "finetunejobs",
    "VectorIndex": "vectorindexes",
    "InferenceService": "inferenceservices",
}

Obj = dict[str, Any]


def summary(kind: str, obj: Mapping[str, Any]) -> str:
    """One line a person reads: phase plus the most telling detail of this kind."""
    status = obj.get("status") or {}
    phase = status.get("phase") or "Pending"
    detail = ""
    if kind == "FineTuneJob" and status.get("progress"):
        p = status["progress"]
        detail = f"step {p.get('step')}/{p.get('totalSteps')} loss {p.get('loss')}"
    if kind == "FineTuneJob" and status.get("evaluation"):
        detail = f"evaluation {status['evaluation']}"
    if kind == "FoundationModel" and status.get("digest"):
        detail = f"{status['digest'][:19]} {int(status.get('sizeBytes') or 0) / 1e6:.1f} MB"
    if kind == "VectorIndex" and status.get("version"):
        detail = (
            f"v{status['version']}: {status.get('documents')} docs, {status.get('chunks')} chunks"
        )
    if kind == "InferenceService":
        parts = []
        for key in ("stable", "canary"):
            if status.get(key):
                v = status[key]
                ready = "ready" if v.get("ready") else "not ready"
                parts.append(f"{key} {v.get('model')} {v.get('weight')}% ({ready})")
        rollout = status.get("rollout") or {}
        if rollout.get("phase") not in (None, "Stable"):
            parts.append(f"rollout {rollout.get('phase')}: {rollout.get('reason', '')}")
        detail = "; ".join(parts)
    if not detail:
        ready = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
        detail = (ready or {}).get("message", "")
    return f"{phase}{' - ' + detail if detail else ''}"


class Walker:
    """Polls Drover objects in one namespace and reports changes through `say`."""

    def __init__(self, namespace: str, say: Callable[[str], None] = print) -> None:
        self.namespace = namespace
        self.say = say
        self.api = client.CustomObjectsApi()
        self.seen: dict[tuple[str, str], str] = {}
        self.start = time.monotonic()

    def get(self, kind: str, name: str) -> Obj | None:
        try:
            obj = self.api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURALS[kind], name
            )
            return dict(obj)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def poll(self) -> dict[tuple[str, str], Obj]:
        found: dict[tuple[str, str], Obj] = {}
        for kind, plural in PLURALS.items():
            items = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural)
            for obj in items.get("items", []):
                key = (kind, obj["metadata"]["name"])
                found[key] = obj
                line = summary(kind, obj)
                if self.seen.get(key) != line:
                    self.seen[key] = line
                    elapsed = int(time.monotonic() - self.start)
                    self.say(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {kind}/{key[1]}: {line}")
        return found

    def until(
        self,
        what: str,
        predicate: Callable[[dict[tuple[str, str], Obj]], bool],
        *,
        timeout: float,
        interval: float = 2.0,
        tick: Callable[[], None] | None = None,
    ) -> dict[tuple[str, str], Obj]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.poll()
            if predicate(found):
                return found
            for (kind, name), obj in found.items():
                if (obj.get("status") or {}).get("phase") == "Failed" and kind != "FineTuneJob":
                    raise RuntimeError(f"{kind}/{name} failed: {summary(kind, obj)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")
            if tick is not None:
                tick()
            time.sleep(interval)


def phase_is(kind: str, name: str, *phases: str) -> Callable[[dict[tuple[str, str], Obj]], bool]:
    def check(found: dict[tuple[str, str], Obj]) -> bool:
        obj = found.get((kind, name))
        return obj is not None and (obj.get("status") or {}).get("phase") in phases

    return check


def all_of(
    *checks: Callable[[dict[tuple[str, str], Obj]], bool],
) -> Callable[[dict[tuple[str, str], Obj]], bool]:
    return lambda found: all(check(found) for check in checks)
