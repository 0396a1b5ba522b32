"""Handlers layer: InferenceService — a RayService with a router application and one per version.

Each pass: read the model (and adapter, index) → one rollout tick decides which versions run at
which weights → build and ensure the RayService → record versions, rollout and conditions.
A changed model becomes a canary; without `spec.rollout` it replaces the old one once ready.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import kopf

from drover.api.inferenceservice import InferenceService
from drover.api.reasons import InferenceServiceReason
from drover.api.rollout import ROLLOUT_ANNOTATION
from drover.builders.errors import SpecError
from drover.builders.feedback import feedback_claims
from drover.builders.meta import stamp
from drover.builders.raycluster import Placement
from drover.builders.serving import (
    build_rayservice,
    engine_routes,
    existing_worker_groups,
    plan_worker_groups,
    rayservice_name,
    serve_config_of,
)
from drover.builders.serving_plans import VersionPlan, needed_claims
from drover.config import OperatorConfig
from drover.handlers.common import (
    emit,
    invalid_spec,
    now,
    parse_resource,
    worker_image,
    write_status,
)
from drover.handlers.rollout_tick import RolloutTick, rollout_tick
from drover.handlers.serving_inputs import (
    ServingInputs,
    draining,
    present_claims,
    read_healthy_replicas,
    read_inputs,
    read_version_plan,
    service_placement,
)
from drover.k8s import children
from drover.observability import record_canary_weight, record_replicas, record_rollout_events
from drover.policy.conditions import Cond, get_condition
from drover.policy.events import Event
from drover.policy.serving import (
    decide_serving,
    ready_replicas,
    replica_status,
    router_current,
    version_statuses,
)
from drover.policy.upgrade import cluster_upgrade
from drover.policy.versions import desired_replicas, service_phase

DECLARED = ("ModelReady", "ServingReady")


def reconcile(
    body: Mapping[str, Any], patch: kopf.Patch, logger: Any, config: OperatorConfig
) -> None:
    svc = parse_resource(InferenceService, body)
    if isinstance(svc, str):
        invalid_spec(body, patch, svc, DECLARED, logger)
        return
    ns, recorded, when = svc.namespace or "default", dict(body.get("status") or {}), now()
    inputs = read_inputs(svc, ns, recorded.get("retraining"))
    if inputs.condition.status is not True and not recorded.get("stable"):
        _record(
            body, patch, logger, {"phase": "WaitingForModel"}, [inputs.condition], inputs.condition
        )
        return
    try:
        placement = service_placement(svc, inputs, config)
    except SpecError as exc:
        failed = Cond("ModelReady", False, exc.reason, exc.message)
        _record(body, patch, logger, {"phase": "Failed"}, [failed], failed, warn=True)
        return
    name = rayservice_name(svc)
    rayservice = children.get_object("RayService", ns, name)
    upgrading = cluster_upgrade(rayservice)
    if upgrading and recorded.get("stable"):
        # KubeRay reports no application of the active cluster and applies no Serve config to
        # it until the switch: keep the last version health, weights and replicas.
        held = Cond("ServingReady", True, InferenceServiceReason.RAY_CLUSTER_UPGRADE, upgrading)
        _record(body, patch, logger, {}, [inputs.condition, held], None)
        return
    url = config.serving.url_for(name=svc.name, namespace=ns, rayservice=name)
    tick = _tick(svc, body, rayservice, inputs, config, url, when)
    stable, canary = _live_plans(svc, recorded, tick, ns)
    plans = [p for p in (stable, canary) if p is not None]
    plans += draining(recorded, plans, ns)
    if plans:
        _ensure_rayservice(svc, body, logger, config, rayservice, plans, inputs, placement)
    live = [(p.app(svc.name), p.replicas) for p in (stable, canary) if p is not None]
    counted = read_healthy_replicas(config, ns, [app for app, _ in live], when)
    fields = {
        "url": url,
        "rayServiceName": name,
        "stable": _served(tick.stable, stable, svc.name, counted),
        "canary": _served(tick.canary, canary, svc.name, counted),
        "rollout": tick.decision.status.to_wire(),
        "replicas": replica_status(live, counted).to_wire(),
    }
    _record_serving(body, patch, logger, svc, recorded, rayservice, inputs, tick, fields, stable)
    record_canary_weight(ns, svc.name, canary.weight if canary is not None else 0)
    if tick.control is not None:  # an annotation acts once, then is cleared
        patch.metadata.setdefault("annotations", {})[ROLLOUT_ANNOTATION] = None


def _tick(
    svc: InferenceService,
    body: Mapping[str, Any],
    rayservice: Mapping[str, Any] | None,
    inputs: ServingInputs,
    config: OperatorConfig,
    url: str,
    when: datetime,
) -> RolloutTick:
    """One rollout tick over the versions' health and the weights the router serves now."""
    health = version_statuses(
        rayservice, svc.name, engine_routes(serve_config_of(rayservice or {}), svc.name)
    )
    return rollout_tick(
        svc,
        body,
        health,
        inputs.desired,
        config=config,
        url=url,
        now=when,
        routed=router_current(rayservice, svc.name),
    )


def _live_plans(
    svc: InferenceService, recorded: Mapping[str, Any], tick: RolloutTick, namespace: str
) -> tuple[VersionPlan | None, VersionPlan | None]:
    """The stable and canary versions at the weights the rollout tick chose; the stable one at
    the replica count the autoscaler recorded, a canary at the minimum (at least one)."""
    bounds = (svc.spec.replicas.min, svc.spec.replicas.max)
    replicas = desired_replicas(bounds, recorded.get("autoscaling"))
    record_replicas(namespace, svc.name, replicas, bounds)
    d = tick.decision
    stable = read_version_plan(
        tick.stable, namespace, weight=d.stable_weight if tick.canary else 100, replicas=replicas
    )
    canary = read_version_plan(
        tick.canary, namespace, weight=d.canary_weight, replicas=max(svc.spec.replicas.min, 1)
    )
    return stable, canary


def _ensure_rayservice(
    svc: InferenceService,
    body: Mapping[str, Any],
    logger: Any,
    config: OperatorConfig,
    rayservice: Mapping[str, Any] | None,
    plans: list[VersionPlan],
    inputs: ServingInputs,
    placement: Placement,
) -> None:
    """Build the RayService for `plans` and create or patch it, keeping the worker groups (and the
    claims they mount) that a running cluster still needs."""
    ns = svc.namespace or "default"
    needed = needed_claims(plans, inputs.index) | feedback_claims(svc)
    existing = existing_worker_groups(rayservice)
    mounted = {claim for group in existing for claim in group.claims}
    present = needed | present_claims(ns, mounted - needed)
    manifest = build_rayservice(
        svc,
        plans,
        inputs.index,
        placement=placement,
        image=worker_image(config, placement),
        route_prefix=config.serving.route_prefix,
        replica_cpus=config.serving.replica_cpus,
        groups=plan_worker_groups(placement.class_name, existing, needed, present),
    )
    outcome = children.ensure_child(stamp(manifest, body))
    if outcome is not children.Outcome.UNCHANGED:
        logger.info(
            f"RayService {rayservice_name(svc)} {outcome}: "
            + ", ".join(f"{p.model} {p.weight}%" for p in plans)
        )


def _record_serving(
    body: Mapping[str, Any],
    patch: kopf.Patch,
    logger: Any,
    svc: InferenceService,
    recorded: Mapping[str, Any],
    rayservice: Mapping[str, Any] | None,
    inputs: ServingInputs,
    tick: RolloutTick,
    fields: dict[str, Any],
    stable: VersionPlan | None,
) -> None:
    """Serving and rollout health into status, the rollout's events, and their metrics."""
    ns, d = svc.namespace or "default", tick.decision
    was_serving = (get_condition(recorded.get("conditions"), "ServingReady") or {}).get("status")
    serving = decide_serving(
        rayservice,
        svc.name,
        stable.app(svc.name) if stable else None,
        was_serving=was_serving == "True",
    )
    fields["phase"] = service_phase(inputs.condition, serving, tick.canary)
    healthy = Cond(
        "RolloutHealthy", d.status.phase.value != "RolledBack", d.status.phase.value, d.reason
    )
    conds = [inputs.condition, serving, healthy]
    _record(body, patch, logger, fields, conds + ([tick.metrics] if tick.metrics else []), None)
    for event in d.events:
        emit(body, event, logger)
    record_rollout_events(ns, svc.name, [event.reason for event in d.events])


def _served(
    version: Any, plan: Any, service: str, counted: Mapping[str, float] | None
) -> dict[str, Any] | None:
    if version is None:
        return None
    app = plan.app(service) if plan is not None else version.application
    update: dict[str, Any] = {"ready_replicas": ready_replicas(app, counted) if app else None}
    if plan is not None:
        update |= {"weight": plan.weight, "replicas": plan.replicas, "application": app}
    wire: dict[str, Any] = version.model_copy(update=update).to_wire()
    return wire


def _record(
    body: Mapping[str, Any],
    patch: kopf.Patch,
    logger: Any,
    fields: Mapping[str, Any],
    conds: list[Cond],
    because: Cond | None,
    *,
    warn: bool = False,
) -> None:
    write_status(body, patch, fields=fields, conditions=conds, declared=DECLARED, when=now())
    if because is not None and (body.get("status") or {}).get("phase") != fields.get("phase"):
        emit(body, Event("Warning" if warn else "Normal", because.reason, because.message), logger)
