"""Handlers layer: one tick of an InferenceService's rollout — decide, measure if asked, decide.

The state machine (`drover.policy.rollout`) asks for warm-up or analysis when it needs numbers;
this module gets them (requests pinned to the canary, Prometheus queries) and asks again with the
results, so one tick both measures and acts on the measurement. Queries that fail or find no
series set `MetricsUnavailable` instead of leaving the canary to hold in silence; when
Prometheus cannot be read at all the analysis holds the canary's step and weight (no blind
promotion or rollback) until it can.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drover.api.inferenceservice import InferenceService
from drover.api.reasons import MetricsReason
from drover.api.rollout import (
    ROLLOUT_ANNOTATION,
    Analysis,
    MetricName,
    MetricResult,
    RolloutControl,
    RolloutSpec,
    RolloutStatus,
    RolloutStep,
    ServedVersion,
    VersionRef,
    Warmup,
)
from drover.api.versions import version_id
from drover.config import OperatorConfig
from drover.k8s import serving
from drover.policy.conditions import Cond, get_condition
from drover.policy.metrics_health import (
    CONDITION,
    MetricsProblem,
    Reader,
    decide_metrics_condition,
    withdraw_metrics_condition,
)
from drover.policy.rollout import (
    RolloutAction,
    RolloutDecision,
    RolloutObservation,
    next_rollout,
)
from drover.policy.versions import apply_actions, served_with_health

# Without spec.rollout: one step to 100% and no metrics — replace the old version once the new
# one is ready and warmed.
REPLACE = RolloutSpec(
    steps=[RolloutStep(weight=100, pause_seconds=0)],
    warmup=Warmup(requests=0),
    analysis=Analysis(metrics=[]),
)


@dataclass(frozen=True)
class RolloutTick:
    """What one rollout tick decided, with the versions it serves and the annotation it read."""

    decision: RolloutDecision
    stable: ServedVersion | None
    canary: ServedVersion | None
    control: RolloutControl | None
    metrics: Cond | None = None  # MetricsUnavailable as the analysis found it; None: unchanged


def control_of(body: Mapping[str, Any]) -> RolloutControl | None:
    """The `drover.dev/rollout` annotation (promote|abort|pause|resume); unknown values ignored."""
    value = (body.get("metadata", {}).get("annotations") or {}).get(ROLLOUT_ANNOTATION)
    try:
        return RolloutControl(value) if value else None
    except ValueError:
        return None


def rollout_tick(
    svc: InferenceService,
    body: Mapping[str, Any],
    health: Mapping[str, str],
    desired: VersionRef | None,
    *,
    config: OperatorConfig,
    url: str,
    now: datetime,
    routed: bool = True,
) -> RolloutTick:
    recorded = body.get("status") or {}
    stable = served_with_health(recorded.get("stable"), health)
    canary = served_with_health(recorded.get("canary"), health)
    state = RolloutStatus.model_validate(recorded["rollout"]) if recorded.get("rollout") else None
    spec = svc.spec.rollout or REPLACE
    control = control_of(body)
    observed = RolloutObservation(
        desired=desired, stable=stable, canary=canary, control=control, routed=routed
    )
    decision = next_rollout(state, spec, observed, now)
    measured, problems = _measure(decision, svc, spec, config, url, stable, now)
    if measured is not None:
        observed = RolloutObservation(
            desired=desired,
            stable=stable,
            canary=canary,
            analysis=measured,
            routed=routed,
            metrics_unavailable=unavailable(problems),
        )
        decision = next_rollout(decision.status, spec, observed, now)
    stable, canary = apply_actions(decision, desired, stable, canary)
    previous = get_condition(recorded.get("conditions"), CONDITION)
    prometheus = config.prometheus.url
    if problems is not None and decision.canary is not None:
        metrics = decide_metrics_condition(
            Reader.ANALYSIS,
            problems[0] if problems else None,
            consequence=f"cannot judge canary {decision.canary.label()}",
            prometheus_url=prometheus,
            previous=previous,
            now=now,
        )
    elif decision.canary is None:
        metrics = withdraw_metrics_condition(
            Reader.ANALYSIS, prometheus_url=prometheus, previous=previous
        )
    else:
        metrics = None
    return RolloutTick(decision, stable, canary, control, metrics)


def unavailable(problems: list[MetricsProblem] | None) -> str | None:
    """Why Prometheus could not be read (unreachable, or a query failed), or None: a query
    that found no series was answered (too little data, judged as such)."""
    for problem in problems or []:
        if problem.reason != MetricsReason.NO_SERIES:
            return problem.detail
    return None


def _measure(
    decision: RolloutDecision,
    svc: InferenceService,
    spec: RolloutSpec,
    config: OperatorConfig,
    url: str,
    stable: ServedVersion | None,
    now: datetime,
) -> tuple[list[MetricResult] | None, list[MetricsProblem] | None]:
    """Warm-up or analysis results when the state machine asked for them, else None; and the
    Prometheus problems of an analysis (None when it asked Prometheus nothing)."""
    if decision.canary is None or stable is None:
        return None, None
    canary_id, stable_id = version_id(decision.canary.digest), version_id(stable.digest)
    if RolloutAction.WARM_UP in decision.actions:
        limit = svc.spec.runtime.max_tokens
        evidence = decision.status.evidence
        warmed = serving.warm_up(
            url,
            svc.name,
            canary_id,
            spec,
            now=now,
            max_tokens=limit,
            evidence=evidence,
            stable=stable_id,
        )
        return warmed, None
    start = decision.analysis_window_start
    if RolloutAction.RUN_ANALYSIS not in decision.actions or start is None:
        return None, None
    results, problems = serving.measure(
        config.prometheus.url,
        url,
        svc.name,
        spec,
        namespace=svc.namespace or "default",
        canary=canary_id,
        stable=stable_id,
        window_start=start,
        now=now,
        evidence=decision.status.evidence,
        timeout=config.prometheus.timeout_seconds,
        max_tokens=svc.spec.runtime.max_tokens,
    )
    asked = any(m.name != MetricName.EVALUATION_PASS_RATE for m in spec.effective_metrics())
    return results, problems if asked else None
