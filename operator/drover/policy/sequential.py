"""Policy layer: the statistics of the canary analysis, pure — histograms and Wald's SPRT.

`drover.policy.traffic` judges each metric with a sequential probability ratio test on
Bernoulli events (an error; a request beyond a latency cut): every analysis window adds its
counts to a log-likelihood ratio kept in status, so sparse traffic leaves the test undecided
("not yet") instead of guessing, and a clear regression crosses the upper boundary after a few
requests. Histograms are the Prometheus kind: cumulative counts per upper bound.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

# Wald's error probabilities. ALPHA: a canary exactly at the acceptable rate is rolled back at
# most this often (a good version is far below it, so far less often); BETA: a canary at the
# regressed rate passes at most this often. 1% each: rolling back a good version costs a retry
# by hand, passing a bad one costs users; the warm-up, which costs no user anything, is where a
# bad version most often meets its test, so BETA is kept as low as ALPHA.
ALPHA = 0.01
BETA = 0.01
# For a threshold stated as one rate (errorRate max, latency maxSeconds) the regressed rate is
# this multiple of it: with errorRate max 0.01, a version failing 5% of requests is the one the
# test is sized to catch.
REGRESSION_RATIO = 5.0
# A relative latency threshold r is the limit: a canary r times slower than the stable is the
# regression to catch, and one this margin below it (r / 1.2: 1.25x for 1.5, 2.5x for 3) is
# acceptable, so a canary within the limit stated is never rolled back for being near it.
LIMIT_MARGIN = 0.2
# The stable's quantile is the cut the canary's requests are counted against; estimated from
# fewer than this many tail observations (2 for a p95: 40 requests) it is too noisy to hold
# the canary to, and the window adds nothing to the test.
MIN_STABLE_TAIL = 2.0
# A relative latency test whose acceptable share beyond the limit (estimated from the stable's
# histogram) is above the regressed share over this multiple cannot tell the two apart in
# reasonable time; the acceptable share is then taken as the regressed one over this multiple.
MIN_TAIL_RATIO = 2.0

# Buckets for timings the operator takes itself (the warm-up's), as fine as the router's
# latency buckets: the R10 series, 1.25x apart, from 1 ms to 50 s, and 60 s.
_R10 = (1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0)
TIMING_BOUNDS = (
    *(round(m * 10.0**e, 6) for e in range(-3, 2) for m in _R10 if m * 10.0**e <= 50),
    60.0,
)

__all__ = [
    "ALPHA",
    "BETA",
    "LIMIT_MARGIN",
    "REGRESSION_RATIO",
    "TIMING_BOUNDS",
    "Histogram",
    "Sprt",
    "Tail",
    "regressed_rate",
]


@dataclass(frozen=True)
class Histogram:
    """Observations of one window by cumulative bucket: (upper bound, count at or below it),
    bounds ascending, the last one +Inf (as `sum by (le) (increase(x_bucket[w]))` answers)."""

    buckets: tuple[tuple[float, float], ...]

    @classmethod
    def of(cls, pairs: Sequence[tuple[float, float]]) -> Histogram:
        """From (le, count) pairs in any order; counts made monotonic (Prometheus' increase()
        extrapolates each bucket on its own, so a bucket can come out a hair below the last)."""
        ordered = sorted((float(le), max(float(c), 0.0)) for le, c in pairs)
        out: list[tuple[float, float]] = []
        for le, count in ordered:
            out.append((le, max(count, out[-1][1]) if out else count))
        return cls(tuple(out))

    @classmethod
    def from_samples(cls, bounds: Sequence[float], samples: Sequence[float]) -> Histogram:
        """What a Prometheus histogram with `bounds` records for `samples` (for simulations)."""
        values = sorted(samples)
        pairs = [(b, float(bisect.bisect_right(values, b))) for b in bounds]
        return cls.of([*pairs, (math.inf, float(len(values)))])

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def quantile(self, q: float) -> float | None:
        """Prometheus' histogram_quantile: linear within the bucket, the highest finite bound
        when the rank falls in +Inf, None without observations."""
        total = self.count
        if total <= 0 or len(self.buckets) < 2:
            return None
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for le, cum in self.buckets:
            if cum >= rank:
                if math.isinf(le):
                    return lower_bound
                if cum == lower_count:
                    return le
                return lower_bound + (le - lower_bound) * (rank - lower_count) / (cum - lower_count)
            lower_bound, lower_count = le, cum
        return lower_bound

    def above(self, x: float) -> float:
        """Observations above `x`, interpolated linearly within its bucket (the same
        assumption histogram_quantile makes); everything in +Inf is above any finite bound."""
        lower_bound, lower_count = 0.0, 0.0
        for le, cum in self.buckets:
            if math.isinf(le):
                break
            if x < le:
                share = max(x - lower_bound, 0.0) / (le - lower_bound)
                return self.count - (lower_count + share * (cum - lower_count))
            lower_bound, lower_count = le, cum
        return self.count - lower_count


def regressed_rate(acceptable: float) -> float:
    """The event rate the test is sized to catch for an acceptable rate stated by the user:
    REGRESSION_RATIO times it, at most halfway to 1; 1% when nothing is acceptable."""
    if acceptable <= 0:
        return 0.01
    return min(REGRESSION_RATIO * acceptable, (1.0 + acceptable) / 2.0)


@dataclass(frozen=True)
class Tail:
    """The events of a test that fall further out (beyond a latency limit, where the events are
    those beyond the stable's quantile), with their own probabilities under h0 and h1."""

    events: float
    h0: float
    h1: float


@dataclass(frozen=True)
class Sprt:
    """Wald's boundaries, and one window's step of the log-likelihood ratio."""

    alpha: float = ALPHA
    beta: float = BETA

    @property
    def accept_at(self) -> float:
        return math.log(self.beta / (1.0 - self.alpha))

    @property
    def reject_at(self) -> float:
        return math.log((1.0 - self.beta) / self.alpha)

    def step(
        self,
        statistic: float,
        samples: float,
        events: float,
        h0: float,
        h1: float,
        tail: Tail | None = None,
    ) -> float:
        """The statistic after `events` of `samples` Bernoulli observations (counts may be
        fractional: Prometheus extrapolates). With a `tail`, the events are split in two cells
        (those in the tail and the rest), a three-cell multinomial test."""
        if samples <= 0:
            return statistic
        if h1 <= h0:  # nothing worse is possible: any observation is acceptable
            return min(statistic, self.accept_at)
        events = min(max(events, 0.0), samples)
        if h0 <= 0.0:  # no event is acceptable: one is proof (kept finite for status' JSON)
            if events > 0:
                return max(statistic, self.reject_at)
            return statistic + samples * math.log1p(-h1)
        delta = (samples - events) * math.log((1.0 - h1) / (1.0 - h0))
        if tail is None or not 0.0 < tail.h0 < h0 or not tail.h1 < h1:
            return statistic + delta + events * math.log(h1 / h0)
        beyond = min(max(tail.events, 0.0), events)
        delta += beyond * math.log(tail.h1 / tail.h0)
        return statistic + delta + (events - beyond) * math.log((h1 - tail.h1) / (h0 - tail.h0))

    def restart(self, statistic: float) -> float:
        """The statistic a new traffic step starts from: what was banked below accept_at is
        dropped, so a regression that shows only at the higher weight needs no more evidence
        than at the first step (a CUSUM-style floor, applied once per step, not per window,
        so that within a step a chance cluster of slow requests is weighed against all the
        good evidence of the step)."""
        return max(statistic, self.accept_at)
