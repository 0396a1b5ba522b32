"""Test support for the rollout state machine tests: versions, a fixed clock and a `tick` that
feeds `drover.policy.rollout.next_rollout` one observation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from drover.api.rollout import (
    Analysis,
    MetricResult,
    RolloutControl,
    RolloutPhase,
    RolloutSpec,
    RolloutStatus,
    RolloutStep,
    ServedVersion,
    Verdict,
    VersionRef,
)
from drover.policy.rollout import (
    RolloutAction,
    RolloutDecision,
    RolloutObservation,
    next_rollout,
)

A = RolloutAction
P = RolloutPhase
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
OLD = VersionRef(model="qwen-0-5b", digest="sha256:" + "a" * 64)
NEW = VersionRef(model="qwen-support", digest="sha256:" + "b" * 64)
NEWER = VersionRef(model="qwen-support", digest="sha256:" + "c" * 64)
SPEC = RolloutSpec(
    steps=[RolloutStep(weight=5, pause_seconds=60), RolloutStep(weight=50, pause_seconds=60)],
    ready_deadline_seconds=300,
    analysis=Analysis(interval_seconds=30, failure_limit=1),
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def served(v: VersionRef, ready: bool = True) -> ServedVersion:
    return ServedVersion(model=v.model, digest=v.digest, ready=ready)


def results(verdict: Verdict, seconds: float, metric: str = "errorRate") -> list[MetricResult]:
    return [MetricResult(metric=metric, value=0.5, verdict=verdict, measured_at=at(seconds))]


def tick(
    state: RolloutStatus | None,
    seconds: float,
    *,
    desired: VersionRef | None = NEW,
    stable: VersionRef | None = OLD,
    canary: VersionRef | None = NEW,
    ready: bool = True,
    analysis: Sequence[MetricResult] | None = None,
    control: RolloutControl | None = None,
    spec: RolloutSpec = SPEC,
    routed: bool = True,
    metrics_unavailable: str | None = None,
) -> RolloutDecision:
    observed = RolloutObservation(
        desired=desired,
        stable=served(stable) if stable else None,
        canary=served(canary, ready) if canary else None,
        analysis=analysis,
        control=control,
        routed=routed,
        metrics_unavailable=metrics_unavailable,
    )
    return next_rollout(state, spec, observed, at(seconds))


def deploying() -> RolloutStatus:
    d = tick(None, 0, canary=None)
    assert d.status.phase == P.DEPLOYING
    return d.status


def warming() -> RolloutStatus:
    d = tick(deploying(), 10)
    assert d.status.phase == P.WARMING
    return d.status


def at_step(index: int) -> RolloutStatus:
    """The rollout entered step `index` at t = 20 + 60 * index (each step's pause is 60 s)."""
    d = tick(warming(), 20, analysis=results(Verdict.SUCCESSFUL, 15))
    for i in range(index):
        start = 20 + 60 * i
        d = tick(d.status, start + 60)
        d = tick(d.status, start + 60, analysis=results(Verdict.SUCCESSFUL, start + 60))
    assert d.status.phase == P.STEP and d.status.step == index
    return d.status
