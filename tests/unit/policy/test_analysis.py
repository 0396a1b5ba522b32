"""Unit tests of canary analysis verdicts and evaluation-prompt scoring."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rouge_score import rouge_scorer

from drover.api.evaluation_prompts import EvaluationPrompt, PromptExpectation
from drover.api.rollout import (
    AnalysisMetric,
    MetricResult,
    RolloutSpec,
    Verdict,
)
from drover.policy.analysis import (
    AnalysisAction,
    Measured,
    decide_analysis,
    evaluate_metric,
    judge_warmup,
    worst_value,
)
from drover.policy.evaluation import evaluation_pass_rate, rouge_l, score_evaluation_prompt

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ERRORS = AnalysisMetric(name="errorRate", max=0.01)
P95_ABS = AnalysisMetric(name="latencyP95", max_seconds=2.0)
P95_REL = AnalysisMetric(name="latencyP95", max_relative_to_stable=1.2)
PASS_RATE = AnalysisMetric(name="evaluationPassRate", min=0.9)


def judge(
    metric: AnalysisMetric, canary: Measured, stable: Measured = None, samples: int = 100
) -> MetricResult:
    return evaluate_metric(metric, canary, stable, samples, 20, measured_at=NOW)


# --- evaluate_metric -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "canary", "stable", "verdict", "threshold"),
    [
        (ERRORS, 0.005, None, Verdict.SUCCESSFUL, 0.01),
        (ERRORS, 0.2, None, Verdict.FAILED, 0.01),
        (P95_ABS, 1.9, None, Verdict.SUCCESSFUL, 2.0),
        (P95_ABS, 2.5, None, Verdict.FAILED, 2.0),
        (P95_REL, 1.1, 1.0, Verdict.SUCCESSFUL, 1.2),
        (P95_REL, 3.0, 1.0, Verdict.FAILED, 1.2),
        (PASS_RATE, 1.0, None, Verdict.SUCCESSFUL, 0.9),
        (PASS_RATE, 0.5, None, Verdict.FAILED, 0.9),
    ],
)
def test_metric_is_judged_against_its_threshold(
    metric: AnalysisMetric, canary: float, stable: float | None, verdict: Verdict, threshold: float
) -> None:
    r = judge(metric, canary, stable)
    assert r.verdict == verdict
    assert r.threshold == pytest.approx(threshold)
    assert r.value == pytest.approx(canary) and r.measured_at == NOW


def test_worst_series_decides_a_max_metric() -> None:
    r = judge(ERRORS, [0.0, 0.002, 0.05])
    assert r.verdict == Verdict.FAILED and r.value == pytest.approx(0.05)


def test_worst_series_decides_a_pass_rate_by_its_minimum() -> None:
    assert worst_value("evaluationPassRate", [1.0, 0.4]) == pytest.approx(0.4)
    assert judge(PASS_RATE, [1.0, 0.4]).verdict == Verdict.FAILED


def test_relative_threshold_uses_the_stable_worst_series() -> None:
    r = judge(P95_REL, [1.0, 1.3], stable=[0.9, 1.2])
    assert r.threshold == pytest.approx(1.44) and r.verdict == Verdict.SUCCESSFUL


@pytest.mark.parametrize("canary", [None, [], float("nan"), [float("nan"), float("inf")]])
def test_no_canary_data_is_inconclusive(canary: Measured) -> None:
    r = judge(ERRORS, canary)
    assert r.verdict == Verdict.INCONCLUSIVE and r.value is None
    assert "no data" in r.message


def test_no_stable_data_makes_a_relative_check_inconclusive() -> None:
    assert judge(P95_REL, 5.0, stable=float("nan")).verdict == Verdict.INCONCLUSIVE


def test_too_few_requests_is_inconclusive_even_when_the_value_looks_bad() -> None:
    r = judge(ERRORS, 0.5, samples=19)
    assert r.verdict == Verdict.INCONCLUSIVE
    assert "19" in r.message and "minRequests" in r.message


def test_pass_rate_needs_only_one_answered_prompt() -> None:
    assert judge(PASS_RATE, 1.0, samples=1).verdict == Verdict.SUCCESSFUL
    assert judge(PASS_RATE, 1.0, samples=0).verdict == Verdict.INCONCLUSIVE


# --- decide_analysis -------------------------------------------------------------------------


def result(verdict: Verdict, metric: str = "errorRate") -> MetricResult:
    return MetricResult(metric=metric, verdict=verdict, measured_at=NOW, message=f"{metric} x")


S, F, U = Verdict.SUCCESSFUL, Verdict.FAILED, Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("verdicts", "failures", "limit", "policy", "action", "new_failures", "new_inconclusives"),
    [
        ([S, S], 0, 1, "hold", AnalysisAction.CONTINUE, 0, 0),
        ([], 0, 1, "hold", AnalysisAction.CONTINUE, 0, 0),
        ([S, F], 0, 1, "hold", AnalysisAction.HOLD, 1, 0),
        ([S, F], 1, 1, "hold", AnalysisAction.ROLLBACK, 2, 0),
        ([F], 0, 0, "hold", AnalysisAction.ROLLBACK, 1, 0),
        ([S, U], 1, 1, "hold", AnalysisAction.HOLD, 1, 1),
        ([S, U], 0, 1, "rollback", AnalysisAction.HOLD, 1, 1),
        ([S, U], 1, 1, "rollback", AnalysisAction.ROLLBACK, 2, 1),
        ([F, U], 0, 0, "hold", AnalysisAction.ROLLBACK, 1, 0),
    ],
)
def test_analysis_combines_results_against_the_failure_limit(
    verdicts: list[Verdict],
    failures: int,
    limit: int,
    policy: str,
    action: AnalysisAction,
    new_failures: int,
    new_inconclusives: int,
) -> None:
    v = decide_analysis([result(x) for x in verdicts], failures, 0, limit, policy)
    assert (v.action, v.failures, v.inconclusives) == (action, new_failures, new_inconclusives)


def test_failed_metric_is_named_in_the_reason() -> None:
    v = decide_analysis([result(S, "latencyP95"), result(F, "errorRate")], 1, 0, 1, "hold")
    assert v.verdict == Verdict.FAILED
    assert "errorRate" in v.reason and "failureLimit 1" in v.reason


# --- evaluation prompts ----------------------------------------------------------------------


def expect(**kw: object) -> PromptExpectation:
    return PromptExpectation.model_validate(kw)


@pytest.mark.parametrize(
    ("expectation", "answer", "passes"),
    [
        (expect(contains="Refund"), "You can get a REFUND within 14 days.", True),
        (expect(contains="refund"), "Please contact support.", False),
        (expect(notContains="as an ai"), "As an AI model I cannot help.", False),
        (expect(notContains="as an ai"), "Sure, here is how.", True),
        (expect(regex=r"\b\d+ days\b"), "within 14 days", True),
        (expect(regex=r"\b\d+ days\b"), "within two weeks", False),
        (expect(contains="refund", regex="days"), "refund in 14 days", True),
        (expect(contains="refund", regex="days"), "refund soon", False),
        (expect(reference="refunds are issued within 14 days"), "refunds issued in 14 days", True),
        (expect(reference="refunds are issued within 14 days"), "the weather is nice", False),
        (
            expect(reference="refunds are issued within 14 days", minRougeL=0.9),
            "refunds issued in 14 days",
            False,
        ),
    ],
)
def test_answer_is_scored_against_every_expectation(
    expectation: PromptExpectation, answer: str, passes: bool
) -> None:
    assert score_evaluation_prompt(expectation, answer) is passes


def test_failed_request_fails_its_prompt() -> None:
    assert score_evaluation_prompt(expect(notContains="x"), None) is False


def test_pass_rate_is_the_share_of_prompts_answered_as_expected() -> None:
    prompts = [
        EvaluationPrompt(prompt="How do I get a refund?", expect=expect(contains="refund")),
        EvaluationPrompt(prompt="Opening hours?", expect=expect(regex=r"\d")),
    ]
    assert evaluation_pass_rate(prompts, ["a refund", "9 to 5"]) == pytest.approx(1.0)
    assert evaluation_pass_rate(prompts, ["a refund", None]) == pytest.approx(0.5)
    assert evaluation_pass_rate([], []) is None
    with pytest.raises(ValueError, match="2 evaluation prompts but 1 answers"):
        evaluation_pass_rate(prompts, ["a refund"])


@pytest.mark.parametrize(
    ("candidate", "reference"),
    [
        ("the cat sat on the mat", "a cat was sitting on the mat"),
        ("Refunds are issued within 14 days.", "You get a refund within 14 days of purchase"),
        ("completely unrelated", "nothing in common here"),
        ("same words same order", "same words same order"),
        ("order words reversed the", "the reversed words order"),
    ],
)
def test_rouge_l_matches_rouge_score(candidate: str, reference: str) -> None:
    expected = rouge_scorer.RougeScorer(["rougeL"]).score(reference, candidate)["rougeL"].fmeasure
    assert rouge_l(candidate, reference) == pytest.approx(expected)


def test_rouge_l_of_empty_text_is_zero() -> None:
    assert rouge_l("", "reference") == 0.0 and rouge_l("!!", "") == 0.0


# --- warm-up (pre-traffic analysis) ----------------------------------------------------------


def spec_with(**analysis: object) -> RolloutSpec:
    return RolloutSpec.model_validate({"analysis": analysis})


@pytest.mark.parametrize(
    ("failed", "verdict"),
    [(0, Verdict.SUCCESSFUL), (1, Verdict.INCONCLUSIVE), (6, Verdict.INCONCLUSIVE), (7, F)],
)
def test_warm_up_errors_are_a_sequential_test_at_the_error_rate_limit(
    failed: int, verdict: Verdict
) -> None:
    # errorRate max 0.01 against 0.05: 150 clean answers pass, 7 failures of 150 fail, and in
    # between the warm-up is "not yet" (warmed again, its requests adding up).
    results = judge_warmup(RolloutSpec(), 150, failed, None, measured_at=NOW)
    assert [(r.metric, r.verdict) for r in results] == [("errorRate", verdict)]
    assert results[0].evidence is not None and results[0].evidence.canary_samples == 150


def test_a_second_warm_up_adds_to_the_first_one_evidence() -> None:
    spec = RolloutSpec()
    first = judge_warmup(spec, 150, 1, None, measured_at=NOW)[0]
    assert first.verdict == Verdict.INCONCLUSIVE and first.evidence is not None
    second = judge_warmup(spec, 150, 1, None, measured_at=NOW, prior={"errorRate": first.evidence})
    assert second[0].verdict == Verdict.SUCCESSFUL
    assert second[0].evidence is not None and second[0].evidence.canary_samples == 300
    assert second[0].evidence.canary_events == 2 and second[0].samples == 300


def test_warm_up_caps_min_requests_at_the_requests_sent() -> None:
    results = judge_warmup(spec_with(minRequests=500), 150, 0, None, measured_at=NOW)
    assert results[0].verdict == Verdict.SUCCESSFUL and results[0].samples == 150


def test_warm_up_skips_relative_thresholds_and_judges_the_prompts() -> None:
    prompts = [{"prompt": "Refund?", "expect": {"contains": "refund"}}]
    spec = spec_with(
        metrics=[{"name": "latencyP95", "maxRelativeToStable": 1.2}], evaluationPrompts=prompts
    )
    results = judge_warmup(spec, 10, 0, 0.0, measured_at=NOW)
    assert [(r.metric, r.verdict) for r in results] == [("evaluationPassRate", Verdict.FAILED)]


def test_warm_up_with_every_request_failing_fails_even_without_an_error_metric() -> None:
    spec = spec_with(metrics=[])
    assert judge_warmup(spec, 10, 9, None, measured_at=NOW) == []
    failed = judge_warmup(spec, 10, 10, None, measured_at=NOW)
    assert [r.verdict for r in failed] == [Verdict.FAILED]


def test_evaluation_prompts_imply_a_full_pass_rate_check() -> None:
    prompts = [{"prompt": "Refund?", "expect": {"contains": "refund"}}]
    names = [(m.name, m.min) for m in spec_with(evaluationPrompts=prompts).effective_metrics()]
    assert ("evaluationPassRate", 1.0) in names
    assert all(m.name != "evaluationPassRate" for m in RolloutSpec().effective_metrics())
