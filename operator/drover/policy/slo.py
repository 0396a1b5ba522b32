"""Policy layer: SLO mode of the autoscaler, the load to plan for and the headroom to keep.

Pure. `plan_slo` turns a stated service level (`spec.autoscaling.slo`: a time to first token and
the share of requests that must meet it) into what `decide_replicas` scales by: the in-flight
total to plan for and the per-replica target to plan it against, with a sentence saying why.
The headroom comes from what the autoscaler observes, not from the user:

- arrival burstiness: the plan covers the *peak* of the short-window (panic window) in-flight
  total over a planning span when it exceeds the steady plan, so a service whose load comes in
  bursts keeps the slots its last burst needed;
- queueing: the steady plan is square-root staffing (Halfin and Whitt, 1981), mean in-flight +
  beta x sqrt(mean) slots, with beta chosen so that about (1 - attainment) of requests would wait
  longer than ttftSeconds for a slot in an M/M/c queue (how long a request holds a slot comes
  from Little's law: mean in-flight over the arrival rate); a small service thus keeps
  relatively more spare slots than a large one, and a tight TTFT more than a loose one;
- replica start-up: the planning span is two observed start-ups (the time from ordering replicas
  to their serving, timed from the ready count and kept in status), since load that arrives
  while a replica starts must be carried by those already up;
- measured attainment: over `slo.windowSeconds`, at most once per half window (a miss stays in
  the window for its whole length, so one burst can count twice: that errs towards the SLO; a
  whole window between adjustments learnt too slowly to meet 99% on the benchmark's burst
  variants within the hour): a shortfall multiplies a learnt headroom on the steady plan (x1.5
  at most) and doubles the span (bursts further apart than it); while half the error budget
  stays unspent both are lowered (x0.9, /1.25), never below the plan itself.

Taken from NVIDIA Dynamo's SLA planner: state the service level (TTFT) rather than a utilization,
and correct the capacity model with a factor learnt from the latency actually observed (Dynamo's
"correction factor", actual / expected TTFT, applied to its profiled per-replica throughput). Not
taken: its load predictors (ARIMA, Prophet) and pre-deployment profiling; here a replica's
capacity is the engine's `runtime.maxNumSeqs`, which the spec already states. Taken from llm-d
(its workload variant autoscaler's saturation analyzer and the HPA/KEDA path on the endpoint
picker's metrics): scale on saturation signals that lead latency (requests in flight and queued
against the engine's slots), never on GPU utilization, and keep spare capacity above the current
load. The HPA machinery around it (tolerance, stabilization, rate limits, panic, scale to zero)
is unchanged; see `drover.policy.autoscale`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from drover.api.autoscaling import AutoscalingSpec
from drover.api.slo import SloSpec, SloStatus
from drover.policy.sequential import Histogram

__all__ = [
    "DEFAULT_STARTUP_SECONDS",
    "MAX_HEADROOM",
    "SloPlan",
    "attainment_of",
    "plan_slo",
    "planning_span_seconds",
    "staffing_beta",
]

# Assumed replica start-up (weights loaded, engine warm) until one has been observed.
DEFAULT_STARTUP_SECONDS = 120.0
MAX_HEADROOM = 4.0
# The longest planning span learnt: the peak of the last hour.
MAX_SPAN_SECONDS = 3600
# Raise the headroom by this fraction per error budget missed, at most x1.5 per adjustment (a
# burst that broke the SLO once will break it again); lower it by this fraction per adjustment
# while attainment keeps half the budget unspent. Adjustments are half a window apart.
_RAISE, _MAX_RAISE = 0.5, 1.5
_LOWER = 0.1


def _base_span(spec: AutoscalingSpec, startup: float | None) -> int:
    """Two replica start-ups, at least the autoscaling window."""
    startup = DEFAULT_STARTUP_SECONDS if startup is None else startup
    return min(max(spec.window_seconds, math.ceil(2 * startup)), MAX_SPAN_SECONDS)


def planning_span_seconds(spec: AutoscalingSpec, status: SloStatus | None) -> int:
    """How far back the peak in-flight total is read: the learnt span, else two replica
    start-ups (at least the autoscaling window). The handler and the benchmark query the peak
    over this span."""
    if status is not None and status.span_seconds is not None:
        return status.span_seconds
    return _base_span(spec, status.startup_seconds if status else None)


def _wait_probability(beta: float) -> float:
    """Halfin-Whitt: the probability that an arrival finds every slot busy at beta."""
    phi = math.exp(-beta * beta / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(beta / math.sqrt(2)))
    return 1 / (1 + beta * cdf / phi)


def staffing_beta(attainment: float, decay: float = 0.0) -> float:
    """The smallest square-root staffing beta at which about 1 - attainment of arrivals wait
    longer than the TTFT bound: P(wait) x exp(-beta x decay), where `decay` is sqrt(mean load)
    x ttftSeconds / the seconds a request holds a slot (how fast a queue drains, per unit of
    beta, in an M/M/c queue). Decay 0: the beta at which that share waits at all."""
    allowed = 1 - attainment
    lo, hi = 0.0, 6.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _wait_probability(mid) * math.exp(-mid * decay) > allowed:
            lo = mid
        else:
            hi = mid
    return hi


def attainment_of(histogram: Histogram | None, threshold: float) -> tuple[float | None, float]:
    """(share of a TTFT histogram's observations at or below `threshold`, how many), inside a
    bucket interpolated as histogram_quantile does. None: no observations."""
    if histogram is None or histogram.count <= 0:
        return None, 0.0
    return 1 - histogram.above(threshold) / histogram.count, histogram.count


@dataclass(frozen=True)
class SloPlan:
    """What `decide_replicas` scales by in SLO mode: plan `load` at `target` per replica."""

    load: float
    target: float
    why: str
    status: SloStatus
    change: str = ""  # what was learnt this time ("; raised headroom ..."), also inside `why`


def _track_startup(
    prev: SloStatus | None, current: int, ready: int | None, now: datetime
) -> tuple[float | None, datetime | None]:
    """(observed start-up seconds, starting since): a start-up is timed from the first
    decision that sees ordered replicas not yet ready to the first that sees them all ready."""
    startup = prev.startup_seconds if prev else None
    since = prev.starting_since if prev else None
    if ready is None:
        return startup, since
    if ready < current:
        return startup, since or now
    if since is not None:
        startup = (now - since).total_seconds()
    return startup, None


@dataclass(frozen=True)
class _Learnt:
    headroom: float
    span: int | None  # None: the base span, which follows the observed start-up
    last_adjust: datetime | None
    change: str


def _adjust(
    slo: SloSpec,
    prev: SloStatus | None,
    base_span: int,
    attainment: float | None,
    requests: float,
    now: datetime,
    starting_now: datetime | None = None,
) -> _Learnt:
    """Learn from the measured attainment: on a shortfall remember peaks twice as long and,
    unless replicas were starting within the window, raise the headroom; while well met, forget
    faster and lower it, never below the plan. A shortfall while replicas start is a burst that
    came faster than a start-up: what helps is having the replicas up when the next one comes
    (the span), not a multiple of the load once it is there (the headroom, which on the
    benchmark's Markov-modulated traces then held 1.3-1.6x static provisioning at the peak)."""
    headroom = prev.headroom if prev else 1.0
    learnt_span = prev.span_seconds if prev else None
    span = max(learnt_span or 0, base_span)
    last = prev.last_adjust_time if prev else None
    same = _Learnt(headroom, learnt_span if learnt_span and learnt_span > base_span else None,
                   last, "")  # fmt: skip
    budget = 1 - slo.attainment
    if attainment is None or requests < 2 / budget:
        return same  # too few requests for the attainment to mean anything
    # The last change needs time to show in the window; misses stay in it for its whole length.
    if last is not None and now - last < timedelta(seconds=slo.window_seconds / 2):
        return same
    shortfall = (slo.attainment - attainment) / budget
    if shortfall > 0:
        started = starting_now or (prev.last_starting_time if prev else None)
        starting = started is not None and now - started < timedelta(seconds=slo.window_seconds)
        raised = headroom * min(1 + _RAISE * shortfall, _MAX_RAISE)
        new_h = headroom if starting else min(raised, MAX_HEADROOM)
        new_span = min(span * 2, MAX_SPAN_SECONDS)
    elif attainment >= slo.attainment + budget / 2:
        new_h = max(headroom * (1 - _LOWER), 1.0)
        new_span = max(round(span / 1.25), base_span)
    else:
        return same
    if (new_h, new_span) == (headroom, span):
        return same
    verb = "raised" if new_h > headroom or new_span > span else "lowered"
    return _Learnt(
        new_h, new_span if new_span > base_span else None, now,
        f"; {verb} headroom {headroom:.2f}→{new_h:.2f}, span {span}s→{new_span}s",
    )  # fmt: skip


def plan_slo(
    slo: SloSpec,
    spec: AutoscalingSpec,
    total: float,
    peak: float | None,
    attainment: float | None,
    requests: float | None,
    capacity: int,
    current: int,
    ready: int | None,
    prev: SloStatus | None,
    now: datetime,
) -> SloPlan:
    """Plan SLO mode's load and target from the mean in-flight `total` over the window, its
    `peak` over the planning span (None: use the mean), the measured `attainment` of
    `slo.ttftSeconds` over `requests` requests, and `capacity` sequence slots per replica."""
    startup, since = _track_startup(prev, current, ready, now)
    span = planning_span_seconds(spec, prev)  # what `peak` was read over
    learnt = _adjust(slo, prev, _base_span(spec, startup), attainment, requests or 0.0, now, since)
    headroom, change = learnt.headroom, learnt.change
    top = max(total, peak if peak is not None else total)
    # Little's law: the seconds a request holds a slot (queueing included) are the mean load
    # over the arrival rate, read from the TTFT histogram's count. Unknown: plan for no wait.
    rate = (requests or 0.0) / slo.window_seconds
    hold = total / rate if rate > 0 and total > 0 else None
    decay = math.sqrt(total) * slo.ttft_seconds / hold if hold else 0.0
    beta = staffing_beta(slo.attainment, decay)
    # The headroom scales the steady plan only: the peak is a burst already seen, in full.
    staffed = (total + beta * math.sqrt(total)) * headroom
    load = max(staffed, top)
    target = float(capacity)
    basis = (
        f"in-flight peak {top:.1f} over {span}s ({top / max(total, 1e-9):.1f}x the mean)"
        if top > staffed
        else f"(in-flight {total:.1f} + {beta:.2f}√ for queueing) x headroom {headroom:.2f}"
    )
    measured = (
        f"{attainment:.2%} within {slo.ttft_seconds:g}s over {requests:.0f} requests"
        if attainment is not None and requests
        else "no TTFT data yet"
    )
    why = (
        f"SLO {slo.attainment:.2%} within {slo.ttft_seconds:g}s ({measured}): {basis} = "
        f"{load:.1f} slots{change}, {capacity} per replica"
    )
    seen_starting = now if since is not None else (prev.last_starting_time if prev else None)
    status = SloStatus(
        attainment=attainment,
        requests=requests,
        headroom=headroom,
        span_seconds=learnt.span,
        last_adjust_time=learnt.last_adjust,
        peak=top,
        mean=total,
        startup_seconds=startup,
        starting_since=since,
        last_starting_time=seen_starting,
    )
    return SloPlan(load=load, target=target, why=why, status=status, change=change)
