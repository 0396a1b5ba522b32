"""I/O layer: Prometheus queries for the autoscaler and the canary analysis.

Speaks Prometheus's HTTP API (`/api/v1/query`). The series are those the serving router exports
through Ray (`drover_workers.serve.metrics`: Ray prefixes them with `ray_`), labelled with
service, namespace and version; every query sums over Ray's own labels (one series per router
replica) and keeps the worst value when several series remain. Unreachable or empty answers come
back as `None` so callers hold instead of guessing.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime

REQUESTS = "ray_drover_requests_total"
LATENCY = "ray_drover_request_latency_seconds"
TTFT = "ray_drover_time_to_first_token_seconds"
ITL = "ray_drover_inter_token_latency_seconds"
GENERATED_TOKENS = "ray_drover_generated_tokens_total"
IN_FLIGHT = "ray_drover_requests_in_flight"
QUEUE_DEPTH = "ray_drover_queue_depth"
# vLLM's own engine gauges (`vllm:kv_cache_usage_perc`, `vllm:num_requests_waiting`), recorded
# through Ray by the model replicas with the engine's service/namespace/version labels.
KV_CACHE_USAGE = "ray_vllm_kv_cache_usage_perc"
ENGINE_WAITING = "ray_vllm_num_requests_waiting"
ENGINE_SIGNALS = ("kvCacheUtilization", "waitingRequests")


class MetricsUnavailable(Exception):
    """Prometheus could not be asked, or answered with an error; the message says which."""


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


# --- analysis metrics ------------------------------------------------------------------------

_QUANTILES = {"P50": 0.5, "P95": 0.95, "P99": 0.99}


def analysis_query(metric: str, sel: Selector, window_seconds: float) -> str:
    """PromQL for an analysis metric (errorRate, latencyP95, ttftP50, ...) of one version."""
    w = _window(window_seconds)
    if metric == "errorRate":
        failed = sel.with_('code=~"5.."')
        errors = f"sum(increase({REQUESTS}{failed}[{w}]))"
        total = f"sum(increase({REQUESTS}{sel}[{w}]))"
        return f"({errors} or vector(0)) / {total}"
    for prefix, series in (("latency", LATENCY), ("ttft", TTFT), ("itl", ITL)):
        if metric.startswith(prefix) and metric[len(prefix) :] in _QUANTILES:
            q = _QUANTILES[metric[len(prefix) :]]
            return f"histogram_quantile({q}, sum by (le) (rate({series}_bucket{sel}[{w}])))"
    raise ValueError(f"metric {metric!r} is not measured in Prometheus")


def samples_query(metric: str, sel: Selector, window_seconds: float) -> str:
    """PromQL for how many observations an analysis metric rests on in the window: requests for
    the error rate, the histogram's count for latency and time to first token."""
    w = _window(window_seconds)
    if metric.startswith("latency"):
        return f"sum(increase({LATENCY}_count{sel}[{w}]))"
    if metric.startswith("ttft"):
        return f"sum(increase({TTFT}_count{sel}[{w}]))"
    if metric.startswith("itl"):
        return f"sum(increase({ITL}_count{sel}[{w}]))"
    return f"sum(increase({REQUESTS}{sel}[{w}]))"


# --- the HTTP API ----------------------------------------------------------------------------


def query(
    base_url: str, promql: str, *, at: datetime | None = None, timeout: float = 5.0
) -> list[float]:
    """Values of an instant query (one per series; NaN dropped). Raises MetricsUnavailable."""
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
        raise MetricsUnavailable(f"Prometheus at {base_url} is unreachable: {reason}") from None
    if body.get("status") != "success":
        raise MetricsUnavailable(f"Prometheus query failed: {body.get('error', 'unknown error')}")
    values: list[float] = []
    for item in body.get("data", {}).get("result", []):
        raw = item.get("value", [None, "NaN"])[1]
        value = float(raw)
        if not math.isnan(value) and not math.isinf(value):
            values.append(value)
    return values


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
