"""Policy layer: decide an InferenceService's replica count from its load, with the reason why.

Pure: `decide_replicas` reads a load snapshot, the autoscaling spec, the replica bounds and the
previous status, and returns the desired replicas, a reason sentence and the new status. All the
memory a decision needs lives in that status, so a restarted operator decides as if it never
stopped. With `spec.slo` the target and the load to plan for come from `drover.policy.slo`
instead of `spec.target`; everything else (tolerance, stabilization, rate limits, panic, scale to
zero) is the same. Called by the InferenceService autoscaling timer; used unchanged by
bench/autoscale.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from drover.api.autoscaling import (
    HISTORY_LIMIT,
    AutoscalingSignal,
    AutoscalingSpec,
    AutoscalingStatus,
    RecommendationRecord,
    ScaleDecisionRecord,
)
from drover.api.slo import SloStatus
from drover.policy._window import recommendations_in_window, record_recommendation
from drover.policy.load import LoadSnapshot, load_total
from drover.policy.scaling_rules import panic_window, rate_limit, replicas_text, stabilized
from drover.policy.slo import plan_slo

__all__ = ["ScaleDecision", "ScaleOutcome", "decide_replicas"]

_LABELS = {
    AutoscalingSignal.IN_FLIGHT_REQUESTS: "in-flight",
    AutoscalingSignal.QUEUE_DEPTH: "queue depth",
    AutoscalingSignal.TOKENS_PER_SECOND: "tokens/s",
    AutoscalingSignal.KV_CACHE_UTILIZATION: "KV-cache use",
    AutoscalingSignal.WAITING_REQUESTS: "engine waiting",
}


class ScaleOutcome(StrEnum):
    """What a decision did; the handler uses it as the event reason."""

    SCALED_UP = "ScaledUp"
    SCALED_DOWN = "ScaledDown"
    SCALED_TO_ZERO = "ScaledToZero"
    WOKE_UP = "WokeUp"
    HELD = "Held"
    METRICS_UNAVAILABLE = "MetricsUnavailable"


@dataclass(frozen=True)
class ScaleDecision:
    """The desired replica count, why, and the status to record (always; it carries memory)."""

    desired_replicas: int
    reason: str
    outcome: ScaleOutcome
    panic: bool
    status: AutoscalingStatus

    @property
    def changed(self) -> bool:
        return self.status.desired_replicas != self.status.current_replicas


def _fmt(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.1f}"


@dataclass(frozen=True)
class _Context:
    """What every step of one decision reads: the inputs, the current count and the bounds."""

    snapshot: LoadSnapshot
    spec: AutoscalingSpec
    prev: AutoscalingStatus | None
    now: datetime
    current: int
    floor: int
    ceiling: int

    @property
    def label(self) -> str:
        return _LABELS[self.snapshot.signal]

    @property
    def keep_seconds(self) -> int:
        """How long recommendations are kept: the longer stabilization window."""
        rules = self.spec
        return max(rules.scale_up.stabilization_seconds, rules.scale_down.stabilization_seconds)


@dataclass(frozen=True)
class _Memory:
    """What the status carries from one decision to the next."""

    panic_until: datetime | None
    idle_since: datetime | None
    recommendations: list[RecommendationRecord]
    history: list[ScaleDecisionRecord]
    last_decision: datetime | None
    slo: SloStatus | None


@dataclass(frozen=True)
class _Plan:
    """The load a recommendation plans for and the per-replica target it divides by.

    The mean against spec.target, or in SLO mode the peak plus queueing margin against the slots
    left by the learnt headroom (`why` and `learnt` then say so)."""

    load: float
    target: float
    why: str
    learnt: str
    slo: SloStatus | None


@dataclass(frozen=True)
class _Step:
    """One decision before it becomes a status: the count, the load recorded with it, and why."""

    desired: int
    value: float | None
    reason: str
    outcome: ScaleOutcome
    panicking: bool = False


def decide_replicas(
    snapshot: LoadSnapshot,
    spec: AutoscalingSpec,
    bounds: tuple[int, int],
    status: AutoscalingStatus | None,
    now: datetime,
    capacity: int | None = None,
) -> ScaleDecision:
    """Decide the replica count for `snapshot` under `spec` within `bounds` = (min, max).

    A min of 0 does not by itself allow zero replicas: only `scaleToZero.enabled` does, after
    `idleSeconds` of idle load, and never on missing data. `capacity` (sequence slots per
    replica, the engine's runtime.maxNumSeqs) is needed with `spec.slo`.
    """
    floor = max(bounds[0], 1)
    current = max(snapshot.current_replicas, 0)
    ctx = _Context(snapshot, spec, status, now, current, floor, max(bounds[1], floor))
    memory = _Memory(
        panic_until=status.panic_until if status else None,
        idle_since=None,
        recommendations=list(status.recommendations) if status else [],
        history=list(status.history) if status else [],
        last_decision=status.last_decision_time if status else None,
        slo=status.slo if status and spec.slo else None,
    )
    total = load_total(snapshot)
    if total is None:
        return _finish(ctx, _hold_without_data(ctx), memory)
    plan = _plan(ctx, total, capacity, memory.slo)
    idle = total <= spec.scale_to_zero.activation_threshold
    idle_since = (status.idle_since if status and status.idle_since else now) if idle else None
    memory = replace(memory, idle_since=idle_since, slo=plan.slo)
    if current == 0:
        return _decide_at_zero(ctx, total, plan, memory)
    return _decide_serving(ctx, total, plan, memory)


def _hold_without_data(ctx: _Context) -> _Step:
    """Missing data: hold; only bounds the user changed may still move the count."""
    current, floor, ceiling = ctx.current, ctx.floor, ctx.ceiling
    desired = current if current == 0 else min(max(current, floor), ceiling)
    reason = f"holding {replicas_text(current)}: no {ctx.snapshot.signal.value} data from metrics"
    if desired != current:
        reason = (
            f"replicas {current}→{desired}: no load data, moved into bounds [{floor}, {ceiling}]"
        )
    return _Step(desired, None, reason, ScaleOutcome.METRICS_UNAVAILABLE)


def _plan(ctx: _Context, total: float, capacity: int | None, slo: SloStatus | None) -> _Plan:
    spec, snapshot = ctx.spec, ctx.snapshot
    if spec.slo is None:
        assert spec.target is not None  # the spec's rule: exactly one of target or slo
        return _Plan(total, spec.target, "", "", None)
    if capacity is None:
        raise ValueError("decide_replicas needs capacity (runtime.maxNumSeqs) with spec.slo")
    plan = plan_slo(
        spec.slo,
        spec,
        total,
        snapshot.peak_total,
        snapshot.ttft_attainment,
        snapshot.ttft_requests,
        capacity,
        ctx.current,
        snapshot.ready_replicas,
        slo,
        ctx.now,
    )
    return _Plan(plan.load, plan.target, plan.why, plan.change, plan.status)


def _decide_at_zero(ctx: _Context, total: float, plan: _Plan, memory: _Memory) -> ScaleDecision:
    """At zero: wake on load above the activation threshold (or when zero is no longer allowed)."""
    zero, now = ctx.spec.scale_to_zero, ctx.now
    threshold = _fmt(zero.activation_threshold)
    if zero.enabled and memory.idle_since is not None:
        reason = (
            f"holding 0 replicas: total {ctx.label} {_fmt(total)} ≤ activation threshold "
            f"{threshold}"
        )
        held = replace(memory, panic_until=None, recommendations=[])
        return _finish(ctx, _Step(0, total, reason, ScaleOutcome.HELD), held)
    desired = min(max(math.ceil(plan.load / plan.target), ctx.floor), ctx.ceiling)
    reason = (
        f"replicas 0→{desired}: waking up, total {ctx.label} {_fmt(total)} > activation "
        f"threshold {threshold}"
        if zero.enabled
        else f"replicas 0→{desired}: below min {ctx.floor}"
    )
    recs = record_recommendation([], None, now, desired, ctx.keep_seconds)
    woken = replace(
        memory, panic_until=None, idle_since=None, recommendations=recs, last_decision=now
    )
    return _finish(ctx, _Step(desired, total, reason, ScaleOutcome.WOKE_UP), woken)


def _decide_serving(ctx: _Context, total: float, plan: _Plan, memory: _Memory) -> ScaleDecision:
    """Above zero: the HPA rule, panic, stabilization, scale to zero, rate limits and bounds."""
    spec, now, current = ctx.spec, ctx.now, ctx.current
    burst, surge, panic_until = panic_window(
        ctx.snapshot, spec, plan.target, total, current, memory.panic_until, now
    )
    per_replica = total / current
    ratio = plan.load / (current * plan.target)
    within = abs(ratio - 1) <= spec.tolerance
    if spec.slo is not None:
        # The plan already holds its margin: never sit below it, only the way down is banded.
        within = 1 - spec.tolerance <= ratio <= 1
    raw = current if within else math.ceil(plan.load / plan.target)
    rec = min(max(raw, ctx.floor), ctx.ceiling)
    recs = record_recommendation(
        memory.recommendations, memory.last_decision, now, rec, ctx.keep_seconds
    )
    decided = replace(memory, panic_until=panic_until, recommendations=recs, last_decision=now)
    zero = spec.scale_to_zero
    if zero.enabled and memory.idle_since is not None and panic_until is None:
        idle_for = (now - memory.idle_since).total_seconds()
        if idle_for >= zero.idle_seconds:
            reason = (
                f"replicas {current}→0: total {ctx.label} {_fmt(total)} ≤ "
                f"{_fmt(zero.activation_threshold)} for {idle_for:.0f}s ≥ idleSeconds "
                f"{zero.idle_seconds}"
            )
            step = _Step(0, per_replica, reason, ScaleOutcome.SCALED_TO_ZERO)
            return _finish(ctx, step, replace(decided, panic_until=None, recommendations=[]))

    cmp = "within" if within else (">" if ratio > 1 else "<")
    why = (
        f"{ctx.label} {_fmt(per_replica)} per replica {cmp} target {_fmt(plan.target)}"
        f" (tolerance {spec.tolerance:.0%})"
    )
    if plan.why:
        why = f"{plan.why}: {_fmt(plan.load / current)} per replica {cmp} {_fmt(plan.target)}"
    if panic_until is not None:
        desired, why = _desired_in_panic(ctx, plan.target, burst, surge, rec, panic_until, why)
    else:
        desired, why = _desired_stabilized(ctx, rec, memory, why)
    if plan.learnt and plan.learnt not in why:
        why += plan.learnt  # panic's reason replaced the plan's: still say what SLO mode learnt
    return _finish(ctx, _bounded(ctx, desired, raw, per_replica, why, panic_until), decided)


def _desired_in_panic(
    ctx: _Context,
    target: float,
    burst: float,
    surge: bool,
    rec: int,
    panic_until: datetime,
    why: str,
) -> tuple[int, str]:
    """Panic: no stabilization and no scale down (the step limit still holds, applied later, or
    a queue that builds while new replicas start would order replicas again and again)."""
    need = math.ceil(burst / target) if surge else rec
    desired = max(min(max(need, rec, ctx.floor), ctx.ceiling), min(ctx.current, ctx.ceiling))
    if not surge:
        return desired, f"panic mode until {panic_until:%H:%M:%S}, no scale down; {why}"
    panic = ctx.spec.panic
    return desired, (
        f"panic: {ctx.label} {_fmt(burst / ctx.current)} per replica over "
        f"{panic.window_seconds}s ≥ {_fmt(panic.threshold_multiplier)}x target {_fmt(target)}"
    )


def _desired_stabilized(ctx: _Context, rec: int, memory: _Memory, why: str) -> tuple[int, str]:
    """Out of panic: HPA's stabilization windows over the recommendations before this one."""
    spec, current = ctx.spec, ctx.current
    recs, last = memory.recommendations, memory.last_decision
    window_up = recommendations_in_window(recs, last, ctx.now, spec.scale_up.stabilization_seconds)
    window_down = recommendations_in_window(
        recs, last, ctx.now, spec.scale_down.stabilization_seconds
    )
    desired = stabilized(current, rec, window_up, window_down)
    if desired == current and rec != current:
        side = "scaleUp" if rec > current else "scaleDown"
        window = (spec.scale_up if rec > current else spec.scale_down).stabilization_seconds
        why += f"; load asks for {rec}, {side} waits out its {window}s stabilization window"
    return desired, why


def _bounded(
    ctx: _Context,
    desired: int,
    raw: int,
    per_replica: float,
    why: str,
    panic_until: datetime | None,
) -> _Step:
    """The step after the rate limits and the bounds, with the reason saying which bit."""
    current, floor, ceiling = ctx.current, ctx.floor, ctx.ceiling
    suffix = ""
    if desired != current and floor <= current <= ceiling:
        ready = ctx.snapshot.ready_replicas
        desired, suffix = rate_limit(ctx.spec, ctx.prev, ctx.now, current, ready, desired)
    desired = min(max(desired, floor), ceiling)
    if desired > current:
        outcome, head = ScaleOutcome.SCALED_UP, f"replicas {current}→{desired}: "
    elif desired < current:
        outcome, head = ScaleOutcome.SCALED_DOWN, f"replicas {current}→{desired}: "
    else:
        outcome, head = ScaleOutcome.HELD, f"holding {replicas_text(current)}: "
    if desired == ceiling and raw > ceiling:
        suffix += f" (capped at max {ceiling})"
    elif desired == floor and raw < floor and desired <= current:
        suffix += f" (held at min {floor})"
    return _Step(desired, per_replica, head + why + suffix, outcome, panic_until is not None)


def _finish(ctx: _Context, step: _Step, memory: _Memory) -> ScaleDecision:
    """The decision with the status that records it (and remembers what the next one needs)."""
    now, current, desired = ctx.now, ctx.current, step.desired
    last_scale = ctx.prev.last_scale_time if ctx.prev else None
    history = memory.history
    if desired != current:
        last_scale = now
        record = ScaleDecisionRecord(
            time=now, from_=current, to=desired, value=step.value, reason=step.reason
        )
        history = [*history, record][-HISTORY_LIMIT:]
    new = AutoscalingStatus(
        current_replicas=current,
        desired_replicas=desired,
        signal=ctx.snapshot.signal,
        value=step.value,
        last_scale_time=last_scale,
        reason=step.reason,
        panic_until=memory.panic_until,
        idle_since=memory.idle_since,
        last_decision_time=memory.last_decision,
        recommendations=memory.recommendations,
        history=history,
        slo=memory.slo,
    )
    return ScaleDecision(desired, step.reason, step.outcome, step.panicking, new)
