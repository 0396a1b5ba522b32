"""Policy layer: the drift test — recent prompts against the stable version's reference window.

The test is the population stability index (PSI) over a histogram's buckets:

    PSI = sum_i (q_i - p_i) * ln(q_i / p_i)

with p the reference window's share of prompts per bucket and q the recent window's, each share
smoothed by half a prompt per bucket so an empty bucket does not make it infinite. PSI is the
symmetrised Kullback-Leibler divergence of the two binned distributions; the usual reading is
below 0.1 no shift, 0.1 to 0.2 moderate, above 0.2 significant (the default threshold). It needs
no assumption about the shape of the distribution, works on the buckets Prometheus already
keeps, and costs one query per window.

Each signal's reference is captured once per stable version: the first window of
`drift.windowSeconds` that holds `minSamples` prompts. A window with fewer prompts says "not yet",
never "no drift": on a handful of prompts PSI is noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from drover.api.drift import DriftSignal, DriftSpec, DriftStatus, ReferenceWindow
from drover.api.reasons import DriftReason
from drover.policy.conditions import Cond
from drover.policy.events import Event
from drover.policy.sequential import Histogram

__all__ = [
    "CONDITION",
    "INF",
    "DriftDecision",
    "SignalResult",
    "decide_drift",
    "histogram_of_wire",
    "psi",
    "wire_of_histogram",
]

CONDITION = "DriftDetected"
INF = 1e308  # +Inf as JSON can hold it
SMOOTHING = 0.5  # prompts added to every bucket of both windows


def bucket_counts(histogram: Histogram, bounds: Sequence[float]) -> list[float]:
    """Observations per bucket (not cumulative) at `bounds` (ascending, the last +Inf): a bound
    the histogram lacks gets the cumulative count of its nearest lower bound."""
    out, below = [], 0.0
    for bound in bounds:
        cumulative = max((c for le, c in histogram.buckets if le <= bound), default=0.0)
        out.append(max(cumulative - below, 0.0))
        below = max(cumulative, below)
    return out


def psi(reference: Histogram, recent: Histogram) -> float:
    """The population stability index of `recent` against `reference` (see the module)."""
    bounds = sorted({le for le, _ in reference.buckets} | {le for le, _ in recent.buckets})
    ref, now = bucket_counts(reference, bounds), bucket_counts(recent, bounds)
    ref_total = sum(ref) + SMOOTHING * len(bounds)
    now_total = sum(now) + SMOOTHING * len(bounds)
    total = 0.0
    for r, n in zip(ref, now, strict=True):
        p, q = (r + SMOOTHING) / ref_total, (n + SMOOTHING) / now_total
        total += (q - p) * math.log(q / p)
    return total


def wire_of_histogram(histogram: Histogram) -> list[list[float]]:
    return [[INF if math.isinf(le) else le, count] for le, count in histogram.buckets]


def histogram_of_wire(pairs: Sequence[Sequence[float]]) -> Histogram:
    return Histogram.of([(math.inf if le >= INF else le, count) for le, count in pairs])


@dataclass(frozen=True)
class SignalResult:
    """The test of one signal: PSI (None while either window has too few prompts)."""

    signal: DriftSignal
    reference_samples: float = 0.0
    recent_samples: float = 0.0
    psi: float | None = None
    drifted: bool | None = None


@dataclass(frozen=True)
class DriftDecision:
    status: DriftStatus
    condition: Cond
    event: Event | None
    results: tuple[SignalResult, ...] = ()


def _reference(
    previous: DriftStatus | None,
    version: str,
    recent: Mapping[DriftSignal, Histogram | None],
    spec: DriftSpec,
) -> ReferenceWindow:
    """The stable version's reference, with any signal first reaching minSamples captured."""
    old = previous.reference if previous else None
    ref = (
        old.model_copy(deep=True)
        if old is not None and old.version == version
        else ReferenceWindow(version=version)
    )
    for signal, histogram in recent.items():
        if signal.value in ref.buckets or histogram is None:
            continue
        if histogram.count >= spec.min_samples:
            ref.buckets[signal.value] = wire_of_histogram(histogram)
    return ref


def _test(
    signal: DriftSignal, reference: ReferenceWindow, recent: Histogram | None, spec: DriftSpec
) -> SignalResult:
    stored = reference.buckets.get(signal.value)
    recent_n = recent.count if recent is not None else 0.0
    if stored is None:
        return SignalResult(signal, recent_samples=recent_n)
    ref = histogram_of_wire(stored)
    if recent is None or recent_n < spec.min_samples:
        return SignalResult(signal, ref.count, recent_n)
    value = round(psi(ref, recent), 4)
    return SignalResult(signal, ref.count, recent_n, value, value > spec.threshold)


def _condition(
    results: Sequence[SignalResult], spec: DriftSpec, failure: str | None
) -> tuple[Cond, str]:
    """The DriftDetected condition of these results, and its message."""
    if failure is not None:
        message = f"the drift test has no metrics: {failure}"
        return Cond(CONDITION, None, DriftReason.DRIFT_METRICS_UNAVAILABLE, message), message
    tested = [r for r in results if r.drifted is not None]
    described = "; ".join(
        f"{r.signal.value} PSI {r.psi:.3f} over {r.recent_samples:.0f} prompts "
        f"({'>' if r.drifted else '<='} {spec.threshold:g})"
        for r in tested
    )
    if any(r.drifted for r in tested):
        return Cond(CONDITION, True, DriftReason.DRIFT_DETECTED, described), described
    if tested:
        return Cond(CONDITION, False, DriftReason.NO_DRIFT, described), described
    if not any(r.reference_samples for r in results):
        have = max((r.recent_samples for r in results), default=0.0)
        message = (
            f"collecting the reference window: {have:.0f} of {spec.min_samples} prompts in the "
            f"last {spec.window_seconds}s"
        )
        return Cond(CONDITION, None, DriftReason.COLLECTING_REFERENCE, message), message
    have = max((r.recent_samples for r in results), default=0.0)
    message = (
        f"not yet: {have:.0f} of {spec.min_samples} prompts in the last {spec.window_seconds}s"
    )
    return Cond(CONDITION, None, DriftReason.NOT_ENOUGH_SAMPLES, message), message


def decide_drift(
    spec: DriftSpec,
    previous: DriftStatus | None,
    version: str,
    recent: Mapping[DriftSignal, Histogram | None],
    now: datetime,
    *,
    failure: str | None = None,
) -> DriftDecision:
    """Test each signal of `recent` (the last window's histograms of the stable `version`; the
    signals the service has) against its reference; capture references not yet captured.
    `failure` (Prometheus gave no answer) holds the reference and the last verdict."""
    if failure is not None:
        kept = previous or DriftStatus()
        cond, message = _condition([], spec, failure)
        status = kept.model_copy(update={"last_check_time": now, "message": message})
        return DriftDecision(status, cond, None)
    reference = _reference(previous, version, recent, spec)
    results = [_test(signal, reference, recent[signal], spec) for signal in recent]
    cond, message = _condition(results, spec, None)
    detected = cond.status is True
    was = bool(previous and previous.detected and previous.reference is not None
               and previous.reference.version == version)  # fmt: skip
    event = None
    if detected and not was:
        event = Event("Warning", "DriftDetected", f"version {version}: {message}")
    elif was and cond.status is False:
        event = Event("Normal", "DriftResolved", f"version {version}: {message}")
    status = DriftStatus(
        reference=reference,
        last_check_time=now,
        detected=detected,
        message=message,
        psi={r.signal.value: r.psi for r in results if r.psi is not None},
    )
    return DriftDecision(status, cond, event, tuple(results))
