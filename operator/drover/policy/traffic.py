"""Policy layer: the canary's traffic metrics judged by a sequential test, window by window.

Each analysis window's observations (request and error counts, latency histograms, fetched by
`drover.k8s.serving`) are added to the metric's evidence carried in status, and Wald's SPRT
(`drover.policy.sequential`) says failed, successful or not yet (`judge_metric`). Used by the
rollout's analysis (`drover.policy.analysis`) and by bench/canary.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from drover.api.rollout import (
    AnalysisMetric,
    Evidence,
    MetricName,
    MetricResult,
    Verdict,
)
from drover.policy.sequential import (
    LIMIT_MARGIN,
    MIN_STABLE_TAIL,
    MIN_TAIL_RATIO,
    REGRESSION_RATIO,
    Histogram,
    Sprt,
    Tail,
    regressed_rate,
)

# A relative errorRate compares with the stable's rate, but never with less than this: a stable
# with no error yet would make a single canary error look like an infinite regression.
MIN_RELATIVE_ERROR_RATE = 0.001
_QUANTILES = {"P50": 0.5, "P95": 0.95, "P99": 0.99}
_SPRT = Sprt()


def format_number(x: float) -> str:
    """A number in a verdict's message: four significant digits."""
    return f"{x:.4g}"


@dataclass(frozen=True)
class Window:
    """One analysis window's observations of one traffic metric, per version.

    errorRate reads the request counts; latency, ttft and itl metrics the histograms (None: no
    answer). Counts may be fractional, as Prometheus' increase() extrapolates them.
    """

    canary_requests: float = 0.0
    canary_errors: float = 0.0
    stable_requests: float = 0.0
    stable_errors: float = 0.0
    canary: Histogram | None = None
    stable: Histogram | None = None


def metric_quantile(metric: MetricName | str) -> float | None:
    """0.95 for latencyP95, ttftP95, itlP95 ...; None for errorRate and evaluationPassRate."""
    name = str(metric)
    for prefix in ("latency", "ttft", "itl"):
        if name.startswith(prefix):
            return _QUANTILES.get(name[len(prefix) :])
    return None


@dataclass(frozen=True)
class _Test:
    """What one window adds to a metric's test: h0/h1 and the counts; value and limit shown."""

    samples: float
    events: float
    h0: float
    h1: float
    value: float | None
    threshold: float | None
    limit: str
    unit: str
    tail: Tail | None = None


def _error_test(metric: AnalysisMetric, w: Window, prior: Evidence) -> _Test | str:
    n, k = w.canary_requests, w.canary_errors
    value = k / n if n > 0 else None
    if metric.max is not None:
        h0, threshold, limit = metric.max, metric.max, f"max {format_number(metric.max)}"
    else:
        ratio = metric.max_relative_to_stable or 1.0
        stable_n, stable_k = prior.stable_samples + w.stable_requests, prior.stable_events
        stable_k += w.stable_errors
        if stable_n <= 0:
            return "no data for the stable version"
        rate = (stable_k + 0.5) / (stable_n + 1.0)  # Jeffreys' estimate: no error is not 0
        h0 = min(max(ratio * rate, MIN_RELATIVE_ERROR_RATE), 0.5)
        threshold = ratio * (w.stable_errors / w.stable_requests if w.stable_requests else rate)
        stable_rate, limit_rate = format_number(threshold / ratio), format_number(threshold)
        limit = f"{format_number(ratio)} x stable {stable_rate} = {limit_rate}"
    return _Test(n, k, h0, regressed_rate(h0), value, threshold, limit, "requests failed")


def _latency_test(metric: AnalysisMetric, w: Window) -> _Test | str:
    q = metric_quantile(metric.name) or 0.95
    canary = w.canary
    n = canary.count if canary is not None else 0.0
    value = canary.quantile(q) if canary is not None else None
    if metric.max_relative_to_stable is not None:
        return _relative_latency_test(metric, w, q, value)
    cut, h0 = metric.max_seconds or 0.0, 1.0 - q
    events = canary.above(cut) if canary is not None and n > 0 else 0.0
    unit = f"{_counted(metric)} above {format_number(cut)}s"
    limit = f"max {format_number(cut)}"
    return _Test(n, events, h0, regressed_rate(h0), value, cut, limit, unit)


def _relative_latency_test(
    metric: AnalysisMetric, w: Window, q: float, value: float | None
) -> _Test | str:
    """A rank test at the stable's own quantile of the same window: each canary request beyond
    it is an event. A canary `ratio` times slower than the stable (at the limit) puts there the
    stable's share beyond cut / ratio (h1: the regression to catch); one LIMIT_MARGIN below the
    limit (1.25x for 1.5, 2.5x for 3) the stable's share beyond cut / (ratio / (1 +
    LIMIT_MARGIN)) (h0: acceptable), both read off the stable's histogram, as a pure slow-down
    would shift it. Cutting at the stable's quantile rather than at the limit puts h1 far above
    1 - q when latencies are not spread wide (a 1.5x canary: ~0.5 of its inter-token gaps beyond
    the stable's p95, against 0.05 beyond the limit), so a regression at the limit fails after
    tens of requests, not hundreds. The events beyond the limit itself are a cell of their own
    (`_limit_tail`), so a canary far beyond it fails on a few requests. h0 sits at the acceptable
    edge of the limit, not near the stable, so a canary within its limit passes (an earlier rank
    test put h0 at 1.1x for a 1.5 limit and 1.4x for 3, and rolled back a canary 2.4x slower
    than its stable against a 3x limit)."""
    ratio = metric.max_relative_to_stable or 1.0
    canary, stable = w.canary, w.stable
    cut = stable.quantile(q) if stable is not None else None
    if stable is None or cut is None:
        return "no data for the stable version"
    if stable.count * (1.0 - q) < MIN_STABLE_TAIL:
        need = MIN_STABLE_TAIL / (1.0 - q)
        return (
            f"the stable answered {stable.count:.0f} requests in this window, its "
            f"quantile needs {need:.0f}: the window is not counted"
        )
    threshold = ratio * cut
    acceptable = max(ratio / (1.0 + LIMIT_MARGIN), 1.0)
    h0 = max(stable.above(cut / acceptable) / stable.count, 1.0 - q)
    h1 = stable.above(cut / ratio) / stable.count
    h1 = min(max(h1, MIN_TAIL_RATIO * h0), (1.0 + h0) / 2.0)
    limit = f"{format_number(ratio)} x stable {format_number(cut)} = {format_number(threshold)}"
    n = canary.count if canary is not None else 0.0
    events = canary.above(cut) if canary is not None and n > 0 else 0.0
    unit = f"{_counted(metric)} above {format_number(cut)}s"
    tail = _limit_tail(q, stable, canary, cut, threshold)
    return _Test(n, events, h0, h1, value, threshold, limit, unit, tail)


def _counted(metric: AnalysisMetric) -> str:
    return "gaps" if str(metric.name).startswith("itl") else "requests"


def _limit_tail(
    q: float, stable: Histogram, canary: Histogram | None, cut: float, limit: float
) -> Tail:
    """The canary's events beyond the limit itself: a canary at the limit puts 1 - q of its
    requests there (h1), one LIMIT_MARGIN below it the stable's share beyond (1 + LIMIT_MARGIN)
    x its quantile (h0, at least 1 - q over REGRESSION_RATIO, at most half of h1)."""
    t1 = 1.0 - q
    t0 = stable.above(cut * (1.0 + LIMIT_MARGIN)) / stable.count
    t0 = min(max(t0, t1 / REGRESSION_RATIO), t1 / MIN_TAIL_RATIO)
    beyond = canary.above(limit) if canary is not None and canary.count > 0 else 0.0
    return Tail(beyond, t0, t1)


def judge_metric(
    metric: AnalysisMetric,
    window: Window,
    prior: Evidence | None,
    min_requests: int,
    *,
    measured_at: datetime,
    sprt: Sprt = _SPRT,
) -> MetricResult:
    """Add one window to a traffic metric's sequential test and judge the canary on it.

    Each canary observation is a Bernoulli event: a failed request (errorRate), or a request
    beyond the latency limit (maxSeconds, or `ratio` x the stable's quantile of the same
    window). h0 is the acceptable event rate and h1 the regressed one: errorRate's max and
    `regressed_rate` of it; 1 - q and `regressed_rate` of it for a q-quantile under maxSeconds;
    for relative latency the share a canary LIMIT_MARGIN below the limit would put beyond it
    (read off the stable's histogram) and 1 - q, the share of a canary at the limit. Failed once
    the log-likelihood ratio reaches the upper boundary; successful once it is at or below the
    lower one with at least `min_requests` canary observations counted; inconclusive ("not yet")
    in between. `prior` is the evidence so far (None: none yet).
    """
    name = str(metric.name)
    base = prior or Evidence(accept_at=sprt.accept_at, reject_at=sprt.reject_at)
    if name.startswith("itl") and not _any_observation(base, window):
        return MetricResult(
            metric=name,
            verdict=Verdict.SUCCESSFUL,
            measured_at=measured_at,
            samples=0,
            message=f"{name}: neither version has streamed an answer in this rollout: "
            "nothing to judge",
            evidence=base,
        )
    test = _error_test(metric, window, base) if name == MetricName.ERROR_RATE else None
    if test is None:
        test = _latency_test(metric, window)
    if isinstance(test, str):
        return MetricResult(
            metric=name,
            verdict=Verdict.INCONCLUSIVE,
            measured_at=measured_at,
            samples=round(base.canary_samples),
            message=f"{name}: {test}",
            evidence=base if prior is not None else None,
        )
    evidence = _with_window(base, test, window, sprt)
    return _sequential_result(name, test, evidence, min_requests, measured_at)


def _with_window(base: Evidence, test: _Test, window: Window, sprt: Sprt) -> Evidence:
    """The evidence with one window's observations added (unchanged by a window without any)."""
    if test.samples <= 0 and window.stable_requests <= 0 and window.stable is None:
        return base
    return Evidence(
        canary_samples=base.canary_samples + test.samples,
        canary_events=base.canary_events + test.events,
        stable_samples=base.stable_samples
        + (window.stable.count if window.stable else window.stable_requests),
        stable_events=base.stable_events + window.stable_errors,
        log_likelihood_ratio=sprt.step(
            base.log_likelihood_ratio, test.samples, test.events, test.h0, test.h1, test.tail
        ),
        accept_at=sprt.accept_at,
        reject_at=sprt.reject_at,
        h0=test.h0,
        h1=test.h1,
        windows=base.windows + 1,
    )


def restart_evidence(evidence: Mapping[str, Evidence], sprt: Sprt = _SPRT) -> dict[str, Evidence]:
    """The evidence a new traffic step starts from (`Sprt.restart` of each statistic)."""
    return {
        name: ev.model_copy(update={"log_likelihood_ratio": sprt.restart(ev.log_likelihood_ratio)})
        for name, ev in evidence.items()
    }


def _any_observation(base: Evidence, w: Window) -> bool:
    seen = base.canary_samples + base.stable_samples
    return seen > 0 or any(h is not None and h.count > 0 for h in (w.canary, w.stable))


def _sequential_result(
    name: str, test: _Test, ev: Evidence, min_requests: int, measured_at: datetime
) -> MetricResult:
    stat = ev.log_likelihood_ratio
    n = ev.canary_samples
    if test.value is not None and test.threshold is not None:
        word = ">" if test.value > test.threshold else "<="
        head = f"{name} {format_number(test.value)} {word} {test.limit}"
    else:
        head = f"{name}: no canary data in this window ({test.limit})"
    rests_on = (
        f"{ev.canary_events:.4g} of {n:.4g} canary {test.unit} so far "
        f"(h0 {ev.h0:.3g}, h1 {ev.h1:.3g}), ln LR {stat:.2f}: pass at {ev.accept_at:.2f}, "
        f"fail at {ev.reject_at:.2f}"
    )
    if stat >= ev.reject_at:
        verdict, why = Verdict.FAILED, "regressed"
    elif stat <= ev.accept_at + 1e-9 and n >= min_requests and n > 0:
        verdict, why = Verdict.SUCCESSFUL, "passes"
    elif n < min_requests:
        verdict = Verdict.INCONCLUSIVE
        why = f"not yet: only {n:.0f} canary requests, need {min_requests} (minRequests)"
    else:
        verdict, why = Verdict.INCONCLUSIVE, "not yet: the evidence decides neither way"
    return MetricResult(
        metric=name,
        value=test.value,
        threshold=test.threshold,
        verdict=verdict,
        measured_at=measured_at,
        samples=round(n),
        message=f"{head}; {rests_on}; {why}",
        evidence=ev,
    )
