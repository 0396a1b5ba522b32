"""The drift test (drover.policy.drift): PSI over histogram buckets, a stated threshold (0.2), and
"not yet" below minSamples prompts in either window."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest

from drover.api.drift import DriftSignal, DriftSpec, DriftStatus
from drover.policy.drift import decide_drift, histogram_of_wire, psi, wire_of_histogram
from drover.policy.sequential import Histogram

BOUNDS = [16, 32, 64, 128, 256, 512, 1024]
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LENGTH = DriftSignal.PROMPT_LENGTH
SPEC = DriftSpec(threshold=0.2, minSamples=100, windowSeconds=600)


def lengths(n: int, mean: float, seed: int = 0) -> Histogram:
    """`n` prompt lengths drawn log-normally around `mean` tokens, as the router's histogram."""
    rng = random.Random(seed)
    return Histogram.from_samples(
        BOUNDS, [rng.lognormvariate(math.log(mean), 0.5) for _ in range(n)]
    )


def psi_by_hand(p: list[float], q: list[float]) -> float:
    return sum((b - a) * math.log(b / a) for a, b in zip(p, q, strict=True))


def test_psi_is_the_textbook_formula_on_smoothed_bucket_shares() -> None:
    # Two buckets and +Inf: reference 50/50/0, recent 20/80/0; each bucket gets half a prompt.
    ref = Histogram.of([(10, 50), (20, 100), (math.inf, 100)])
    now = Histogram.of([(10, 20), (20, 100), (math.inf, 100)])
    p = [50.5 / 101.5, 50.5 / 101.5, 0.5 / 101.5]
    q = [20.5 / 101.5, 80.5 / 101.5, 0.5 / 101.5]
    assert psi(ref, now) == pytest.approx(psi_by_hand(p, q))
    assert psi(ref, ref) == 0.0
    assert psi(ref, now) == pytest.approx(psi(now, ref))  # symmetric


@pytest.mark.parametrize(
    ("reference", "recent", "drifted"),
    [
        (lengths(2000, 60, seed=1), lengths(2000, 60, seed=2), False),  # same distribution
        (lengths(2000, 60, seed=1), lengths(300, 60, seed=3), False),  # fewer, same shape
        (lengths(2000, 60, seed=1), lengths(2000, 70, seed=2), False),  # a small shift
        (lengths(2000, 60, seed=1), lengths(2000, 240, seed=2), True),  # 4x longer prompts
        (lengths(2000, 60, seed=1), lengths(2000, 15, seed=2), True),  # 4x shorter
    ],
    ids=["same", "same-fewer", "small-shift", "longer", "shorter"],
)
def test_psi_crosses_0_2_for_a_real_shift_only(reference, recent, drifted) -> None:
    assert (psi(reference, recent) > 0.2) is drifted


def decide(previous: DriftStatus | None, recent: Histogram | None, version: str = "v1"):
    return decide_drift(SPEC, previous, version, {LENGTH: recent}, NOW)


@pytest.mark.parametrize(
    ("samples", "reason"),
    [(0, "CollectingReference"), (99, "CollectingReference"), (100, "NoDrift")],
)
def test_the_reference_is_captured_once_it_holds_min_samples(samples, reason) -> None:
    decision = decide(None, lengths(samples, 60) if samples else None)
    assert decision.condition.reason == reason
    captured = decision.status.reference
    assert captured is not None and captured.version == "v1"
    assert (LENGTH.value in captured.buckets) is (samples >= 100)
    if samples < 100:
        assert decision.condition.status is None
        assert f"{samples} of 100 prompts in the last 600s" in decision.condition.message


def test_a_sparse_recent_window_says_not_yet_never_no_drift() -> None:
    reference = decide(None, lengths(500, 60)).status
    decision = decide(reference, lengths(40, 400))  # shifted, but only 40 prompts
    assert decision.condition.status is None
    assert decision.condition.reason == "NotEnoughSamples"
    assert decision.status.psi == {} and decision.event is None


def test_drift_sets_the_condition_and_one_event_then_resolves() -> None:
    reference = decide(None, lengths(1000, 60, seed=1)).status
    drifted = decide(reference, lengths(1000, 240, seed=2))
    assert drifted.condition.status is True and drifted.condition.reason == "DriftDetected"
    assert drifted.status.detected and drifted.status.psi[LENGTH.value] > 0.2
    assert drifted.event is not None and drifted.event.type == "Warning"
    assert drifted.condition.message.startswith("promptLength PSI ")
    assert "over 1000 prompts (> 0.2)" in drifted.condition.message
    # The reference stays the first window's: it is not replaced by the drifted one.
    assert drifted.status.reference == reference.reference
    again = decide(drifted.status, lengths(1000, 240, seed=3))
    assert again.status.detected and again.event is None  # no event while it lasts
    back = decide(again.status, lengths(1000, 60, seed=4))
    assert back.condition.reason == "NoDrift" and not back.status.detected
    assert back.event is not None and back.event.reason == "DriftResolved"


def test_a_new_stable_version_starts_a_new_reference() -> None:
    old = decide(decide(None, lengths(1000, 60)).status, lengths(1000, 240)).status
    assert old.detected
    fresh = decide(old, lengths(1000, 240, seed=5), version="v2")
    assert fresh.status.reference is not None and fresh.status.reference.version == "v2"
    assert fresh.condition.reason == "NoDrift"  # compared with its own first window
    assert fresh.event is None  # v1's drift is not v2's to resolve


def test_no_answer_from_prometheus_keeps_the_reference_and_says_why() -> None:
    reference = decide(None, lengths(500, 60)).status
    failed = decide_drift(SPEC, reference, "v1", {}, NOW, failure="Prometheus is unreachable")
    assert failed.condition.status is None
    assert failed.condition.reason == "DriftMetricsUnavailable"
    assert "Prometheus is unreachable" in failed.condition.message
    assert failed.status.reference == reference.reference


def test_the_stored_histogram_round_trips_through_json_with_inf() -> None:
    histogram = lengths(100, 60)
    wire = wire_of_histogram(histogram)
    assert all(math.isfinite(le) for le, _ in wire)
    assert histogram_of_wire(wire) == histogram
