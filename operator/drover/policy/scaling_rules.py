"""Policy layer: the scaling rules the autoscaler borrows from HPA and Knative, pure.

HPA's per-period step limits (`rate_limit`, counted from the decisions kept in status) and its
stabilization windows (`stabilized`), and Knative KPA's panic mode (`panic_window`). Called by
`drover.policy.autoscale.decide_replicas`.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from drover.api.autoscaling import AutoscalingSpec, AutoscalingStatus, ScaleDownRules, ScaleUpRules
from drover.policy.load import LoadSnapshot, load_total

__all__ = [
    "changed_in_period",
    "panic_window",
    "rate_limit",
    "replicas_text",
    "stabilized",
    "step_limit",
]


def replicas_text(n: int) -> str:
    """`1 replica`, `2 replicas`: how reasons count replicas."""
    return f"{n} replica" if n == 1 else f"{n} replicas"


def changed_in_period(
    status: AutoscalingStatus | None, now: datetime, period: int, up: bool
) -> int:
    """Replicas added (up) or removed (down, negative) in the current rate-limit period."""
    if status is None:
        return 0
    cutoff = now - timedelta(seconds=period)
    return sum(
        rec.to - rec.from_
        for rec in status.history
        if rec.time > cutoff and rec.to != rec.from_ and (rec.to > rec.from_) == up
    )


def step_limit(rules: ScaleUpRules | ScaleDownRules, start: int, up: bool) -> int:
    pct = rules.max_step_percent / 100
    if up:
        limits = [math.ceil(max(start, 1) * (1 + pct))]
        if rules.max_step_replicas is not None:
            limits.append(start + rules.max_step_replicas)
        return max(limits)
    limits = [int(start * (1 - pct))]
    if rules.max_step_replicas is not None:
        limits.append(start - rules.max_step_replicas)
    return min(limits)


def rate_limit(
    spec: AutoscalingSpec,
    status: AutoscalingStatus | None,
    now: datetime,
    current: int,
    ready: int | None,
    desired: int,
) -> tuple[int, str]:
    """Clamp a change to the per-period step limit; the suffix says so when it bites."""
    up = desired > current
    rules: ScaleUpRules | ScaleDownRules = spec.scale_up if up else spec.scale_down
    # HPA's way: the period's start is the current count with this period's changes undone.
    start = current - changed_in_period(status, now, rules.period_seconds, up)
    serving = 0 if ready is None else ready
    starting = up and 0 < serving < start
    if starting:
        # While replicas start, step from the ready ones: the queue that builds while they
        # start is load they will take, and must not order the same capacity twice. (With no
        # replica ready, e.g. waking from zero or an unknown count, HPA's rule alone applies.)
        start = serving
    limit = step_limit(rules, start, up)
    if up and desired > limit:
        if starting:
            why = f"{replicas_text(current - serving)} still starting, scaleUp allows {limit}"
        else:
            why = f"scaleUp allows {limit} per {rules.period_seconds}s"
        return max(limit, current), f" (limited from {desired}: {why})"
    if not up and desired < limit:
        return min(limit, current), (
            f" (limited from {desired}: scaleDown allows {limit} per {rules.period_seconds}s)"
        )
    return desired, ""


def panic_window(
    snapshot: LoadSnapshot,
    spec: AutoscalingSpec,
    target: float,
    total: float,
    current: int,
    panic_until: datetime | None,
    now: datetime,
) -> tuple[float, bool, datetime | None]:
    """Knative's KPA panic: (burst load, surge now?, panic end or None when not panicking).

    A surge is the short-window load at or above thresholdMultiplier x target per replica; panic
    lasts until a whole `windowSeconds` has passed without one."""
    burst = load_total(snapshot, burst=True)
    burst = total if burst is None else burst
    surge = burst >= spec.panic.threshold_multiplier * target * current
    if surge:
        panic_until = now + timedelta(seconds=spec.window_seconds)
    if panic_until is not None and not surge and now >= panic_until:
        panic_until = None
    return burst, surge, panic_until


def stabilized(current: int, rec: int, window_up: list[int], window_down: list[int]) -> int:
    """HPA's stabilization: up to the lowest recommendation of the up window, down to the
    highest of the down window, else stay."""
    up_rec = min([rec, *window_up])
    down_rec = max([rec, *window_down])
    if current < up_rec:
        return up_rec
    if current > down_rec:
        return down_rec
    return current
