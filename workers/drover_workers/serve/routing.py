"""Serve layer: which version answers a request. Pure: weights and readiness in, a version out.

Weights are percentages per version from the router's user_config; only ready versions count and
the shares renormalise over them. Smooth weighted round-robin (as nginx does) gives each version
its exact share over any window of requests, which keeps canary exposure precise and testable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from drover_workers.serve.config import MODEL_DEPLOYMENT


class WeightedPicker:
    """Smooth weighted round-robin over the ready versions with a positive weight."""

    def __init__(self) -> None:
        self._credit: dict[str, float] = {}

    def next_version(self, weights: dict[str, float], ready: set[str]) -> tuple[str | None, str]:
        """The version for the next request and why (or None and the reason nothing can serve)."""
        live = {v: w for v, w in sorted(weights.items()) if v in ready and w > 0}
        if not live:
            if not ready:
                return None, "no version is ready yet"
            return None, f"no ready version has traffic weight (ready: {sorted(ready)})"
        for stale in set(self._credit) - set(live):
            del self._credit[stale]
        total = sum(live.values())
        best = ""
        for version, weight in live.items():
            self._credit[version] = self._credit.get(version, 0.0) + weight
            if not best or self._credit[version] > self._credit[best]:
                best = version
        self._credit[best] -= total
        return best, f"weight {live[best] / total:.0%} of ready versions"


async def hold_until_ready(
    ready: Callable[[], Awaitable[set[str]]],
    pick: Callable[[set[str]], str | None],
    hold_seconds: float,
    *,
    poll_seconds: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> str | None:
    """The activator's wait (Knative's activator, llm-d's flow control): poll readiness until
    `pick` finds a version for the request, or give up (None) after `hold_seconds`."""
    deadline = clock() + hold_seconds
    while True:
        version = pick(await ready())
        if version is not None:
            return version
        if clock() >= deadline:
            return None
        await sleep(min(poll_seconds, max(deadline - clock(), 0.0)))


T = TypeVar("T")


class ReplicasLost(Exception):
    """The version lost its last running replica while a request waited for its answer."""


async def unless_replicas_lost(
    answer: Awaitable[T],
    is_ready: Callable[[], Awaitable[bool]],
    grace_seconds: float,
    *,
    poll_seconds: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`answer`'s result, unless the version has had no running replica for `grace_seconds`
    meanwhile: then ReplicasLost (and `answer` is cancelled).

    A request routed to a replica that dies unseen is queued by Ray Serve's handle until a
    replacement runs, with no deadline of its own (ray/serve/_private/router.py,
    `AsyncioRouter._route_and_send_request_once`: a replica found dead is skipped and the
    request routed again); replacing a model replica takes as long as loading the model.
    """
    task = asyncio.ensure_future(answer)
    lost_since: float | None = None
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll_seconds)
            if done:
                return task.result()
            if await is_ready():
                lost_since = None
                continue
            now = clock()
            lost_since = now if lost_since is None else lost_since
            if now - lost_since >= grace_seconds:
                raise ReplicasLost(f"no running replica for {now - lost_since:.0f}s")
    finally:
        if not task.done():
            task.cancel()


def effective_weights(weights: dict[str, float], ready: set[str]) -> dict[str, float]:
    """Percent of traffic each version gets right now (renormalised over ready versions)."""
    live = {v: w for v, w in weights.items() if v in ready and w > 0}
    total = sum(live.values())
    return {v: (100.0 * live[v] / total if v in live else 0.0) for v in weights}


def ready_from_status(
    applications: Mapping[str, Any],
    apps: Mapping[str, str],
    previous: set[str] | frozenset[str] = frozenset(),
) -> set[str]:
    """Versions whose application's `model` deployment has at least one RUNNING replica.

    `applications` is `serve.status().applications` (application name to an object or dict with
    `deployments`, each with `replica_states` {state: count}); `apps` maps each live version to
    its application's name. A replica is RUNNING only after its constructor (which includes the
    warm-up generation) has returned. A version whose deployment is missing from the status
    (Serve lists none while it rebuilds an application) keeps its `previous` readiness: its
    replicas still serve.
    """
    ready = set()
    for version, app_name in apps.items():
        app = applications.get(app_name)
        deployments = _field(app, "deployments") or {}
        info = deployments.get(MODEL_DEPLOYMENT)
        if info is None:
            if version in previous:
                ready.add(version)
            continue
        states = _field(info, "replica_states")
        counts = {str(getattr(k, "value", k)): n for k, n in (states or {}).items()}
        if counts.get("RUNNING", 0) > 0:
            ready.add(version)
    return ready


def _field(value: Any, name: str) -> Any:
    if value is None:
        return None
    return value.get(name) if isinstance(value, dict) else getattr(value, name)
