"""Policy layer: canary analysis verdicts, pure.

Turns measured values (already fetched by the I/O layer) into per-metric verdicts, combines them
into continue / hold / rollback against `failureLimit`, and scores evaluation-prompt answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from drover.api.rollout import (
    AnalysisMetric,
    EvaluationPrompt,
    InconclusivePolicy,
    MetricName,
    MetricResult,
    PromptExpectation,
    RolloutSpec,
    Verdict,
)

DEFAULT_MIN_ROUGE_L = 0.3

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


def judge_warmup(
    spec: RolloutSpec,
    sent: int,
    failed: int,
    pass_rate: float | None,
    *,
    measured_at: datetime,
) -> list[MetricResult]:
    """The pre-traffic analysis: errorRate of the warm-up requests and the prompts' pass rate.

    Absolute errorRate limits apply to the `sent` warm-up requests (minRequests capped at
    `sent`); relative ones cannot be judged without stable traffic and are skipped. A canary
    that answered none of its warm-up requests fails even when no errorRate metric is set.
    `pass_rate` is `evaluation_pass_rate` of the prompts' answers (None without prompts).
    """
    results: list[MetricResult] = []
    at = measured_at
    prompts = len(spec.analysis.evaluation_prompts)
    rate = failed / sent if sent else None
    for metric in spec.effective_metrics():
        if metric.name == MetricName.ERROR_RATE and metric.max is not None and sent:
            need = min(spec.analysis.min_requests, sent)
            results.append(evaluate_metric(metric, rate, None, sent, need, measured_at=at))
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
