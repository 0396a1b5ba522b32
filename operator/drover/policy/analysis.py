"""Policy layer: canary analysis verdicts, pure.

Turns one window's observations (already fetched by the I/O layer) into per-metric verdicts of a
sequential test whose evidence is carried in status from window to window (`judge_metric`),
combines them into continue / hold / rollback against `failureLimit`, and scores
evaluation-prompt answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from drover.api.rollout import (
    AnalysisMetric,
    EvaluationPrompt,
    Evidence,
    InconclusivePolicy,
    MetricName,
    MetricResult,
    PromptExpectation,
    RolloutSpec,
    Verdict,
)
from drover.policy.sequential import (
    LIMIT_MARGIN,
    MIN_STABLE_TAIL,
    MIN_TAIL_RATIO,
    REGRESSION_RATIO,
    Histogram,
    Sprt,
    regressed_rate,
)

DEFAULT_MIN_ROUGE_L = 0.3
# A relative errorRate compares with the stable's rate, but never with less than this: a stable
# with no error yet would make a single canary error look like an infinite regression.
MIN_RELATIVE_ERROR_RATE = 0.001
_QUANTILES = {"P50": 0.5, "P95": 0.95, "P99": 0.99}
_SPRT = Sprt()

Measured = float | Sequence[float] | None


def worst_value(metric: MetricName | str, values: Measured) -> float | None:
    """The worst of several series' values: the lowest pass rate, else the highest value.

    NaN (Prometheus' answer for 0/0) and infinities count as no data; no data is None.
    """
    if values is None:
        return None
    seq = [values] if isinstance(values, int | float) else list(values)
    finite = [float(v) for v in seq if math.isfinite(v)]
    if not finite:
        return None
    return min(finite) if str(metric) == MetricName.EVALUATION_PASS_RATE else max(finite)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def evaluate_metric(
    metric: AnalysisMetric,
    canary_value: Measured,
    stable_value: Measured,
    samples: int,
    min_requests: int,
    *,
    measured_at: datetime,
) -> MetricResult:
    """Judge one metric of the canary: Successful, Failed, or Inconclusive (no or too little data).

    `canary_value` and `stable_value` are one value or one per series (reduced to the worst here).
    `samples` is the number of canary requests in the window, or of evaluation prompts asked for
    evaluationPassRate (which needs only one, as the prompts are few by design).
    """
    name = str(metric.name)
    canary = worst_value(name, canary_value)

    def result(verdict: Verdict, threshold: float | None, message: str) -> MetricResult:
        return MetricResult(
            metric=name,
            value=canary,
            threshold=threshold,
            verdict=verdict,
            measured_at=measured_at,
            samples=samples,
            message=message,
        )

    needed = 1 if name == MetricName.EVALUATION_PASS_RATE else min_requests
    if canary is None:
        return result(Verdict.INCONCLUSIVE, None, f"{name}: no data for the canary")
    if samples < needed:
        return result(
            Verdict.INCONCLUSIVE,
            None,
            f"{name}: only {samples} canary requests, need {needed} (minRequests)",
        )
    if metric.max_relative_to_stable is not None:
        stable = worst_value(name, stable_value)
        if stable is None:
            return result(Verdict.INCONCLUSIVE, None, f"{name}: no data for the stable version")
        threshold = metric.max_relative_to_stable * stable
        limit = f"{_fmt(metric.max_relative_to_stable)} x stable {_fmt(stable)} = {_fmt(threshold)}"
    elif metric.min is not None:
        ok = canary >= metric.min
        verdict = Verdict.SUCCESSFUL if ok else Verdict.FAILED
        word = ">=" if ok else "<"
        return result(verdict, metric.min, f"{name} {_fmt(canary)} {word} min {_fmt(metric.min)}")
    else:
        threshold = metric.max if metric.max is not None else metric.max_seconds or 0.0
        limit = f"max {_fmt(threshold)}"
    if canary > threshold:
        return result(Verdict.FAILED, threshold, f"{name} {_fmt(canary)} > {limit}")
    return result(Verdict.SUCCESSFUL, threshold, f"{name} {_fmt(canary)} <= {limit}")


# --- sequential tests of traffic metrics --------------------------------------------------------


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


def _error_test(metric: AnalysisMetric, w: Window, prior: Evidence) -> _Test | str:
    n, k = w.canary_requests, w.canary_errors
    value = k / n if n > 0 else None
    if metric.max is not None:
        h0, threshold, limit = metric.max, metric.max, f"max {_fmt(metric.max)}"
    else:
        ratio = metric.max_relative_to_stable or 1.0
        stable_n, stable_k = prior.stable_samples + w.stable_requests, prior.stable_events
        stable_k += w.stable_errors
        if stable_n <= 0:
            return "no data for the stable version"
        rate = (stable_k + 0.5) / (stable_n + 1.0)  # Jeffreys' estimate: no error is not 0
        h0 = min(max(ratio * rate, MIN_RELATIVE_ERROR_RATE), 0.5)
        threshold = ratio * (w.stable_errors / w.stable_requests if w.stable_requests else rate)
        limit = f"{_fmt(ratio)} x stable {_fmt(threshold / ratio)} = {_fmt(threshold)}"
    return _Test(n, k, h0, regressed_rate(h0), value, threshold, limit, "requests failed")


def _latency_test(metric: AnalysisMetric, w: Window) -> _Test | str:
    q = metric_quantile(metric.name) or 0.95
    canary = w.canary
    n = canary.count if canary is not None else 0.0
    value = canary.quantile(q) if canary is not None else None
    h0 = 1.0 - q
    if metric.max_relative_to_stable is None:
        cut = metric.max_seconds or 0.0
        h1, threshold, limit = regressed_rate(h0), cut, f"max {_fmt(cut)}"
    else:
        ratio = metric.max_relative_to_stable
        stable = w.stable
        cut_or_none = stable.quantile(q) if stable is not None else None
        if stable is None or cut_or_none is None:
            return "no data for the stable version"
        if stable.count * (1.0 - q) < MIN_STABLE_TAIL:
            need = MIN_STABLE_TAIL / (1.0 - q)
            return (
                f"the stable answered {stable.count:.0f} requests in this window, its "
                f"quantile needs {need:.0f}: the window is not counted"
            )
        # Counted against the limit itself, so the test asks what the limit states: a canary `ratio`
        # times slower than the stable (at the limit) puts 1 - q of its requests beyond it (h1:
        # at the limit is the regression to catch); one LIMIT_MARGIN below the limit puts the
        # stable's own share beyond (1 + LIMIT_MARGIN) x its quantile there (h0, read off the
        # stable's histogram, at least 1 - q over REGRESSION_RATIO, at most half of h1).
        # Between the two the test may go either way.
        threshold = ratio * cut_or_none
        cut = threshold
        h1 = 1.0 - q
        tail = stable.above(cut_or_none * (1.0 + LIMIT_MARGIN)) / stable.count
        h0 = min(max(tail, h1 / REGRESSION_RATIO), h1 / MIN_TAIL_RATIO)
        limit = f"{_fmt(ratio)} x stable {_fmt(cut_or_none)} = {_fmt(threshold)}"
    events = canary.above(cut) if canary is not None and n > 0 else 0.0
    unit = f"{'gaps' if str(metric.name).startswith('itl') else 'requests'} above {_fmt(cut)}s"
    return _Test(n, events, h0, h1, value, threshold, limit, unit)


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
            base.log_likelihood_ratio, test.samples, test.events, test.h0, test.h1
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
        head = f"{name} {_fmt(test.value)} {word} {test.limit}"
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


def judge_warmup(
    spec: RolloutSpec,
    sent: int,
    failed: int,
    pass_rate: float | None,
    *,
    measured_at: datetime,
    prior: Mapping[str, Evidence] | None = None,
) -> list[MetricResult]:
    """The pre-traffic analysis: errorRate of the warm-up requests and the prompts' pass rate.

    An absolute errorRate limit is tested sequentially on the `sent` warm-up requests added to
    `prior` (the rollout's evidence so far: an undecided warm-up is warmed again and its requests
    add up), minRequests capped at `sent`; relative limits cannot be judged without stable
    traffic and are skipped. A canary that answered none of its warm-up requests fails even when
    no errorRate metric is set. `pass_rate` is `evaluation_pass_rate` of the prompts' answers
    (None without prompts).
    """
    results: list[MetricResult] = []
    at = measured_at
    prompts = len(spec.analysis.evaluation_prompts)
    evidence = prior or {}
    for metric in spec.effective_metrics():
        if metric.name == MetricName.ERROR_RATE and metric.max is not None and sent:
            need = min(spec.analysis.min_requests, sent)
            window = Window(canary_requests=sent, canary_errors=failed)
            results.append(
                judge_metric(metric, window, evidence.get(metric.name.value), need, measured_at=at)
            )
        elif metric.name == MetricName.EVALUATION_PASS_RATE and prompts:
            results.append(
                evaluate_metric(metric, pass_rate, None, prompts, 1, measured_at=measured_at)
            )
    if sent and failed == sent and not any(r.metric == MetricName.ERROR_RATE for r in results):
        results.append(
            MetricResult(
                metric=MetricName.ERROR_RATE,
                value=1.0,
                verdict=Verdict.FAILED,
                measured_at=at,
                samples=sent,
                message=f"the canary answered none of {sent} warm-up requests",
            )
        )
    return results


class AnalysisAction(StrEnum):
    CONTINUE = "continue"  # every metric successful: the step may advance
    HOLD = "hold"  # stay at this weight and measure again
    ROLLBACK = "rollback"  # failures exceed failureLimit


@dataclass(frozen=True)
class AnalysisVerdict:
    """The outcome of one analysis: what to do, the updated counters and why."""

    action: AnalysisAction
    verdict: Verdict
    failures: int
    inconclusives: int
    reason: str


def decide_analysis(
    results: Sequence[MetricResult],
    failures_so_far: int,
    inconclusives: int,
    failure_limit: int,
    on_inconclusive: InconclusivePolicy | str,
) -> AnalysisVerdict:
    """Combine one analysis' metric results (Argo Rollouts' semantics).

    Any failed metric fails the analysis; the rollout rolls back once failed analyses exceed
    `failure_limit`. An inconclusive analysis holds, or with `on_inconclusive=rollback` counts
    as failed. No metrics at all is a success (nothing to check).
    """
    failed = [r for r in results if r.verdict == Verdict.FAILED]
    unsure = [r for r in results if r.verdict == Verdict.INCONCLUSIVE]
    if failed:
        verdict, why = Verdict.FAILED, "; ".join(r.message for r in failed)
    elif unsure:
        verdict, why = Verdict.INCONCLUSIVE, "; ".join(r.message for r in unsure)
    else:
        verdict = Verdict.SUCCESSFUL
        why = "; ".join(r.message for r in results) or "no metrics to check"
    inconclusives += verdict == Verdict.INCONCLUSIVE
    counts_as_failure = verdict == Verdict.FAILED or (
        verdict == Verdict.INCONCLUSIVE and str(on_inconclusive) == InconclusivePolicy.ROLLBACK
    )
    if verdict == Verdict.SUCCESSFUL:
        return AnalysisVerdict(
            AnalysisAction.CONTINUE, verdict, failures_so_far, inconclusives, why
        )
    failures = failures_so_far + counts_as_failure
    tally = f"failed analyses {failures}, failureLimit {failure_limit}"
    if counts_as_failure and failures > failure_limit:
        return AnalysisVerdict(
            AnalysisAction.ROLLBACK, verdict, failures, inconclusives, f"{why} ({tally})"
        )
    label = "failed" if verdict == Verdict.FAILED else "inconclusive"
    return AnalysisVerdict(
        AnalysisAction.HOLD,
        verdict,
        failures,
        inconclusives,
        f"analysis {label}, holding: {why} ({tally})",
    )


# --- evaluation prompts ------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")


def _tokens(text: str) -> list[str]:
    # rouge-score's default tokenizer (lowercase, alphanumeric runs), extended to any alphabet.
    return _WORD.findall(text.lower())


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 (longest common subsequence of tokens), as rouge-score computes it unstemmed.

    Written here so the operator needs no NLP package; tests check it against rouge-score.
    """
    cand, ref = _tokens(candidate), _tokens(reference)
    if not cand or not ref:
        return 0.0
    prev = [0] * (len(ref) + 1)
    for c in cand:
        row = [0]
        for j, r in enumerate(ref):
            row.append(prev[j] + 1 if c == r else max(prev[j + 1], row[j]))
        prev = row
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_evaluation_prompt(
    prompt: EvaluationPrompt | PromptExpectation, answer: str | None
) -> bool:
    """Whether an answer meets every expectation given; no answer (a failed request) fails."""
    expect = prompt.expect if isinstance(prompt, EvaluationPrompt) else prompt
    if answer is None:
        return False
    low = answer.lower()
    if expect.contains is not None and expect.contains.lower() not in low:
        return False
    if expect.not_contains is not None and expect.not_contains.lower() in low:
        return False
    if expect.regex is not None and re.search(expect.regex, answer) is None:
        return False
    if expect.reference is not None:
        floor = DEFAULT_MIN_ROUGE_L if expect.min_rouge_l is None else expect.min_rouge_l
        return rouge_l(answer, expect.reference) >= floor
    return True


def evaluation_pass_rate(
    prompts: Sequence[EvaluationPrompt], answers: Sequence[str | None]
) -> float | None:
    """Share of prompts answered as expected (answers in prompt order); None without prompts."""
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} evaluation prompts but {len(answers)} answers")
    if not prompts:
        return None
    passed = sum(score_evaluation_prompt(p, a) for p, a in zip(prompts, answers, strict=True))
    return passed / len(prompts)
