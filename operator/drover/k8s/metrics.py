"""I/O layer: Prometheus queries for the autoscaler, the canary analysis and replica counts.

Speaks Prometheus's HTTP API (`/api/v1/query`). The series are those the serving router exports
through Ray (`drover_workers.serve.metrics`: Ray prefixes them with `ray_`), labelled with
service, namespace and version; every query sums over Ray's own labels (one series per router
replica) and keeps the worst value when several series remain. Ready replica counts come from
Serve's own controller gauge. Unreachable or empty answers come back as `None` (or no entry) so
callers hold instead of guessing.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drover.api.reasons import MetricsReason
from drover.policy.metrics_health import MetricsProblem
from drover.policy.sequential import Histogram

REQUESTS = "ray_drover_requests_total"
LATENCY = "ray_drover_request_latency_seconds"
TTFT = "ray_drover_time_to_first_token_seconds"
ITL = "ray_drover_inter_token_latency_seconds"
GENERATED_TOKENS = "ray_drover_generated_tokens_total"
IN_FLIGHT = "ray_drover_requests_in_flight"
QUEUE_DEPTH = "ray_drover_queue_depth"
# The drift test's histograms (drover_workers.serve.metrics): tokens per prompt, and with
# retrieval the cosine distance of each prompt's embedding to its nearest indexed chunk.
PROMPT_LENGTH = "ray_drover_prompt_length_tokens"
PROMPT_DISTANCE = "ray_drover_prompt_distance"
DRIFT_SERIES = {"promptLength": PROMPT_LENGTH, "promptEmbedding": PROMPT_DISTANCE}
# vLLM's own engine gauges (`vllm:kv_cache_usage_perc`, `vllm:num_requests_waiting`), recorded
# through Ray by the model replicas with the engine's service/namespace/version labels.
KV_CACHE_USAGE = "ray_vllm_kv_cache_usage_perc"
ENGINE_WAITING = "ray_vllm_num_requests_waiting"
ENGINE_SIGNALS = ("kvCacheUtilization", "waitingRequests")
# Ray Serve's controller gauge (ray/serve/_private/deployment_state.py, Ray 2.60,
# `serve_deployment_replica_healthy`, tags deployment and application, plus replica by default):
# 1 per healthy replica and 0 once it stops, or, with
# RAY_SERVE_CONTROLLER_METRICS_INCLUDE_HIGH_CARDINALITY_TAGS=0, one series holding the count; a sum
# reads both. Serve's labels carry no Kubernetes namespace: the scrape adds it (the chart's
# PodMonitor, as any prometheus-operator monitor does; the local stack's Prometheus by relabelling).
REPLICA_HEALTHY = "ray_serve_deployment_replica_healthy"


class MetricsUnavailable(Exception):
    """Prometheus could not be asked, or answered with an error; the message says which."""


class PrometheusUnreachable(MetricsUnavailable):
    """No answer from Prometheus at all (connection refused, DNS, timeout)."""


def problem_of(exc: MetricsUnavailable | None, promql: str, missing: str) -> MetricsProblem:
    """The MetricsProblem of one query: the exception it raised, else no series of `missing`."""
    if exc is None:
        return MetricsProblem(MetricsReason.NO_SERIES, promql, missing)
    if isinstance(exc, PrometheusUnreachable):
        return MetricsProblem(MetricsReason.PROMETHEUS_UNREACHABLE, promql, str(exc))
    return MetricsProblem(MetricsReason.QUERY_FAILED, promql, str(exc))


@dataclass(frozen=True)
class Selector:
    service: str
    namespace: str
    version: str | None = None

    def __str__(self) -> str:
        parts = [f'service="{self.service}"', f'namespace="{self.namespace}"']
        if self.version:
            parts.append(f'version="{self.version}"')
        return "{" + ",".join(parts) + "}"

    def with_(self, extra: str) -> str:
        return str(self)[:-1] + "," + extra + "}"


def _window(seconds: float) -> str:
    return f"{max(int(seconds), 1)}s"


# --- autoscaling signals: service-wide totals for one version ---------------------------------


def signal_query(signal: str, sel: Selector, window_seconds: float) -> str:
    """PromQL for the total of `signal` (inFlightRequests | queueDepth | tokensPerSecond |
    kvCacheUtilization | waitingRequests) over the replicas. The engine signals are labelled
    with the engine's version (the base weights'), which every LoRA version on it shares."""
    w = _window(window_seconds)
    if signal == "inFlightRequests":
        return f"sum(avg_over_time({IN_FLIGHT}{sel}[{w}]))"
    if signal == "queueDepth":
        return f"sum(avg_over_time({QUEUE_DEPTH}{sel}[{w}]))"
    if signal == "tokensPerSecond":
        return f"sum(rate({GENERATED_TOKENS}{sel}[{w}]))"
    if signal == "kvCacheUtilization":
        return f"sum(avg_over_time({KV_CACHE_USAGE}{sel}[{w}]))"
    if signal == "waitingRequests":
        return f"sum(avg_over_time({ENGINE_WAITING}{sel}[{w}]))"
    raise ValueError(f"unknown autoscaling signal {signal!r}")


def peak_query(signal: str, sel: Selector, window_seconds: float, span_seconds: float) -> str:
    """PromQL for the highest `window_seconds` total of `signal` over the last `span_seconds`
    (a subquery stepped by the window): the burst SLO mode plans for."""
    inner = signal_query(signal, sel, window_seconds)
    return f"max_over_time(({inner})[{_window(span_seconds)}:{_window(window_seconds)}])"


# --- replica counts ----------------------------------------------------------------------------


def healthy_replicas_query(namespace: str, applications: Sequence[str], deployment: str) -> str:
    """PromQL for the healthy replicas of `deployment` in each Serve application, by application.

    Summed per Ray cluster (`ray_io_cluster`, set by the chart's PodMonitor) and the largest
    cluster kept: while KubeRay replaces a RayService's cluster, both report the applications,
    and the old one serves until the new one is ready."""
    apps = "|".join(sorted(set(applications)))
    sel = f'{{namespace="{namespace}",deployment="{deployment}",application=~"{apps}"}}'
    return f"max by (application) (sum by (application, ray_io_cluster) ({REPLICA_HEALTHY}{sel}))"


# --- analysis metrics ------------------------------------------------------------------------
# The analysis reads counts, not ready-made rates or quantiles: the sequential test in
# drover.policy.traffic needs how many requests a value rests on, and the latency test counts
# the canary's requests beyond the stable's quantile of the same window, bucket by bucket.

_HISTOGRAMS = (("latency", LATENCY), ("ttft", TTFT), ("itl", ITL))


def requests_query(sel: Selector, window_seconds: float, *, failed: bool = False) -> str:
    """PromQL for one version's requests in the window (only the 5xx ones with `failed`)."""
    chosen = sel.with_('code=~"5.."') if failed else str(sel)
    return f"sum(increase({REQUESTS}{chosen}[{_window(window_seconds)}]))"


def buckets_query(metric: str, sel: Selector, window_seconds: float) -> str:
    """PromQL for one version's histogram of an analysis metric (latencyP95, ttftP50, itlP95,
    ...) over the window: observations per cumulative bucket, by `le`."""
    for prefix, series in _HISTOGRAMS:
        if metric.startswith(prefix):
            w = _window(window_seconds)
            return f"sum by (le) (increase({series}_bucket{sel}[{w}]))"
    raise ValueError(f"metric {metric!r} is not a histogram in Prometheus")


def drift_buckets_query(signal: str, sel: Selector, window_seconds: float) -> str:
    """PromQL for one version's histogram of a drift signal (promptLength | promptEmbedding)
    over the window: prompts per cumulative bucket, by `le`."""
    series = DRIFT_SERIES[signal]
    return f"sum by (le) (increase({series}_bucket{sel}[{_window(window_seconds)}]))"


def query_histogram(
    base_url: str, promql: str, *, at: datetime | None = None, timeout: float = 5.0
) -> Histogram | None:
    """A `sum by (le)` answer as a Histogram; None when there is no series or no +Inf bucket.
    Raises MetricsUnavailable."""
    by_le = query_by(base_url, promql, "le", at=at, timeout=timeout)
    try:
        pairs = [(float(le), count) for le, count in by_le.items()]
    except ValueError:
        raise MetricsUnavailable(f"{promql!r} answered a non-numeric le label") from None
    if not any(math.isinf(le) for le, _ in pairs):
        return None
    return Histogram.of(pairs)


# --- the HTTP API ----------------------------------------------------------------------------


def _results(
    base_url: str, promql: str, at: datetime | None, timeout: float
) -> list[dict[str, Any]]:
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at.timestamp():.3f}"
    url = f"{base_url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read().decode())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:200]
        raise MetricsUnavailable(
            f"Prometheus answered {exc.code} to {promql!r}: {detail}"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PrometheusUnreachable(f"Prometheus at {base_url} is unreachable: {reason}") from None
    if body.get("status") != "success":
        raise MetricsUnavailable(f"Prometheus query failed: {body.get('error', 'unknown error')}")
    return list(body.get("data", {}).get("result", []))


def _finite(item: Mapping[str, Any]) -> float | None:
    value = float(item.get("value", [None, "NaN"])[1])
    return None if math.isnan(value) or math.isinf(value) else value


def query(
    base_url: str, promql: str, *, at: datetime | None = None, timeout: float = 5.0
) -> list[float]:
    """Values of an instant query (one per series; NaN dropped). Raises MetricsUnavailable."""
    values = (_finite(item) for item in _results(base_url, promql, at, timeout))
    return [v for v in values if v is not None]


def query_by(
    base_url: str, promql: str, label: str, *, at: datetime | None = None, timeout: float = 5.0
) -> dict[str, float]:
    """Values of an instant query keyed by one label of each series (NaN dropped; a series
    without the label is left out). Raises MetricsUnavailable."""
    out: dict[str, float] = {}
    for item in _results(base_url, promql, at, timeout):
        key, value = (item.get("metric") or {}).get(label), _finite(item)
        if key is not None and value is not None:
            out[str(key)] = value
    return out


def query_one(
    base_url: str,
    promql: str,
    *,
    at: datetime | None = None,
    timeout: float = 5.0,
    worst: str = "max",
) -> float | None:
    """One value: the worst (max or min) over the series, or None when there is no data."""
    values = query(base_url, promql, at=at, timeout=timeout)
    if not values:
        return None
    return max(values) if worst == "max" else min(values)
