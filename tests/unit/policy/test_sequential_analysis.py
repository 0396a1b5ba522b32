"""Unit tests of the sequential canary analysis (policy.sequential, policy.traffic.judge_metric)
with a fixed clock: sparse traffic is "not yet", clear regressions fail early, evidence adds up
from window to window through status and says what each verdict rests on."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from drover.api.rollout import AnalysisMetric, Evidence, MetricResult, RolloutStatus, Verdict
from drover.policy.sequential import Histogram, Sprt, regressed_rate
from drover.policy.traffic import Window, judge_metric, restart_evidence

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# The router's latency buckets (drover_workers.serve.metrics.LATENCY_BUCKETS): the R10 series,
# 1.25x apart, fine enough that a count against a limit is off by less than LIMIT_MARGIN.
R10 = (1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0)
BOUNDS = (*(round(m * 10.0**e, 6) for e in range(-3, 2) for m in R10), 60.0)
ERRORS = AnalysisMetric(name="errorRate", max=0.01)
LATENCY = AnalysisMetric(name="latencyP95", max_relative_to_stable=1.5)
ITL = AnalysisMetric(name="itlP95", max_relative_to_stable=1.5)
S, F, U = Verdict.SUCCESSFUL, Verdict.FAILED, Verdict.INCONCLUSIVE


def hist(samples: list[float]) -> Histogram:
    return Histogram.from_samples(BOUNDS, samples)


def spread(n: int, low: float = 0.15, high: float = 0.45) -> list[float]:
    """n latencies spread evenly over [low, high] (a stable version's shape)."""
    return [low + (high - low) * (i + 0.5) / n for i in range(n)]


def errors(n: float, k: float, prior: Evidence | None = None, need: int = 10) -> MetricResult:
    window = Window(canary_requests=n, canary_errors=k)
    return judge_metric(ERRORS, window, prior, need, measured_at=NOW)


# --- histograms: what Prometheus' histogram_quantile does ---------------------------------


@pytest.mark.parametrize(
    ("pairs", "q", "expected"),
    [
        ([(0.1, 0), (0.25, 50), (math.inf, 50)], 0.95, 0.2425),  # linear in (0.1, 0.25]
        ([(0.5, 0), (1.0, 50), (math.inf, 50)], 0.95, 0.975),
        ([(0.1, 10), (math.inf, 100)], 0.95, 0.1),  # in +Inf: the highest finite bound
        ([(0.1, 0), (math.inf, 0)], 0.95, None),  # no observation
        # increase() extrapolates each bucket alone: counts are made monotonic, in any order
        ([(0.5, 49.9), (0.1, 0), (0.25, 50), (math.inf, 50)], 0.5, 0.175),
    ],
)
def test_histogram_quantile_interpolates_as_prometheus(
    pairs: list[tuple[float, float]], q: float, expected: float | None
) -> None:
    assert Histogram.of(pairs).quantile(q) == (
        pytest.approx(expected) if isinstance(expected, float) else expected
    )


@pytest.mark.parametrize(
    ("x", "above"),
    [(0.0, 100.0), (0.05, 100.0), (0.175, 75.0), (0.25, 50.0), (5.0, 10.0), (6.0, 10.0)],
)
def test_histogram_counts_observations_above_a_cut(x: float, above: float) -> None:
    h = Histogram.of([(0.1, 0), (0.25, 50), (5.0, 90), (math.inf, 100)])
    assert h.above(x) == pytest.approx(above)


def test_histogram_from_samples_counts_as_a_prometheus_histogram() -> None:
    h = hist([0.07, 0.2, 0.2, 3.0, 9.0])
    assert h.count == 5 and h.above(5.0) == 1 and h.above(2.5) == 2


# --- the SPRT itself -------------------------------------------------------------------------


def test_wald_boundaries_follow_alpha_and_beta() -> None:
    sprt = Sprt(alpha=0.01, beta=0.05)
    assert sprt.reject_at == pytest.approx(math.log(0.95 / 0.01))
    assert sprt.accept_at == pytest.approx(math.log(0.05 / 0.99))


@pytest.mark.parametrize(("acceptable", "regressed"), [(0.01, 0.05), (0.05, 0.25), (0.3, 0.65)])
def test_the_regressed_rate_is_five_times_the_acceptable_one_at_most_halfway_to_one(
    acceptable: float, regressed: float
) -> None:
    assert regressed_rate(acceptable) == pytest.approx(regressed)


def test_one_event_where_none_is_acceptable_is_proof_and_stays_finite() -> None:
    sprt = Sprt()
    assert sprt.step(0.0, 5, 1, 0.0, regressed_rate(0.0)) == pytest.approx(sprt.reject_at)
    assert sprt.step(0.0, 500, 0, 0.0, regressed_rate(0.0)) < sprt.accept_at


# --- errorRate: table of windows and verdicts -------------------------------------------------


@pytest.mark.parametrize(
    ("requests", "failed", "verdict", "why"),
    [
        (5, 0, U, "only 5 canary requests, need 10 (minRequests)"),  # sparse: not yet
        (20, 0, U, "decides neither way"),  # enough for minRequests, not for the test
        (40, 1, U, "decides neither way"),  # one stray error is no verdict either way
        (120, 0, S, "passes"),
        (3, 3, F, "regressed"),  # a clear regression needs few requests
        (100, 7, F, "regressed"),
        (100, 4, U, "decides neither way"),  # 4%: between acceptable 1% and regressed 5%
    ],
)
def test_error_rate_waits_for_evidence_and_catches_a_clear_regression_early(
    requests: int, failed: int, verdict: Verdict, why: str
) -> None:
    r = errors(requests, failed)
    assert r.verdict == verdict, r.message
    assert why in r.message
    assert r.measured_at == NOW and r.samples == requests
    assert r.value == pytest.approx(failed / requests)


def test_sparse_windows_add_up_to_a_verdict() -> None:
    prior, verdicts = None, []
    for _ in range(12):  # twelve windows of 10 clean requests: a 1% step at ~17 req/s
        r = errors(10, 0, prior)
        prior, verdicts = r.evidence, [*verdicts, r.verdict]
    assert verdicts[:10] == [U] * 10 and verdicts[-1] == S
    assert prior is not None and prior.canary_samples == 120 and prior.windows == 12


def test_the_verdict_says_what_it_rests_on() -> None:
    r = errors(100, 7)
    ev = r.evidence
    assert ev is not None
    assert (ev.canary_samples, ev.canary_events, ev.h0, ev.h1) == (100, 7, 0.01, 0.05)
    expected = 7 * math.log(5) + 93 * math.log(0.95 / 0.99)
    assert ev.log_likelihood_ratio == pytest.approx(expected)
    assert ev.reject_at == pytest.approx(Sprt().reject_at)
    assert "errorRate 0.07 > max 0.01" in r.message
    assert "7 of 100 canary requests failed" in r.message
    assert f"ln LR {expected:.2f}: pass at -4.60, fail at 4.60; regressed" in r.message


def test_evidence_survives_the_status_round_trip_of_a_restart() -> None:
    first = errors(60, 0)
    status = RolloutStatus(evidence={"errorRate": first.evidence})  # type: ignore[dict-item]
    stored = RolloutStatus.model_validate(status.to_wire())
    again = errors(60, 0, stored.evidence["errorRate"])
    straight = errors(60, 0, first.evidence)
    assert again.verdict == straight.verdict == S
    assert again.evidence == straight.evidence


def test_relative_error_rate_compares_with_the_stable_rate_of_the_same_windows() -> None:
    relative = AnalysisMetric(name="errorRate", max_relative_to_stable=2.0)
    window = Window(canary_requests=200, canary_errors=20, stable_requests=20000, stable_errors=200)
    bad = judge_metric(relative, window, None, 10, measured_at=NOW)
    assert bad.verdict == F and bad.threshold == pytest.approx(0.02)
    ok = Window(canary_requests=400, canary_errors=4, stable_requests=40000, stable_errors=400)
    assert judge_metric(relative, ok, None, 10, measured_at=NOW).verdict == S
    no_stable = Window(canary_requests=10, canary_errors=0)
    assert judge_metric(relative, no_stable, None, 10, measured_at=NOW).verdict == U


# --- latency against the stable of the same window --------------------------------------------


@pytest.mark.parametrize(
    ("canary", "verdict"),
    [
        (spread(200), S),  # as fast as the stable
        ([x * 3 for x in spread(6)], F),  # 3x slower: 6 requests are enough
        ([x * 3 for x in spread(2)], U),  # 3x slower, but only 2 requests: not yet
        ([], U),  # no canary request in the window
    ],
)
def test_latency_is_judged_on_the_canary_requests_against_the_stable_quantile(
    canary: list[float], verdict: Verdict
) -> None:
    window = Window(canary=hist(canary), stable=hist(spread(2000)))
    r = judge_metric(LATENCY, window, None, 5, measured_at=NOW)
    assert r.verdict == verdict, r.message
    assert r.evidence is not None and r.evidence.stable_samples == 2000


def test_a_stable_window_too_small_for_its_quantile_is_not_counted() -> None:
    window = Window(canary=hist([3.0] * 10), stable=hist(spread(30)))
    r = judge_metric(LATENCY, window, None, 5, measured_at=NOW)
    assert r.verdict == U and "not counted" in r.message and r.evidence is None


def test_latency_evidence_adds_up_across_windows_until_a_slow_canary_fails() -> None:
    prior, verdicts = None, []
    for _ in range(3):  # one request a window, 3x slower than the stable's: beyond the limit
        window = Window(canary=hist([x * 3 for x in spread(1)]), stable=hist(spread(2000)))
        r = judge_metric(LATENCY, window, prior, 5, measured_at=NOW)
        prior, verdicts = r.evidence, [*verdicts, r.verdict]
    assert verdicts == [U, U, F]


def test_itl_passes_when_neither_version_streams_and_waits_once_one_does() -> None:
    empty = Window(canary=hist([]), stable=hist([]))
    none = judge_metric(ITL, empty, None, 5, measured_at=NOW)
    assert none.verdict == S and "nothing to judge" in none.message
    streamed = Window(canary=hist([]), stable=hist(spread(500)))
    assert judge_metric(ITL, streamed, None, 5, measured_at=NOW).verdict == U


def test_an_absolute_latency_limit_counts_the_requests_beyond_it() -> None:
    limit = AnalysisMetric(name="latencyP95", max_seconds=1.0)
    fast = judge_metric(limit, Window(canary=hist([0.2] * 100)), None, 5, measured_at=NOW)
    slow = judge_metric(limit, Window(canary=hist([2.0] * 10)), None, 5, measured_at=NOW)
    assert (fast.verdict, slow.verdict) == (S, F)
    assert fast.evidence is not None and fast.evidence.h0 == pytest.approx(0.05)


def test_a_new_step_drops_the_evidence_banked_below_the_pass_boundary() -> None:
    banked = errors(2000, 0).evidence
    assert banked is not None and banked.log_likelihood_ratio < banked.accept_at - 50
    rising = errors(10, 2, Evidence(log_likelihood_ratio=1.0, accept_at=-4.6, reject_at=4.6))
    assert rising.evidence is not None
    restarted = restart_evidence({"errorRate": banked, "latencyP95": rising.evidence})
    assert restarted["errorRate"].log_likelihood_ratio == pytest.approx(banked.accept_at)
    assert restarted["errorRate"].canary_samples == 2000  # the counts stay
    assert restarted["latencyP95"] == rising.evidence  # evidence against is kept


@pytest.mark.parametrize(
    ("slowdown", "verdict"),
    [
        (2.4, S),  # within a 3x limit (below 3 / 1.2): passes, however slow it looks
        (3.6, F),  # beyond the limit
    ],
)
def test_a_relative_latency_limit_is_the_line_the_test_draws(slowdown: float, verdict) -> None:
    """The e2e LoRA canary on CPUs was ~2.4x the base at p95 against a 3x limit, and an earlier
    test (counting against the stable's own p95) rolled it back as regressed."""
    three = AnalysisMetric(name="latencyP95", max_relative_to_stable=3.0)
    stable = spread(2000)
    window = Window(canary=hist([x * slowdown for x in spread(300)]), stable=hist(stable))
    r = judge_metric(three, window, None, 5, measured_at=NOW)
    assert r.verdict == verdict, r.message


def test_a_canary_within_its_limit_passes_in_the_router_buckets() -> None:
    """A canary 1.2x slower against a 1.5x limit, in the router's buckets (1.25x apart)."""
    window = Window(canary=hist([x * 1.2 for x in spread(300)]), stable=hist(spread(2000)))
    assert judge_metric(LATENCY, window, None, 5, measured_at=NOW).verdict == S
