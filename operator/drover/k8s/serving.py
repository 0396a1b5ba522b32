"""I/O layer: talk to a running InferenceService — warm-up, evaluation prompts, canary analysis.

Requests go to the service's router (the OpenAI-compatible API at `<status.url>/v1`) with the
`x-drover-version` header, which pins a request to one version even at weight 0: that is how a
canary is warmed and checked before it gets any traffic. Metric analysis reads Prometheus.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from drover.api.evaluation_prompts import EvaluationPrompt
from drover.api.rollout import (
    Analysis,
    Evidence,
    MetricName,
    MetricResult,
    RolloutSpec,
    Verdict,
)
from drover.k8s.metrics import (
    MetricsUnavailable,
    Selector,
    buckets_query,
    problem_of,
    query_histogram,
    query_one,
    requests_query,
)
from drover.policy.analysis import WarmupTimings, evaluate_metric, judge_warmup
from drover.policy.evaluation import evaluation_pass_rate
from drover.policy.metrics_health import MetricsProblem
from drover.policy.sequential import Histogram
from drover.policy.traffic import Window, judge_metric

VERSION_HEADER = "x-drover-version"
CONCURRENCY = 8


def _chat_request(
    url: str,
    model: str,
    version: str,
    prompt: str,
    max_tokens: int,
    api_key: str | None,
    *,
    stream: bool,
) -> urllib.request.Request:
    """A chat completion request pinned to `version` (the router's version header)."""
    message = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    body = {**message, "max_tokens": max_tokens, "temperature": 0}
    headers = {"content-type": "application/json", VERSION_HEADER: version}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return urllib.request.Request(
        f"{url.rstrip('/')}/v1/chat/completions",
        data=json.dumps({**body, "stream": True} if stream else body).encode(),
        headers=headers,
        method="POST",
    )


def chat(
    url: str,
    model: str,
    version: str,
    prompt: str,
    *,
    max_tokens: int = 32,
    api_key: str | None = None,
    timeout: float = 60.0,
) -> str | None:
    """One chat completion pinned to `version`; None when it failed (any error counts)."""
    request = _chat_request(url, model, version, prompt, max_tokens, api_key, stream=False)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read().decode())
        return str(answer["choices"][0]["message"]["content"])
    except (urllib.error.URLError, TimeoutError, OSError, ValueError, KeyError, IndexError):
        return None


def _ask_all(
    url: str, model: str, version: str, prompts: Sequence[str], max_tokens: int, api_key: str | None
) -> list[str | None]:
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return list(
            pool.map(
                lambda p: chat(url, model, version, p, max_tokens=max_tokens, api_key=api_key),
                prompts,
            )
        )


def _pass_rate(
    url: str,
    model: str,
    version: str,
    prompts: Sequence[EvaluationPrompt],
    api_key: str | None,
    max_tokens: int,
) -> float | None:
    answers = _ask_all(url, model, version, [p.prompt for p in prompts], max_tokens, api_key)
    return evaluation_pass_rate(prompts, answers)


def timed_chat(
    url: str,
    model: str,
    version: str,
    prompt: str,
    *,
    max_tokens: int = 32,
    api_key: str | None = None,
    timeout: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[float, float | None] | None:
    """One streamed chat completion pinned to `version`, timed as a client sees it: (seconds to
    the first token, mean gap between tokens; None with fewer than two chunks of text). None
    when it failed (any error, in the stream too, counts)."""
    request = _chat_request(url, model, version, prompt, max_tokens, api_key, stream=True)
    started, arrivals = clock(), []
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            for line in response:
                data = line.decode().strip().removeprefix("data:").strip()
                if not data or data == "[DONE]":
                    continue
                chunk = json.loads(data)
                if "error" in chunk:
                    return None
                if any((c.get("delta") or {}).get("content") for c in chunk.get("choices", [])):
                    arrivals.append(clock())
    except (urllib.error.URLError, TimeoutError, OSError, ValueError, AttributeError):
        return None
    if not arrivals:
        return None
    gap = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1) if len(arrivals) > 1 else None
    return arrivals[0] - started, gap


def _timed_pairs(
    url: str,
    model: str,
    versions: tuple[str, str],
    prompts: Sequence[str],
    tokens: int,
    key: str | None,
) -> list[tuple[float, float | None] | None]:
    """Each prompt to the canary and to the stable (versions), interleaved: [c0, s0, c1, s1 ...]."""
    asks = [(v, p) for p in prompts for v in versions]
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return list(
            pool.map(
                lambda a: timed_chat(url, model, a[0], a[1], max_tokens=tokens, api_key=key), asks
            )
        )


def warm_up(
    url: str,
    model: str,
    version: str,
    spec: RolloutSpec,
    *,
    now: datetime,
    max_tokens: int = 64,
    api_key: str | None = None,
    evidence: Mapping[str, Evidence] | None = None,
    stable: str | None = None,
) -> list[MetricResult]:
    """Send the warm-up requests and evaluation prompts to the canary; judge them. With the
    `stable` version and a ttft or itl metric, each warm-up prompt goes to the stable too,
    streamed and timed on both, so a canary slower to its first token or between tokens is
    caught before any user request.

    `max_tokens` is the service's own limit: a request asking for more is refused (400), which
    would count against a healthy canary."""
    tokens = min(spec.warmup.max_tokens, max_tokens)
    prompts = spec.analysis.evaluation_prompts
    warm = [p.prompt for p in prompts] or ["Hello"]
    sent = spec.warmup.requests
    asked = [warm[i % len(warm)] for i in range(sent)]
    timings = None
    screened = any(WarmupTimings().of(m.name) is not None for m in spec.effective_metrics())
    if stable is None or not screened:
        answers = _ask_all(url, model, version, asked, tokens, api_key)
        failed = sum(a is None for a in answers)
    else:
        timed = _timed_pairs(url, model, (version, stable), asked, tokens, api_key)
        canary, other = timed[0::2], timed[1::2]
        failed = sum(t is None for t in canary)
        timings = WarmupTimings(
            canary_ttft=tuple(t[0] for t in canary if t is not None),
            stable_ttft=tuple(t[0] for t in other if t is not None),
            canary_itl=tuple(t[1] for t in canary if t is not None and t[1] is not None),
            stable_itl=tuple(t[1] for t in other if t is not None and t[1] is not None),
        )
    rate = _pass_rate(url, model, version, prompts, api_key, tokens) if prompts else None
    return judge_warmup(spec, sent, failed, rate, measured_at=now, prior=evidence, timings=timings)


def measure(
    prometheus_url: str,
    url: str,
    model: str,
    spec: RolloutSpec,
    *,
    namespace: str,
    canary: str,
    stable: str,
    window_start: datetime,
    now: datetime,
    evidence: Mapping[str, Evidence] | None = None,
    timeout: float = 5.0,
    max_tokens: int = 64,
    api_key: str | None = None,
) -> tuple[list[MetricResult], list[MetricsProblem]]:
    """Each analysis metric of the canary over [window_start, now], added to `evidence` (the
    rollout's sequential tests so far) and judged; and the Prometheus queries that failed or
    found no series (a canary without requests in the window has series, just no increase:
    that is too little data, not missing metrics)."""
    window = max((now - window_start).total_seconds(), 1.0)
    analysis: Analysis = spec.analysis
    results: list[MetricResult] = []
    problems: list[MetricsProblem] = []
    canary_sel, stable_sel = Selector(model, namespace, canary), Selector(model, namespace, stable)
    prior = evidence or {}
    for metric in spec.effective_metrics():
        name = metric.name.value
        if metric.name == MetricName.EVALUATION_PASS_RATE:
            prompts = analysis.evaluation_prompts
            rate = _pass_rate(url, model, canary, prompts, api_key, min(64, max_tokens))
            count = len(analysis.evaluation_prompts)
            results.append(evaluate_metric(metric, rate, None, count, 1, measured_at=now))
            continue
        relative = metric.max_relative_to_stable is not None
        ask = _Asker(prometheus_url, window, now, timeout)
        try:
            observed, missing = ask.window(name, relative, canary_sel, stable_sel)
        except MetricsUnavailable as exc:
            problems.append(problem_of(exc, ask.last, ""))
            results.append(
                MetricResult(
                    metric=name,
                    verdict=Verdict.INCONCLUSIVE,
                    measured_at=now,
                    message=str(exc),
                    evidence=prior.get(name),
                )
            )
            continue
        if missing is not None:
            what = f"{name} of version {canary} of {namespace}/{model}"
            problems.append(problem_of(None, missing, what))
        results.append(
            judge_metric(metric, observed, prior.get(name), analysis.min_requests, measured_at=now)
        )
    return results, problems


class _Asker:
    """The Prometheus queries of one metric's window; `last` is the query asked last."""

    def __init__(self, prometheus_url: str, window: float, now: datetime, timeout: float) -> None:
        self.url, self.window_s, self.now, self.timeout = prometheus_url, window, now, timeout
        self.last = ""

    def _one(self, promql: str) -> float | None:
        self.last = promql
        return query_one(self.url, promql, at=self.now, timeout=self.timeout)

    def _histogram(self, promql: str) -> Histogram | None:
        self.last = promql
        return query_histogram(self.url, promql, at=self.now, timeout=self.timeout)

    def window(
        self, metric: str, relative: bool, canary: Selector, stable: Selector
    ) -> tuple[Window, str | None]:
        """The window's observations, and the canary query that found no series (or None)."""
        w = self.window_s
        if metric == MetricName.ERROR_RATE:
            total = self._one(requests_query(canary, w))
            missing = self.last if total is None else None
            failed = self._one(requests_query(canary, w, failed=True)) or 0.0
            stable_total = stable_failed = 0.0
            if relative:
                stable_total = self._one(requests_query(stable, w)) or 0.0
                stable_failed = self._one(requests_query(stable, w, failed=True)) or 0.0
            observed = Window(
                canary_requests=total or 0.0,
                canary_errors=failed,
                stable_requests=stable_total,
                stable_errors=stable_failed,
            )
            return observed, missing
        hist = self._histogram(buckets_query(metric, canary, w))
        missing = self.last if hist is None else None
        base = self._histogram(buckets_query(metric, stable, w)) if relative else None
        return Window(canary=hist, stable=base), missing
