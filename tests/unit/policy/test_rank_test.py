"""Unit tests of the relative latency test's power (policy.traffic's rank test at the stable's
quantile, with the limit's own tail as a cell) and of the warm-up's latency screen
(policy.analysis.judge_warmup with timings), with a fixed clock. The latencies are a
lognormal's quantiles (deterministic): the stable's inter-token gaps spread as decoding is."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from statistics import NormalDist

import pytest

from drover.api.rollout import AnalysisMetric, RolloutSpec, Verdict
from drover.policy.analysis import WarmupTimings, judge_warmup
from drover.policy.sequential import TIMING_BOUNDS, Histogram, Sprt, Tail
from drover.policy.traffic import Window, judge_metric

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ITL = AnalysisMetric(name="itlP95", max_relative_to_stable=1.5)
TTFT = AnalysisMetric(name="ttftP95", max_relative_to_stable=1.5)
S, F, U = Verdict.SUCCESSFUL, Verdict.FAILED, Verdict.INCONCLUSIVE


def gaps(n: int, slowdown: float = 1.0, sigma: float = 0.3) -> list[float]:
    """n inter-token gaps: the quantiles of a lognormal around 40 ms, `slowdown` times slower."""
    unit = NormalDist()
    return [0.04 * slowdown * math.exp(sigma * unit.inv_cdf((i + 0.5) / n)) for i in range(n)]


def hist(samples: list[float]) -> Histogram:
    return Histogram.from_samples(TIMING_BOUNDS, samples)


def judged(canary: list[float], metric: AnalysisMetric = ITL) -> Verdict:
    window = Window(canary=hist(canary), stable=hist(gaps(2000)))
    return judge_metric(metric, window, None, 10, measured_at=NOW).verdict


@pytest.mark.parametrize(
    ("slowdown", "n", "verdict"),
    [
        (1.5, 60, F),  # at the limit: 60 requests are enough (counted beyond it: ~150)
        (1.5, 20, U),  # ... 20 are not yet
        (3.0, 4, F),  # far beyond it: a few requests, each beyond the limit itself
        (1.0, 30, S),  # as fast as the stable
        (1.1, 40, S),  # 10% slower: good
        (1.2, 300, S),  # within the limit's margin (1.5 / 1.2 = 1.25): never failed
    ],
)
def test_the_rank_test_catches_a_slowdown_at_the_limit_on_tens_of_requests(
    slowdown: float, n: int, verdict: Verdict
) -> None:
    assert judged(gaps(n, slowdown)) == verdict


def test_a_limit_of_3_passes_a_canary_2_4x_slower() -> None:
    """The e2e LoRA canary measured ~2.4x its base against a 3x limit: an earlier rank test,
    whose acceptable canary was 1.4x for a 3x limit, rolled it back. Here h0 is 3 / 1.2."""
    three = AnalysisMetric(name="itlP95", max_relative_to_stable=3.0)
    assert judged(gaps(300, 2.4), three) == S
    assert judged(gaps(300, 3.6), three) == F


def test_the_three_cell_step_is_the_multinomial_log_likelihood_ratio() -> None:
    # 10 observations: 6 below the cut, 3 between the cut and the limit, 1 beyond the limit.
    h0, h1, t0, t1 = 0.2, 0.5, 0.01, 0.05
    got = Sprt().step(0.0, 10, 4, h0, h1, Tail(1, t0, t1))
    expected = 6 * math.log(0.5 / 0.8) + 3 * math.log(0.45 / 0.19) + math.log(5.0)
    assert got == pytest.approx(expected)
    assert Sprt().step(0.0, 10, 4, h0, h1) == pytest.approx(
        6 * math.log(0.5 / 0.8) + 4 * math.log(2.5)
    )


# --- the warm-up's screen: the same prompts on both versions, timed ------------------------


def timings(slowdown: float, n: int = 150, sigma: float = 0.3) -> WarmupTimings:
    return WarmupTimings(
        canary_ttft=tuple(x * 5 for x in gaps(n, slowdown, sigma)),
        stable_ttft=tuple(x * 5 for x in gaps(n, 1.0, sigma)),
        canary_itl=tuple(gaps(n, slowdown, sigma)),
        stable_itl=tuple(gaps(n, 1.0, sigma)),
    )


def screened(spec: RolloutSpec, t: WarmupTimings | None) -> list[tuple[str, Verdict]]:
    results = judge_warmup(spec, 150, 0, None, measured_at=NOW, timings=t)
    return [(r.metric, r.verdict) for r in results if r.metric != "errorRate"]


@pytest.mark.parametrize(
    ("slowdown", "expected"),
    [
        (1.5, [("ttftP95", F), ("itlP95", F)]),  # caught before any user request
        (3.0, [("ttftP95", F), ("itlP95", F)]),
        (1.0, []),  # as fast: nothing to say; the traffic steps decide the pass
        (1.1, []),
        (1.3, []),  # undecided, leaning faster: left to the traffic steps, not warmed again
    ],
)
def test_the_warm_up_screens_ttft_and_itl_against_the_stable(
    slowdown: float, expected: list[tuple[str, Verdict]]
) -> None:
    assert screened(RolloutSpec(), timings(slowdown)) == expected


def test_the_warm_up_screen_says_what_it_rests_on_and_skips_whole_answers() -> None:
    failed = judge_warmup(RolloutSpec(), 150, 0, None, measured_at=NOW, timings=timings(1.5))
    itl = next(r for r in failed if r.metric == "itlP95")
    assert itl.message.startswith("warm-up, the same prompts on both versions: itlP95")
    assert itl.evidence is not None and itl.evidence.canary_samples == 150
    # latencyP95 (whole answers) is never screened: two models answer at different lengths.
    assert not any(r.metric == "latencyP95" for r in failed)
    assert screened(RolloutSpec(), None) == []  # nothing timed (no stable yet)
    assert screened(RolloutSpec(), WarmupTimings()) == []


def test_a_warm_up_leaning_slower_starts_the_traffic_test_with_its_statistic() -> None:
    """1.4x slower (between the acceptable 1.25x and the limit 1.5x): the warm-up leaves the
    test undecided but leaning slower. It passes the warm-up (not warmed again), and its
    log-likelihood ratio, without its answers, is where the traffic test starts: the first
    traffic window fails a canary it alone would leave undecided."""
    results = judge_warmup(RolloutSpec(), 150, 0, None, measured_at=NOW, timings=timings(1.4))
    itl = next(r for r in results if r.metric == "itlP95")
    assert itl.verdict == S and itl.samples == 0
    assert itl.evidence is not None and 0 < itl.evidence.log_likelihood_ratio < 4.6
    assert itl.evidence.canary_samples == 0  # minRequests counts the users' requests only
    assert "carried into the traffic steps" in itl.message
    window = Window(canary=hist(gaps(20, 1.5)), stable=hist(gaps(2000)))
    alone = judge_metric(ITL, window, None, 10, measured_at=NOW)
    carried = judge_metric(ITL, window, itl.evidence, 10, measured_at=NOW)
    assert (alone.verdict, carried.verdict) == (U, F)
    assert carried.evidence is not None and carried.evidence.canary_samples == 20
