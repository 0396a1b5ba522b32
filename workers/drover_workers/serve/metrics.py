"""Serve layer: per-version Prometheus metrics of the router and model replicas, via Ray.

Metrics are recorded with `ray.util.metrics`; every Ray node exports them on its metrics export
port (`ray start --metrics-export-port`), and Ray 2.60 prefixes user metric names with `ray_`.
The `*_SERIES` constants below are the names exactly as Prometheus stores them: the autoscaler and
the canary analysis query those. Labels: service, namespace, version (plus `code` on requests);
Ray adds its own (`Component`, `NodeAddress`, `SessionName`, `Version` = the Ray version,
`WorkerId`), so always aggregate with `sum by (version)`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

RAY_PREFIX = "ray_"

REQUESTS = "drover_requests_total"
REQUEST_LATENCY = "drover_request_latency_seconds"
TIME_TO_FIRST_TOKEN = "drover_time_to_first_token_seconds"
INTER_TOKEN_LATENCY = "drover_inter_token_latency_seconds"
PROMPT_TOKENS = "drover_prompt_tokens_total"
GENERATED_TOKENS = "drover_generated_tokens_total"
IN_FLIGHT = "drover_requests_in_flight"
QUEUE_DEPTH = "drover_queue_depth"
# The drift test's histograms (the operator's drover.policy.drift compares windows of them).
PROMPT_LENGTH = "drover_prompt_length_tokens"
PROMPT_DISTANCE = "drover_prompt_distance"
# Counted by the replica router (replica_router.py) in the router application's process.
REPLICA_ROUTING = "drover_replica_routing_total"

# What Prometheus sees (histograms add _bucket/_sum/_count to these).
REQUESTS_SERIES = RAY_PREFIX + REQUESTS
REQUEST_LATENCY_SERIES = RAY_PREFIX + REQUEST_LATENCY
TIME_TO_FIRST_TOKEN_SERIES = RAY_PREFIX + TIME_TO_FIRST_TOKEN
INTER_TOKEN_LATENCY_SERIES = RAY_PREFIX + INTER_TOKEN_LATENCY
PROMPT_TOKENS_SERIES = RAY_PREFIX + PROMPT_TOKENS
GENERATED_TOKENS_SERIES = RAY_PREFIX + GENERATED_TOKENS
IN_FLIGHT_SERIES = RAY_PREFIX + IN_FLIGHT
QUEUE_DEPTH_SERIES = RAY_PREFIX + QUEUE_DEPTH
REPLICA_ROUTING_SERIES = RAY_PREFIX + REPLICA_ROUTING
PROMPT_LENGTH_SERIES = RAY_PREFIX + PROMPT_LENGTH
PROMPT_DISTANCE_SERIES = RAY_PREFIX + PROMPT_DISTANCE

ALL_SERIES = (
    REQUESTS_SERIES,
    REQUEST_LATENCY_SERIES,
    TIME_TO_FIRST_TOKEN_SERIES,
    INTER_TOKEN_LATENCY_SERIES,
    PROMPT_TOKENS_SERIES,
    GENERATED_TOKENS_SERIES,
    IN_FLIGHT_SERIES,
    QUEUE_DEPTH_SERIES,
    REPLICA_ROUTING_SERIES,
    PROMPT_LENGTH_SERIES,
    PROMPT_DISTANCE_SERIES,
)

BASE_LABELS = ("service", "namespace", "version")
# Latency buckets 1.25x apart (the R10 preferred numbers, 5 ms to 60 s): the canary analysis
# counts a version's requests beyond a limit such as 1.5 x the stable's p95 by interpolating
# within the bucket the limit falls in, so the buckets must be finer than its 20% margin (with
# buckets 2.5x apart a canary within its limit was counted beyond it); the SLO autoscaler reads
# TTFT attainment at a target such as 2 s the same way.
_R10 = (1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0)
LATENCY_BUCKETS = [
    *(round(m * 10.0**e, 6) for e in range(-3, 2) for m in _R10 if 0.005 <= m * 10.0**e <= 50),
    60.0,
]
# Prompt lengths in tokens, about 1.5x apart: PSI compares the share of prompts per bucket, so a
# shift of half a bucket's width or more moves prompts across a boundary.
PROMPT_LENGTH_BUCKETS = [
    4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096,
    6144, 8192, 16384, 32768,
]  # fmt: skip
# Cosine distance (1 - similarity, 0 to 2) of a prompt's embedding to its nearest indexed chunk;
# Ray's histograms take positive bounds only, so the first bucket holds everything up to 0.05.
DISTANCE_BUCKETS = [*(round(0.05 * i, 2) for i in range(1, 21)), 1.25, 1.5, 2.0]
ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0]


@dataclass
class VersionLabels:
    service: str
    namespace: str

    def of(self, version: str, **extra: str) -> dict[str, str]:
        return {"service": self.service, "namespace": self.namespace, "version": version, **extra}


# Replica-routing outcomes noted by the request router (replica_router.py), which Ray Serve runs
# on its own thread in the router replica; the router counts them on its own event loop with its
# other series (RouterMetrics.flush_routing). deque's append and popleft are thread-safe.
ROUTING_OUTCOMES: deque[tuple[tuple[str, str, str], str]] = deque(maxlen=100_000)


def note_routing(labels: dict[str, str], outcome: str) -> None:
    """Called by the request router for each request it routed."""
    key = (labels.get("service", ""), labels.get("namespace", ""), labels.get("version", ""))
    ROUTING_OUTCOMES.append((key, outcome))


class RouterMetrics:
    """The router's series: requests by code, latency, TTFT, tokens and in-flight per version."""

    def __init__(self, service: str, namespace: str) -> None:
        from ray.util import metrics

        self.labels = VersionLabels(service, namespace)
        self.requests = metrics.Counter(
            REQUESTS,
            description="Requests answered by the router, by version and HTTP status code.",
            tag_keys=(*BASE_LABELS, "code"),
        )
        self.latency = metrics.Histogram(
            REQUEST_LATENCY,
            description="End-to-end request latency at the router, in seconds.",
            boundaries=LATENCY_BUCKETS,
            tag_keys=BASE_LABELS,
        )
        self.ttft = metrics.Histogram(
            TIME_TO_FIRST_TOKEN,
            description="Time to the first generated token (whole answer when not streaming).",
            boundaries=LATENCY_BUCKETS,
            tag_keys=BASE_LABELS,
        )
        self.itl = metrics.Histogram(
            INTER_TOKEN_LATENCY,
            description="Seconds between generated tokens after the first, per streamed answer.",
            boundaries=ITL_BUCKETS,
            tag_keys=BASE_LABELS,
        )
        self.prompt_tokens = metrics.Counter(
            PROMPT_TOKENS, description="Prompt tokens processed.", tag_keys=BASE_LABELS
        )
        self.generated_tokens = metrics.Counter(
            GENERATED_TOKENS, description="Tokens generated.", tag_keys=BASE_LABELS
        )
        self.prompt_length = metrics.Histogram(
            PROMPT_LENGTH,
            description="Tokens per prompt as the engine saw it (with any retrieved context).",
            boundaries=PROMPT_LENGTH_BUCKETS,
            tag_keys=BASE_LABELS,
        )
        self.prompt_distance = metrics.Histogram(
            PROMPT_DISTANCE,
            description="Cosine distance of each prompt's embedding to its nearest indexed "
            "chunk (services with retrieval).",
            boundaries=DISTANCE_BUCKETS,
            tag_keys=BASE_LABELS,
        )
        self.in_flight = metrics.Gauge(
            IN_FLIGHT,
            description="Requests accepted by this router replica and not yet answered.",
            tag_keys=BASE_LABELS,
        )
        self.routing = metrics.Counter(
            REPLICA_ROUTING,
            description="Requests routed to a version's replicas, by outcome: session_hit and "
            "prefix_hit went to the preferred replica; preferred_busy and no_match to the least "
            "loaded.",
            tag_keys=(*BASE_LABELS, "outcome"),
        )

    def flush_routing(self) -> None:
        """Count the replica-routing outcomes the request router noted since the last call."""
        while ROUTING_OUTCOMES:
            (service, namespace, version), outcome = ROUTING_OUTCOMES.popleft()
            tags = {"service": service, "namespace": namespace, "version": version}
            self.routing.inc(1, tags={**tags, "outcome": outcome})

    def record(self, version: str, code: int, latency: float, ttft: float | None) -> None:
        self.requests.inc(1, tags=self.labels.of(version, code=str(code)))
        self.latency.observe(latency, tags=self.labels.of(version))
        if ttft is not None:
            self.ttft.observe(ttft, tags=self.labels.of(version))

    def inter_token(self, version: str, seconds: float) -> None:
        self.itl.observe(seconds, tags=self.labels.of(version))

    def tokens(self, version: str, usage: dict[str, Any]) -> None:
        tags = self.labels.of(version)
        if usage.get("prompt_tokens"):
            self.prompt_tokens.inc(int(usage["prompt_tokens"]), tags=tags)
            self.prompt_length.observe(int(usage["prompt_tokens"]), tags=tags)
        if usage.get("completion_tokens"):
            self.generated_tokens.inc(int(usage["completion_tokens"]), tags=tags)

    def distance(self, version: str, value: float | None) -> None:
        if value is not None:
            self.prompt_distance.observe(value, tags=self.labels.of(version))

    def set_in_flight(self, version: str, value: int) -> None:
        self.in_flight.set(value, tags=self.labels.of(version))


class ModelMetrics:
    """The model replica's series: requests waiting for the engine (queue depth), and vLLM's own
    engine metrics (`ray_vllm_*`) with this version's labels (see `engine_stat_logger`)."""

    def __init__(self, service: str, namespace: str, version: str) -> None:
        from ray.util import metrics

        self.tags = VersionLabels(service, namespace).of(version)
        self.queue_depth = metrics.Gauge(
            QUEUE_DEPTH,
            description="Requests in a model replica waiting to start generation.",
            tag_keys=BASE_LABELS,
        )
        self.queue_depth.set(0, tags=self.tags)
        # The engine's last scheduler stats, for the replica router (record_routing_stats).
        self.engine: dict[str, Any] = {"waiting": 0, "running": 0, "kvCacheUsage": 0.0}

    def set_engine_stats(self, stats: Any) -> None:
        """Keep what the replica router reads from vLLM's SchedulerStats."""
        self.engine = {
            "waiting": int(stats.num_waiting_reqs),
            "running": int(stats.num_running_reqs),
            "kvCacheUsage": float(stats.kv_cache_usage),
            "loras": sorted(getattr(stats, "running_lora_adapters", None) or ()),
        }

    def set_queue_depth(self, value: int) -> None:
        self.queue_depth.set(value, tags=self.tags)

    def engine_stat_logger(self) -> Any:
        """A vLLM stat-logger factory: Ray Serve LLM's `RayPrometheusStatLogger` (vLLM's metrics
        recorded through Ray, so each node's metrics port exports them as `ray_vllm_*`) with the
        service, namespace and version labels added to every series, and the engine's waiting
        requests copied into this replica's queue-depth gauge."""
        from vllm.v1.metrics import ray_wrappers as rw

        extra, replica = dict(self.tags), self

        class Labelled:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)  # type: ignore[call-arg]
                self._tags = {**self._tags, **extra}

            def _get_tag_keys(self, labelnames: list[str] | None) -> tuple[str, ...]:
                return (*rw.RayPrometheusMetric._get_tag_keys(labelnames), *extra)

            def _build_tags(self, *labels: Any, **kwargs: Any) -> dict[str, str]:
                # ReplicaId is the last tag key vLLM counts; ours come after it.
                names = self.metric._tag_keys[: len(self.metric._tag_keys) - len(extra) - 1]
                kwargs.update(zip(names, labels, strict=False))
                return {**super()._build_tags(**kwargs), **extra}  # type: ignore[misc]

        gauge_cls = type("Gauge", (Labelled, rw.RayGaugeWrapper), {})
        counter_cls = type("Counter", (Labelled, rw.RayCounterWrapper), {})
        histogram_cls = type("Histogram", (Labelled, rw.RayHistogramWrapper), {})

        class VersionStatLogger(rw.RayPrometheusStatLogger):  # type: ignore[misc]
            _gauge_cls = gauge_cls
            _counter_cls = counter_cls
            _histogram_cls = histogram_cls

            def record(self, scheduler_stats: Any, *args: Any, **kwargs: Any) -> None:
                super().record(scheduler_stats, *args, **kwargs)
                if scheduler_stats is not None:
                    replica.set_queue_depth(scheduler_stats.num_waiting_reqs)
                    replica.set_engine_stats(scheduler_stats)

        return VersionStatLogger
