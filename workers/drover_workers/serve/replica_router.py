"""Serve layer: Drover's request router across one version's `model` replicas (prefix-cache
affinity, session affinity and engine load), on Ray Serve's request-router extension point.

Ray Serve builds one instance per deployment handle, in the process that holds the handle (the
router application's replica), from the model deployment's `request_router_config`
(`request_router_class: drover_workers.serve.replica_router:PrefixAffinityRouter`,
`request_router_kwargs`: the policy's knobs and the version's labels). Serve calls
`choose_replicas` for each request (ray/serve/_private/request_router/request_router.py,
`RequestRouter.choose_replicas`), takes the first rank whose replica accepts, and reports back
through `on_request_routed` and `on_request_completed`. The decision itself is
`affinity.decide_replica` (pure); the engines' load arrives as each replica's
`record_routing_stats` (ModelServer), which Serve's controller pulls every
`request_routing_stats_period_s` and pushes to this router as `RunningReplica.routing_stats`.
"""

from __future__ import annotations

import logging
from typing import Any

from ray.serve.request_router import (
    LocalityMixin,
    MultiplexMixin,
    PendingRequest,
    ReplicaID,
    RequestRouter,
    RunningReplica,
)

from drover_workers.serve import metrics as serve_metrics
from drover_workers.serve.affinity import (
    PREFERRED_BUSY,
    PrefixIndex,
    ReplicaChoice,
    ReplicaLoad,
    RoutingPolicy,
    SessionIndex,
    decide_replica,
    prefix_blocks,
    prompt_text,
)

log = logging.getLogger("ray.serve")
ROUTER_CLASS = "drover_workers.serve.replica_router:PrefixAffinityRouter"
LABELS = ("service", "namespace", "version")
# The decision rides on the request itself: Serve hands on_request_routed the request object it
# routed, whose metadata's internal id is not always the one choose_replicas saw.
CHOICE_ATTR = "_drover_replica_choice"


def request_of(pending: PendingRequest | None) -> dict[str, Any] | None:
    """The engine request (the dict the router sends to `generate`/`generate_stream`)."""
    if pending is None or not pending.args or not isinstance(pending.args[0], dict):
        return None
    return pending.args[0]


def blocks_of(request: dict[str, Any] | None, policy: RoutingPolicy) -> list[bytes]:
    if request is None:
        return []
    # A LoRA version's KV cache is its own: salt its blocks with the adapter.
    salt = str(request.get("adapter") or "")
    return prefix_blocks(prompt_text(request), policy.block_chars, salt)


def load_of(replica: RunningReplica, ongoing: int, cached_blocks: int) -> ReplicaLoad:
    stats = replica.routing_stats or {}
    return ReplicaLoad(
        replica=replica.replica_id.unique_id,
        ongoing=ongoing,
        waiting=int(stats.get("waiting", 0)),
        kv_cache_usage=float(stats.get("kvCacheUsage", 0.0)),
        cached_blocks=cached_blocks,
    )


class PrefixAffinityRouter(LocalityMixin, MultiplexMixin, RequestRouter):
    """Prefers the session's replica, then the replica that holds the prompt's prefix, within
    a load bound (affinity.decide_replica); the least loaded replica otherwise."""

    def initialize_state(self, **kwargs: Any) -> None:
        self.policy = RoutingPolicy.from_kwargs(kwargs)
        self.prefixes = PrefixIndex(self.policy.max_blocks_per_replica)
        self.sessions = SessionIndex(self.policy.max_sessions)
        self.in_flight: dict[str, int] = {}
        self.turn = 0
        self.labels = {k: str(kwargs.get(k, "")) for k in LABELS}

    def _ongoing(self, replica: RunningReplica) -> int:
        rid = replica.replica_id.unique_id
        seen = self._replica_queue_len_cache.get(replica.replica_id)
        return max(self.in_flight.get(rid, 0), seen or 0)

    def _loads(self, candidates: list[RunningReplica]) -> list[ReplicaLoad]:
        self.turn += 1
        start = self.turn % len(candidates)
        rotated = candidates[start:] + candidates[:start]  # ties go round the replicas
        return [
            load_of(r, self._ongoing(r), self.prefixes.size(r.replica_id.unique_id))
            for r in rotated
        ]

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        """Two ranks: the chosen replica, then every other by load (Serve takes the next rank
        when the chosen one's queue is full)."""
        if not candidate_replicas:
            return []
        loads = self._loads(candidate_replicas)
        request = request_of(pending_request)
        hashes = blocks_of(request, self.policy)
        matched = self.prefixes.matched(hashes, [r.replica for r in loads])
        session = pending_request.metadata.session_id if pending_request else ""
        choice = decide_replica(
            loads, matched, session_replica=self.sessions.get(session), policy=self.policy
        )
        if pending_request is not None:
            setattr(pending_request, CHOICE_ATTR, choice)
            log.debug(
                "request %s -> replica %s (%s): %s",
                pending_request.metadata.request_id,
                choice.replica,
                choice.outcome,
                choice.reason,
            )
        by_id = {r.replica_id.unique_id: r for r in candidate_replicas}
        rest = sorted(
            (r for r in loads if r.replica != choice.replica),
            key=lambda r: (r.saturated(self.policy), r.ongoing, r.waiting, r.kv_cache_usage),
        )
        return [[by_id[choice.replica]], [by_id[r.replica] for r in rest]]

    def on_request_routed(
        self, pending_request: PendingRequest, replica_id: ReplicaID, result: Any
    ) -> None:
        rid = replica_id.unique_id
        self.in_flight[rid] = self.in_flight.get(rid, 0) + 1
        choice: ReplicaChoice | None = getattr(pending_request, CHOICE_ATTR, None)
        self.prefixes.record(rid, blocks_of(request_of(pending_request), self.policy))
        self.sessions.record(pending_request.metadata.session_id, rid)
        if choice is None:
            return
        outcome = choice.outcome if choice.replica == rid else PREFERRED_BUSY
        serve_metrics.note_routing(self.labels, outcome)

    def on_request_completed(self, replica_id: ReplicaID, internal_request_id: str) -> None:
        rid = replica_id.unique_id
        if self.in_flight.get(rid, 0) > 0:
            self.in_flight[rid] -= 1

    def update_replicas(self, replicas: list[RunningReplica]) -> None:
        super().update_replicas(replicas)
        alive = {r.replica_id.unique_id for r in replicas}
        self.prefixes.forget(alive)
        for gone in set(self.in_flight) - alive:
            del self.in_flight[gone]
