"""The operator's own Prometheus metrics: reconciles by kind and result, durations, phases,
replica bounds and finished rollouts (the chart's PrometheusRule and dashboard read them).

`observe` wraps one reconcile; `start_metrics_server` serves /metrics on the configured port.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

# Per-object series are set by the timers, which run every progress poll (at most 30 s) for every
# object; a series not set for this long belongs to an object that was deleted (or to a replica
# that lost the leadership) and leaves /metrics, so no alert fires for a resource that is gone.
FRESH_SECONDS = 300.0


class FreshGauge(Collector):
    """A gauge whose series disappear when they have not been set for `ttl` seconds."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        ttl: float = FRESH_SECONDS,
        registry: CollectorRegistry | None = REGISTRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, list(labelnames)
        self._ttl, self._clock = ttl, clock
        self._series: dict[tuple[str, ...], tuple[float, float]] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def set(self, labels: Sequence[str], value: float) -> None:
        with self._lock:
            self._series[tuple(labels)] = (value, self._clock())

    def remove(self, labels: Sequence[str]) -> None:
        with self._lock:
            self._series.pop(tuple(labels), None)

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        now = self._clock()
        with self._lock:
            for labels in [k for k, (_, at) in self._series.items() if now - at > self._ttl]:
                del self._series[labels]
            for labels, (value, _) in sorted(self._series.items()):
                family.add_metric(list(labels), value)
        return [family]


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
PHASES = FreshGauge(
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

# Set by the autoscaler in SLO mode; DroverSLOAttainmentBelowTarget compares them.
SLO_ATTAINMENT = FreshGauge(
    "drover_slo_ttft_attainment",
    "Share of an InferenceService's requests with TTFT within spec.autoscaling.slo.ttftSeconds, "
    "measured over the SLO window (SLO mode only).",
    ["namespace", "service"],
)
SLO_TARGET = FreshGauge(
    "drover_slo_ttft_attainment_target",
    "spec.autoscaling.slo.attainment of an InferenceService (SLO mode only).",
    ["namespace", "service"],
)

# Set by the InferenceService reconcile each poll; DroverAutoscalerAtMaxReplicas compares them.
DESIRED_REPLICAS = FreshGauge(
    "drover_autoscaler_desired_replicas",
    "Replicas the autoscaler decided for an InferenceService's stable version.",
    ["namespace", "service"],
)
MIN_REPLICAS = FreshGauge(
    "drover_autoscaler_min_replicas",
    "spec.replicas.min of an InferenceService.",
    ["namespace", "service"],
)
MAX_REPLICAS = FreshGauge(
    "drover_autoscaler_max_replicas",
    "spec.replicas.max of an InferenceService.",
    ["namespace", "service"],
)
CANARY_WEIGHT = FreshGauge(
    "drover_rollout_canary_weight",
    "Percent of an InferenceService's requests routed to its canary (0 without a rollout).",
    ["namespace", "service"],
)
# Set by the drift timer (handlers.drift): the last PSI per signal and whether drift is detected.
DRIFT_PSI = FreshGauge(
    "drover_drift_psi",
    "Population stability index of an InferenceService's recent prompts against its reference.",
    ["namespace", "service", "signal"],
)
DRIFT_DETECTED = FreshGauge(
    "drover_drift_detected",
    "1 while an InferenceService's DriftDetected condition is True.",
    ["namespace", "service"],
)
RETRAININGS = Counter(
    "drover_retrainings_total",
    "FineTuneJobs started by an InferenceService's retraining, by trigger.",
    ["namespace", "service", "trigger"],
)
# Rollout events (drover.policy.rollout) that end a rollout, by the result they count as.
ROLLOUT_RESULTS = {
    "RolloutPromoted": "Promoted",
    "RolloutRolledBack": "RolledBack",
    "RolloutAborted": "Aborted",
    "RolloutSuperseded": "Superseded",
}


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
        PHASES.set((kind, namespace, name, value), 1)  # still there: keep the series fresh
        return
    if old is not None:
        PHASES.remove((kind, namespace, name, old))
    PHASES.set((kind, namespace, name, value), 1)
    _last_phase[key] = value


def forget(kind: str, namespace: str, name: str) -> None:
    old = _last_phase.pop((kind, namespace, name), None)
    if old is not None:
        PHASES.remove((kind, namespace, name, old))


def record_replicas(namespace: str, service: str, desired: int, bounds: tuple[int, int]) -> None:
    """The replica count decided for a service and its spec's bounds (min, max)."""
    DESIRED_REPLICAS.set((namespace, service), desired)
    MIN_REPLICAS.set((namespace, service), bounds[0])
    MAX_REPLICAS.set((namespace, service), bounds[1])


def record_slo(namespace: str, service: str, attained: float, target: float) -> None:
    """SLO mode's measured TTFT attainment and the attainment the spec asks for."""
    SLO_ATTAINMENT.set((namespace, service), attained)
    SLO_TARGET.set((namespace, service), target)


def record_canary_weight(namespace: str, service: str, weight: int) -> None:
    CANARY_WEIGHT.set((namespace, service), weight)


def record_rollout_events(namespace: str, service: str, reasons: Iterable[str]) -> None:
    """Count the rollouts that `reasons` (a tick's event reasons) finished, by result."""
    for reason in reasons:
        if reason in ROLLOUT_RESULTS:
            ROLLOUTS.labels(namespace, service, ROLLOUT_RESULTS[reason]).inc()


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> None:
    start_http_server(port, addr=addr)
