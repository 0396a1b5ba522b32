"""The operator's own Prometheus metrics: reconciles by kind and result, durations, phases.

`observe` wraps one reconcile; `start_metrics_server` serves /metrics on the configured port.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter(
    "drover_operator_reconciles_total", "Reconciles by kind and result.", ["kind", "result"]
)
DURATION = Histogram(
    "drover_operator_reconcile_duration_seconds",
    "Time of one reconcile by kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ERRORS = Counter("drover_operator_errors_total", "Reconcile errors by kind.", ["kind"])
PHASES = Gauge(
    "drover_operator_resources",
    "Resources by kind and phase.",
    ["kind", "namespace", "name", "phase"],
)
SCALE_EVENTS = Counter(
    "drover_autoscaler_scale_events_total", "Replica changes decided.", ["namespace", "service"]
)
ROLLOUTS = Counter(
    "drover_rollouts_total", "Finished rollouts by result.", ["namespace", "service", "result"]
)
# Set by the autoscaler; the chart's DroverAutoscalerMetricsUnavailable alert reads it.
METRICS_UNAVAILABLE = Gauge(
    "drover_autoscaler_metrics_unavailable",
    "1 while an InferenceService's autoscaler has no load metrics (MetricsUnavailable).",
    ["namespace", "service"],
)


@contextmanager
def observe(kind: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    except Exception:
        RECONCILES.labels(kind, "error").inc()
        ERRORS.labels(kind).inc()
        raise
    else:
        RECONCILES.labels(kind, "ok").inc()
    finally:
        DURATION.labels(kind).observe(time.perf_counter() - start)


_last_phase: dict[tuple[str, str, str], str] = {}


def record_phase(kind: str, namespace: str, name: str, phase: str | None) -> None:
    """One series per object, labelled with its current phase (the old one is removed)."""
    key, value = (kind, namespace, name), phase or "Unknown"
    old = _last_phase.get(key)
    if old == value:
        return
    if old is not None:
        PHASES.remove(kind, namespace, name, old)
    PHASES.labels(kind, namespace, name, value).set(1)
    _last_phase[key] = value


def forget(kind: str, namespace: str, name: str) -> None:
    old = _last_phase.pop((kind, namespace, name), None)
    if old is not None:
        PHASES.remove(kind, namespace, name, old)


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> None:
    start_http_server(port, addr=addr)
