"""Policy layer: canary analysis verdicts, pure.

Judges metrics against absolute limits (`evaluate_metric`) and the warm-up requests
(`judge_warmup`; traffic metrics are judged by the sequential test of `drover.policy.traffic`),
and combines them into continue / hold / rollback against `failureLimit`. Evaluation prompts are
scored in `drover.policy.evaluation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from drover.api.rollout import (
    AnalysisMetric,
    Evidence,
    InconclusivePolicy,
    MetricName,
    MetricResult,
    RolloutSpec,
    Verdict,
)
from drover.policy.sequential import TIMING_BOUNDS, Histogram
from drover.policy.traffic import Window, format_number, judge_metric

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
        ratio = format_number(metric.max_relative_to_stable)
        limit = f"{ratio} x stable {format_number(stable)} = {format_number(threshold)}"
    elif metric.min is not None:
        ok = canary >= metric.min
        verdict = Verdict.SUCCESSFUL if ok else Verdict.FAILED
        word = ">=" if ok else "<"
        found = f"{name} {format_number(canary)} {word} min {format_number(metric.min)}"
        return result(verdict, metric.min, found)
    else:
        threshold = metric.max if metric.max is not None else metric.max_seconds or 0.0
        limit = f"max {format_number(threshold)}"
    if canary > threshold:
        return result(Verdict.FAILED, threshold, f"{name} {format_number(canary)} > {limit}")
    return result(Verdict.SUCCESSFUL, threshold, f"{name} {format_number(canary)} <= {limit}")


@dataclass(frozen=True)
class WarmupTimings:
    """What the operator timed of each streamed warm-up answer, on the canary and on the stable:
    the same prompts sent to both, interleaved, so the two are measured under the same load.
    Seconds to the first token, and the mean gap between tokens (answers of two tokens or more).
    Whole-answer latency is not compared: two models may answer a prompt at different lengths."""

    canary_ttft: tuple[float, ...] = ()
    stable_ttft: tuple[float, ...] = ()
    canary_itl: tuple[float, ...] = ()
    stable_itl: tuple[float, ...] = ()

    def of(self, metric: MetricName | str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(canary, stable) observations for a ttft or itl metric; None for any other."""
        name = str(metric)
        if name.startswith("ttft"):
            return self.canary_ttft, self.stable_ttft
        if name.startswith("itl"):
            return self.canary_itl, self.stable_itl
        return None


def judge_warmup(
    spec: RolloutSpec,
    sent: int,
    failed: int,
    pass_rate: float | None,
    *,
    measured_at: datetime,
    prior: Mapping[str, Evidence] | None = None,
    timings: WarmupTimings | None = None,
) -> list[MetricResult]:
    """The pre-traffic analysis: errorRate of the warm-up requests and the prompts' pass rate.

    An absolute errorRate limit is tested sequentially on the `sent` warm-up requests added to
    `prior` (the rollout's evidence so far: an undecided warm-up is warmed again and its requests
    add up), minRequests capped at `sent`; relative errorRate limits cannot be judged without
    stable traffic and are skipped. With `timings`, ttft and itl metrics are screened on the
    warm-up (`_warmup_latency`). A canary that answered none of its warm-up requests fails even
    when no errorRate metric is set. `pass_rate` is `evaluation_pass_rate` of the prompts' answers
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
        elif timings is not None and (slower := _warmup_latency(metric, timings, at)):
            results.append(slower)
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


def _warmup_latency(
    metric: AnalysisMetric, timings: WarmupTimings, at: datetime
) -> MetricResult | None:
    """A ttft or itl metric screened on the warm-up: the canary's answers against the stable's
    to the same prompts, by the same sequential test as the traffic steps (`judge_metric`). A
    failure rolls back before any user request. Undecided, it is left to the traffic steps (a
    canary in the test's indifference zone is not warmed again and again); leaning slower, its
    log-likelihood ratio starts their test, but not its answers: the warm-up's prompts, which
    are not the users', never count towards passing (minRequests) and never bank evidence for
    it. None: nothing to report (no timings for this metric, or undecided leaning faster)."""
    pair = timings.of(metric.name)
    if pair is None or not pair[0] or not pair[1]:
        return None
    window = Window(
        canary=Histogram.from_samples(TIMING_BOUNDS, pair[0]),
        stable=Histogram.from_samples(TIMING_BOUNDS, pair[1]),
    )
    result = judge_metric(metric, window, None, len(pair[0]), measured_at=at)
    message = f"warm-up, the same prompts on both versions: {result.message}"
    if result.verdict == Verdict.FAILED:
        return result.model_copy(update={"message": message})
    ev = result.evidence
    if ev is None or ev.log_likelihood_ratio <= 0:
        return None
    # Leaning slower, undecided: the statistic (not its answers) starts the traffic test, which
    # alone can pass the canary (its requests count towards minRequests, these do not).
    carried = Evidence(
        log_likelihood_ratio=ev.log_likelihood_ratio,
        accept_at=ev.accept_at,
        reject_at=ev.reject_at,
        h0=ev.h0,
        h1=ev.h1,
    )
    lean = f"; ln LR {ev.log_likelihood_ratio:.2f} carried into the traffic steps"
    return result.model_copy(
        update={
            "verdict": Verdict.SUCCESSFUL,
            "message": message.replace("; not yet: the evidence decides neither way", lean),
            "evidence": carried,
            "samples": 0,
        }
    )


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
    # Held because Prometheus could not be read: counted nowhere, and the window is measured
    # again whole once it can (its evidence is not added).
    blind: bool = False


def decide_analysis(
    results: Sequence[MetricResult],
    failures_so_far: int,
    inconclusives: int,
    failure_limit: int,
    on_inconclusive: InconclusivePolicy | str,
    unavailable: str | None = None,
) -> AnalysisVerdict:
    """Combine one analysis' metric results (Argo Rollouts' semantics).

    Any failed metric fails the analysis; the rollout rolls back once failed analyses exceed
    `failure_limit`. An inconclusive analysis holds, or with `on_inconclusive=rollback` counts
    as failed. No metrics at all is a success (nothing to check).

    `unavailable` (why Prometheus could not be read) holds an analysis that no metric failed,
    whatever `on_inconclusive` says: an outage of the metrics is no evidence about the canary,
    so it neither promotes nor rolls back blind, nor counts toward failureLimit. A metric that
    failed on data Prometheus did give still fails the analysis.
    """
    failed = [r for r in results if r.verdict == Verdict.FAILED]
    if unavailable and not failed:
        why = f"metrics unavailable, holding: {unavailable}"
        return AnalysisVerdict(
            AnalysisAction.HOLD, Verdict.INCONCLUSIVE, failures_so_far, inconclusives, why, True
        )
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
