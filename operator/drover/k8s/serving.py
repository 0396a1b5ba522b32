"""I/O layer: talk to a running InferenceService — warm-up, evaluation prompts, canary analysis.

Requests go to the service's router (the OpenAI-compatible API at `<status.url>/v1`) with the
`x-drover-version` header, which pins a request to one version even at weight 0: that is how a
canary is warmed and checked before it gets any traffic. Metric analysis reads Prometheus.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from drover.api.rollout import (
    Analysis,
    EvaluationPrompt,
    MetricName,
    MetricResult,
    RolloutSpec,
    Verdict,
)
from drover.k8s.metrics import (
    MetricsUnavailable,
    Selector,
    analysis_query,
    problem_of,
    query_one,
    samples_query,
)
from drover.policy.analysis import evaluate_metric, evaluation_pass_rate, judge_warmup
from drover.policy.metrics_health import MetricsProblem

VERSION_HEADER = "x-drover-version"
CONCURRENCY = 8


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
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
    ).encode()
    headers = {"content-type": "application/json", VERSION_HEADER: version}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/chat/completions", data=body, headers=headers, method="POST"
    )
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


def warm_up(
    url: str,
    model: str,
    version: str,
    spec: RolloutSpec,
    *,
    now: datetime,
    max_tokens: int = 64,
    api_key: str | None = None,
) -> list[MetricResult]:
    """Send the warm-up requests and evaluation prompts to the canary; judge them.

    `max_tokens` is the service's own limit: a request asking for more is refused (400), which
    would count against a healthy canary."""
    tokens = min(spec.warmup.max_tokens, max_tokens)
    prompts = spec.analysis.evaluation_prompts
    warm = [p.prompt for p in prompts] or ["Hello"]
    sent = spec.warmup.requests
    answers = _ask_all(
        url,
        model,
        version,
        [warm[i % len(warm)] for i in range(sent)],
        tokens,
        api_key,
    )
    failed = sum(a is None for a in answers)
    rate = _pass_rate(url, model, version, prompts, api_key, tokens) if prompts else None
    return judge_warmup(spec, sent, failed, rate, measured_at=now)


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
    timeout: float = 5.0,
    max_tokens: int = 64,
    api_key: str | None = None,
) -> tuple[list[MetricResult], list[MetricsProblem]]:
    """Each analysis metric of the canary (and the stable, for relative thresholds), and the
    Prometheus queries that failed or found no series (a canary without requests in the window
    has series, just no increase: that is too little data, not missing metrics)."""
    window = max((now - window_start).total_seconds(), 1.0)
    analysis: Analysis = spec.analysis
    results: list[MetricResult] = []
    problems: list[MetricsProblem] = []
    canary_sel = Selector(model, namespace, canary)
    for metric in spec.effective_metrics():
        if metric.name == MetricName.EVALUATION_PASS_RATE:
            prompts = analysis.evaluation_prompts
            rate = _pass_rate(url, model, canary, prompts, api_key, min(64, max_tokens))
            count = len(analysis.evaluation_prompts)
            results.append(evaluate_metric(metric, rate, None, count, 1, measured_at=now))
            continue
        try:
            value, stable_value, samples = _prometheus_values(
                prometheus_url,
                metric.name.value,
                metric.max_relative_to_stable is not None,
                canary_sel,
                Selector(model, namespace, stable),
                window,
                now,
                timeout,
            )
        except MetricsUnavailable as exc:
            query = analysis_query(metric.name.value, canary_sel, window)
            problems.append(problem_of(exc, query, ""))
            results.append(
                MetricResult(
                    metric=metric.name.value,
                    verdict=Verdict.INCONCLUSIVE,
                    measured_at=now,
                    message=str(exc),
                )
            )
            continue
        if samples is None:
            query = samples_query(metric.name.value, canary_sel, window)
            missing = f"{metric.name.value} of version {canary} of {namespace}/{model}"
            problems.append(problem_of(None, query, missing))
        results.append(
            evaluate_metric(
                metric,
                value,
                stable_value,
                int(samples or 0),
                analysis.min_requests,
                measured_at=now,
            )
        )
    return results, problems


def _prometheus_values(
    prometheus_url: str,
    metric: str,
    relative: bool,
    canary: Selector,
    stable: Selector,
    window: float,
    now: datetime,
    timeout: float,
) -> tuple[float | None, float | None, float | None]:
    value = query_one(
        prometheus_url, analysis_query(metric, canary, window), at=now, timeout=timeout
    )
    stable_value = None
    if relative:
        stable_value = query_one(
            prometheus_url, analysis_query(metric, stable, window), at=now, timeout=timeout
        )
    samples = query_one(
        prometheus_url, samples_query(metric, canary, window), at=now, timeout=timeout
    )
    return value, stable_value, samples
