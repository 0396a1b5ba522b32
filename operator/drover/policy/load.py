"""Policy layer: an InferenceService's load as the autoscaler reads it, pure.

`LoadSnapshot` is what the autoscaler timer (`drover.handlers.autoscaler`) and bench/autoscale.py
read from Prometheus or a trace; `load_total` turns it into the service-wide load that
`drover.policy.autoscale.decide_replicas` plans for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drover.api.autoscaling import AutoscalingSignal

__all__ = ["LoadSnapshot", "load_total"]


@dataclass(frozen=True)
class LoadSnapshot:
    """The load of one InferenceService (or one version of it) as read from Prometheus.

    `value` is the per-replica average of the signal over the spec's `windowSeconds` (None: no
    data). `total` is the service-wide sum over the same window, including requests waiting at
    the router; when absent it is `value x` the ready replicas (the ordered ones when unknown).
    At zero replicas give `total` (what waits at the router). `burst_value`/`burst_total` are
    the same over the shorter `panic.windowSeconds`; absent, the panic check uses the main
    window.
    `current_replicas` counts the replicas ordered (starting or serving), `ready_replicas` those
    serving as Serve counts them (None: unknown, never guessed); while 0 < ready < current, a
    scale-up steps from the ready ones.
    SLO mode reads three more: `peak_total`, the highest short-window (panic window) total over
    the planning span (`drover.policy.slo.planning_span_seconds`), and `ttft_attainment`, the
    share of the `ttft_requests` requests of the SLO window whose time to first token met it.
    """

    signal: AutoscalingSignal
    value: float | None
    current_replicas: int
    ready_replicas: int | None
    sample_time: datetime
    total: float | None = None
    burst_value: float | None = None
    burst_total: float | None = None
    peak_total: float | None = None
    ttft_attainment: float | None = None
    ttft_requests: float | None = None


def load_total(snapshot: LoadSnapshot, burst: bool = False) -> float | None:
    """The service-wide load (None: no data), from the burst window when asked and available."""
    if burst and (snapshot.burst_total is not None or snapshot.burst_value is not None):
        total, value = snapshot.burst_total, snapshot.burst_value
    else:
        total, value = snapshot.total, snapshot.value
    if total is not None:
        return max(total, 0.0)
    if value is not None:
        serving = snapshot.ready_replicas
        return max(value, 0.0) * max(snapshot.current_replicas if serving is None else serving, 1)
    return None
