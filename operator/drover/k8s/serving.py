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
from datetime import datetime

from drover.api.rollout import Analysis, EvaluationPrompt, MetricName, MetricResult, Verdict
from drover.k8s.metrics import (
    MetricsUnavailable,
    Selector,
    analysis_query,
    query_one,
    samples_query,
)
from drover.policy.analysis import evaluate_metric, evaluation_pass_rate

VERSION_HEADER = "x-drover-version"


def chat(
    url: str,
    model: str,
    version: str,
    prompt: str,
    *,
    max_tokens: int = 32,
    api_key: str | None = None,
    timeout: float = 30.0,
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


def warm_up(
    url: str,
    model: str,
    version: str,
    requests: int,
    prompts: Sequence[EvaluationPrompt],
    *,
    now: datetime,
    api_key: str | None = None,
) -> list[MetricResult]:
    """Send warm-up requests and the evaluation prompts to the canary; report both as results."""
    answered = sum(
        chat(url, model, version, "Hello", max_tokens=8, api_key=api_key) is not None
        for _ in range(requests)
    )
    results = [
        MetricResult(
            metric="warmup",
            value=float(answered),
            threshold=float(requests),
            verdict=Verdict.SUCCESSFUL if answered == requests else Verdict.FAILED,
            measured_at=now,
            samples=requests,
            message=f"{answered}/{requests} warm-up requests answered",
        )
    ]
    results += evaluate_prompts(url, model, version, prompts, now=now, api_key=api_key)
    return results


def evaluate_prompts(
    url: str,
    model: str,
    version: str,
    prompts: Sequence[EvaluationPrompt],
    *,
    now: datetime,
    api_key: str | None = None,
    min_pass_rate: float = 1.0,
) -> list[MetricResult]:
    if not prompts:
        return []
    answers = [chat(url, model, version, p.prompt, api_key=api_key) for p in prompts]
    rate = evaluation_pass_rate(prompts, answers)
    ok = rate is not None and rate >= min_pass_rate
    return [
        MetricResult(
            metric=MetricName.EVALUATION_PASS_RATE.value,
            value=rate,
            threshold=min_pass_rate,
            verdict=Verdict.SUCCESSFUL if ok else Verdict.FAILED,
            measured_at=now,
            samples=len(prompts),
            message=f"evaluation prompts passed {rate if rate is not None else 0:.0%} "
            f"(needs {min_pass_rate:.0%})",
        )
    ]


def measure(
    prometheus_url: str,
    analysis: Analysis,
    *,
    service: str,
    namespace: str,
    canary: str,
    stable: str,
    window_start: datetime,
    now: datetime,
    timeout: float = 5.0,
) -> list[MetricResult]:
    """Each analysis metric of the canary (and the stable, for relative thresholds)."""
    window = max((now - window_start).total_seconds(), 1.0)
    sel_canary = Selector(service, namespace, canary)
    sel_stable = Selector(service, namespace, stable)
    results: list[MetricResult] = []
    for metric in analysis.metrics:
        if metric.name == MetricName.EVALUATION_PASS_RATE:
            continue  # measured by evaluate_prompts, not Prometheus
        try:
            promql = analysis_query(metric.name.value, sel_canary, window)
            canary_value = query_one(prometheus_url, promql, at=now, timeout=timeout)
            stable_value = None
            if metric.max_relative_to_stable is not None:
                promql = analysis_query(metric.name.value, sel_stable, window)
                stable_value = query_one(prometheus_url, promql, at=now, timeout=timeout)
            samples = query_one(
                prometheus_url, samples_query(sel_canary, window), at=now, timeout=timeout
            )
        except MetricsUnavailable as exc:
            results.append(
                MetricResult(
                    metric=metric.name.value,
                    verdict=Verdict.INCONCLUSIVE,
                    measured_at=now,
                    message=str(exc),
                )
            )
            continue
        results.append(
            evaluate_metric(
                metric,
                canary_value,
                stable_value,
                int(samples or 0),
                analysis.min_requests,
                measured_at=now,
            )
        )
    return results
