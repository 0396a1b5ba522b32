"""A canary analysis that cannot read Prometheus holds the canary's step and weight: no blind
promotion or rollback, nothing counted toward failureLimit, whatever onInconclusive says, and the
window is measured again whole once Prometheus answers (issue #16, "Prometheus down during a
rollout"; the whole-stack check is tests/chaos/test_ray_faults_prometheus.py)."""

from __future__ import annotations

from tests.unit.policy.rollout_support import SPEC, P, at, at_step, results, tick

from drover.api.reasons import MetricsReason
from drover.api.rollout import Analysis, Evidence, MetricResult, Verdict
from drover.handlers.rollout_tick import unavailable
from drover.policy.analysis import AnalysisAction, decide_analysis
from drover.policy.metrics_health import MetricsProblem

DOWN = "Prometheus at http://127.0.0.1:9 is unreachable: [Errno 111] Connection refused"
STRICT = SPEC.model_copy(
    update={"analysis": Analysis(interval_seconds=30, failure_limit=0, on_inconclusive="rollback")}
)


def test_an_outage_holds_where_on_inconclusive_rollback_would_roll_back() -> None:
    s = tick(at_step(0), 50, spec=STRICT).status
    d = tick(
        s, 50, analysis=results(Verdict.INCONCLUSIVE, 50), spec=STRICT, metrics_unavailable=DOWN
    )
    assert d.status.phase == P.STEP and d.status.step == 0 and d.canary_weight == 5
    assert d.status.failures == 0 and d.status.inconclusives == 0
    assert d.status.reason.startswith("step 1/2: metrics unavailable, holding: Prometheus at")
    assert any(e.reason == "AnalysisInconclusive" and DOWN in e.message for e in d.events)


def test_an_outage_does_not_advance_a_canary_whose_other_metrics_pass() -> None:
    s = tick(at_step(0), 80).status  # past the step's pause: a success would advance
    measured = results(Verdict.SUCCESSFUL, 80) + results(Verdict.INCONCLUSIVE, 80, "latencyP95")
    d = tick(s, 80, analysis=measured, metrics_unavailable=DOWN)
    assert d.status.phase == P.STEP and d.status.step == 0 and d.canary_weight == 5


def test_the_window_seen_during_an_outage_is_measured_again_whole() -> None:
    s = tick(at_step(0), 50).status
    measured = results(Verdict.SUCCESSFUL, 50)
    measured[0].evidence = Evidence(canary_samples=7, log_likelihood_ratio=-1.0, windows=1)
    d = tick(s, 50, analysis=measured, metrics_unavailable=DOWN)
    assert d.status.window_started_at == at(20)  # the step's start: nothing skipped
    assert "errorRate" not in d.status.evidence  # nor counted twice later
    again = tick(d.status, 80)
    assert again.status.phase == P.ANALYSING and again.analysis_window_start == at(20)


def test_once_prometheus_answers_the_rollout_continues() -> None:
    s = tick(at_step(0), 50).status
    held = tick(s, 50, analysis=results(Verdict.INCONCLUSIVE, 50), metrics_unavailable=DOWN)
    s = tick(held.status, 80).status
    d = tick(s, 80, analysis=results(Verdict.SUCCESSFUL, 80))
    assert d.status.phase == P.STEP and d.status.step == 1 and d.canary_weight == 50


def test_a_metric_that_failed_on_real_data_still_rolls_back_during_an_outage() -> None:
    failed = results(Verdict.FAILED, 50) + results(Verdict.INCONCLUSIVE, 50, "latencyP95")
    verdict = decide_analysis(failed, 0, 0, 0, "hold", DOWN)
    assert verdict.action == AnalysisAction.ROLLBACK and not verdict.blind


def test_no_series_is_too_little_data_not_an_outage() -> None:
    empty = MetricsProblem(MetricsReason.NO_SERIES, "sum(x)", "errorRate of version b")
    down = MetricsProblem(MetricsReason.PROMETHEUS_UNREACHABLE, "sum(x)", DOWN)
    failed = MetricsProblem(MetricsReason.QUERY_FAILED, "sum(x)", "Prometheus query failed: bad")
    assert unavailable([empty]) is None and unavailable(None) is None
    assert unavailable([empty, down]) == DOWN
    assert unavailable([failed]) == "Prometheus query failed: bad"
    result = MetricResult(metric="errorRate", verdict=Verdict.INCONCLUSIVE, measured_at=at(0))
    assert decide_analysis([result], 0, 0, 0, "rollback", None).action == AnalysisAction.ROLLBACK
