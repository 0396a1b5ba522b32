"""Handlers layer: react to a dependency's status when it changes, not on the next poll.

A FoundationModel waits for its fetch RayJob, an InferenceService for its RayService and for the
models and index it names. Polling (every `progressPollSeconds`) found each change up to a poll
late, and with a thousand resources the polls themselves were most of the operator's work
(bench/reconcile.py). kopf delivers every watch event of the children and of Drover's own kinds
to `Kicks.seen`; when the part of an object's status that others act on has changed, the objects
that act on it are reconciled at once: the controller owner of a RayJob or RayService (or of a
Drover resource Drover made), and every Drover resource whose spec names the object (a service's
model, adapter and index, a fine-tune's base model, an index's embedder). The polls stay, as
the safety net for what no watch event says (progress read from Ray's dashboard, time passing).

What counts as a change: for RayJobs and RayServices their status without timestamps and without
the Ray cluster's own status (pod counts, resources: KubeRay rewrites it, nobody here reads it);
for Drover's kinds the fields a dependent reads (phase, digest, path, index version).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from drover.api.base import API_VERSION

DROVER_KINDS = ("FoundationModel", "FineTuneJob", "VectorIndex", "InferenceService")
# What a dependent reads of a Drover resource's status (serving_inputs, finetunejob, vectorindex).
_DEPENDED_ON = ("phase", "digest", "path", "version", "outputModel")
# The phases a dependent acts on; the others (Pending, Fetching, Building, Running, ...) all
# mean "not yet" to it, and are not worth reconciling every dependent for.
_SETTLED = ("Ready", "Succeeded", "Failed")

Key = tuple[str, str, str]  # kind, namespace, name


def fingerprint(kind: str, status: Mapping[str, Any] | None) -> str:
    """The part of `status` that the objects acting on this one read, as a comparable string."""
    status = dict(status or {})
    if kind in DROVER_KINDS:
        kept: Any = {k: status[k] for k in _DEPENDED_ON if k in status}
        if kept.get("phase") not in _SETTLED:  # Pending and Fetching are the same to dependents
            kept.pop("phase", None)
    else:
        kept = _without_clocks({k: v for k, v in status.items() if k != "rayClusterStatus"})
    return json.dumps(kept, sort_keys=True, separators=(",", ":")) if kept else ""


def _without_clocks(value: Any) -> Any:
    """`value` without the keys KubeRay rewrites on every status write (…Time, …Timestamp)."""
    if isinstance(value, dict):
        return {
            k: _without_clocks(v)
            for k, v in value.items()
            if not (k.endswith("Time") or k.endswith("Timestamp"))
        }
    if isinstance(value, list):
        return [_without_clocks(v) for v in value]
    return value


def controller_owner(body: Mapping[str, Any]) -> Key | None:
    """The Drover resource that controls `body` (its owner reference with controller: true)."""
    meta = body.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if (
            ref.get("controller")
            and ref.get("apiVersion") == API_VERSION
            and ref.get("kind") in DROVER_KINDS
        ):
            return ref["kind"], meta.get("namespace") or "default", ref["name"]
    return None


def references(kind: str, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The Drover resources (kind, name) whose status the spec of `body` depends on."""
    spec = body.get("spec") or {}

    def named(ref: Any) -> str | None:
        return ref.get("name") if isinstance(ref, Mapping) and ref.get("name") else None

    wanted: list[tuple[str, Any]] = []
    if kind == "InferenceService":
        retrieval = spec.get("retrieval") or {}
        wanted = [
            ("FoundationModel", spec.get("model")),
            ("FoundationModel", spec.get("adapter")),
            (
                "VectorIndex",
                retrieval.get("vectorIndex") if isinstance(retrieval, Mapping) else None,
            ),
        ]
    elif kind == "FineTuneJob":
        wanted = [("FoundationModel", spec.get("baseModel"))]
    elif kind == "VectorIndex":
        wanted = [("FoundationModel", spec.get("embeddingModel"))]
    return [(k, n) for k, ref in wanted if (n := named(ref))]


def index_entry(kind: str, body: Mapping[str, Any]) -> dict[Key, Key]:
    """A kopf index entry: (referenced kind, namespace, name) → the referring resource."""
    meta = body.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    return {
        (ref_kind, ns, ref): (kind, ns, meta["name"]) for ref_kind, ref in references(kind, body)
    }


class Kicks:
    """The last fingerprint seen per object (by uid), and which objects a change concerns."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}
        self._locks: dict[Key, threading.RLock] = {}
        self._kicked: dict[Key, float] = {}
        self._lock = threading.Lock()

    def kicked(self, key: Key, when: float) -> None:
        """Record that `key` was reconciled from a fresh read at `when` (monotonic seconds)."""
        with self._lock:
            self._kicked[key] = when

    def kicked_within(self, key: Key, now: float, seconds: float) -> bool:
        """Whether a kick reconciled `key` in the last `seconds`: its poll would redo the same
        work from an older body (kopf's), writing and announcing what the kick already did."""
        with self._lock:
            return now - self._kicked.get(key, float("-inf")) < seconds

    def lock(self, key: Key) -> threading.RLock:
        """The lock serialising the reconciles of one object (its change handler, its poll and
        its kicks); re-entrant, as a kick holds it from its read through the reconcile."""
        with self._lock:
            return self._locks.setdefault(key, threading.RLock())

    def seen(
        self,
        kind: str,
        body: Mapping[str, Any],
        event_type: str | None,
        dependents: Iterable[Key] = (),
    ) -> list[Key]:
        """The objects to reconcile now that `body` was seen in a watch event of `event_type`.

        kopf gives the initial listing (at start-up, after a 410) the type None: a first sight
        there is state the owners' resume handlers read anyway, so it is recorded, not acted on.
        A first sight in a watch event (ADDED, or a later event kopf batched with it) with a
        status already written is acted on: nothing else would tell the owner before its poll.
        """
        meta = body.get("metadata") or {}
        uid = meta.get("uid") or f"{kind}/{meta.get('namespace')}/{meta.get('name')}"
        if event_type == "DELETED":
            with self._lock:
                self._seen.pop(uid, None)
                key = (kind, meta.get("namespace") or "default", str(meta.get("name")))
                self._locks.pop(key, None)
                self._kicked.pop(key, None)
            return self._targets(body, dependents)
        new = fingerprint(kind, body.get("status"))
        with self._lock:
            old = self._seen.get(uid)
            self._seen[uid] = new
        changed = new != old if old is not None else bool(new) and event_type is not None
        return self._targets(body, dependents) if changed else []

    @staticmethod
    def _targets(body: Mapping[str, Any], dependents: Iterable[Key]) -> list[Key]:
        owner = controller_owner(body)
        found = ([owner] if owner else []) + [d for d in dependents if d != owner]
        return list(dict.fromkeys(found))

    def __len__(self) -> int:
        return len(self._seen)


class QuietReactions(logging.Filter):
    """kopf logs "Handler '...' succeeded." for every watch event its event handlers see: with
    the kicks' handlers that is a line per status write of every child. They stay quiet unless
    they act (a kick logs what its reconcile does, as a poll would)."""

    QUIET = ("rayjob_event", "rayservice_event", "drover_event")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.endswith(" succeeded.") and any(f"'{h}'" in message for h in self.QUIET)
        )
