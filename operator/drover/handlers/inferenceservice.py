"""Handlers layer: InferenceService — a RayService with a router and one deployment per version.

Each pass: resolve the model (and adapter, index) → ask the rollout state machine which versions
run at which weights → build and ensure the RayService → record versions, rollout and conditions.
A changed model becomes a canary; without `spec.rollout` it replaces the old version once ready.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from drover.api.common import AcceleratorRequest
from drover.api.inferenceservice import InferenceService
from drover.api.rollout import RolloutSpec, RolloutStatus, RolloutStep, ServedVersion, VersionRef
from drover.builders.errors import SpecError
from drover.builders.meta import stamp
from drover.builders.placement import resolve_placement
from drover.builders.serving import IndexPlan, VersionPlan, build_rayservice, rayservice_name
from drover.config import OperatorConfig
from drover.handlers.common import emit, invalid_spec, now, parse_resource, write_status
from drover.k8s import children, serving
from drover.policy.conditions import Cond
from drover.policy.dependencies import decide_model_ready
from drover.policy.fetching import Event
from drover.policy.rollout import (
    ROLLOUT_ANNOTATION,
    RolloutAction,
    RolloutControl,
    RolloutObservation,
    next_rollout,
)
from drover.policy.serving import decide_serving, deployment_statuses

DECLARED = ("ModelReady", "ServingReady")
# Without spec.rollout: one step to 100% with no metrics, i.e. replace once the new one is ready.
REPLACE = RolloutSpec(steps=[RolloutStep(weight=100, pause_seconds=0)])


def reconcile(
    body: Mapping[str, Any], patch: kopf.Patch, logger: Any, config: OperatorConfig
) -> None:
    svc = parse_resource(InferenceService, body)
    if isinstance(svc, str):
        invalid_spec(body, patch, svc, DECLARED, logger)
        return
    ns, recorded, when = svc.namespace or "default", dict(body.get("status") or {}), now()
    models = _read_models(svc, ns)
    model_cond = _model_condition(svc, models)
    index = _index_plan(svc, ns) if model_cond.status is True else None
    if svc.spec.retrieval is not None and model_cond.status is True and index is None:
        model_cond = Cond(
            "ModelReady",
            False,
            "WaitingForIndex",
            f"waiting for VectorIndex {svc.spec.retrieval.vector_index.name} to be Ready",
        )
    if model_cond.status is not True and not recorded.get("stable"):
        _record(
            body,
            patch,
            logger,
            recorded,
            {"phase": "WaitingForModel"},
            [model_cond],
            Event("Normal", model_cond.reason, model_cond.message),
        )
        return
    model_spec = models[svc.spec.model.name]["spec"]
    try:
        placement = resolve_placement(
            svc.spec.accelerator or _accel(model_spec),
            config.accelerator_classes,
            field="spec.accelerator",
            parameter_count=model_spec.get("parameterCount"),
        )
    except SpecError as exc:
        _record(
            body,
            patch,
            logger,
            recorded,
            {"phase": "Failed"},
            [Cond("ModelReady", False, exc.reason, exc.message)],
            Event("Warning", exc.reason, exc.message),
        )
        return
    name = rayservice_name(svc)
    rayservice = children.get_object("RayService", ns, name)
    health = deployment_statuses(rayservice, svc.name)
    stable, canary = (_served(recorded.get(k), health) for k in ("stable", "canary"))
    desired = _desired_ref(svc, models) if model_cond.status is True else None
    control = _control(body)
    url = config.serving.url_for(name=svc.name, namespace=ns, rayservice=name)
    rollout_spec = svc.spec.rollout or REPLACE
    state = _rollout_state(recorded)
    observed = RolloutObservation(desired=desired, stable=stable, canary=canary, control=control)
    decision = next_rollout(state, rollout_spec, observed, when)
    measured = _measure(decision, svc, rollout_spec, config, url, stable, when)
    if measured is not None:
        observed = RolloutObservation(
            desired=desired, stable=stable, canary=canary, analysis=measured
        )
        decision = next_rollout(decision.status, rollout_spec, observed, when)
    stable, canary = _apply_actions(decision, desired, stable, canary)
    replicas = _replicas(svc, recorded)
    plans = [
        p
        for p in (
            _plan(stable, models, ns, decision.stable_weight if canary else 100, replicas),
            _plan(canary, models, ns, decision.canary_weight, max(svc.spec.replicas.min, 1)),
        )
        if p is not None
    ]
    if plans:
        manifest = build_rayservice(
            svc,
            plans,
            index,
            placement=placement,
            image=config.images.workers,
            route_prefix=config.serving.route_prefix,
        )
        outcome = children.ensure_child(stamp(manifest, body))
        if outcome is not children.Outcome.UNCHANGED:
            logger.info(
                f"RayService {name} {outcome}: "
                + ", ".join(f"{p.model}@{p.id} {p.weight}%" for p in plans)
            )
    serving_cond = decide_serving(rayservice, svc.name, plans[0].deployment if plans else None)
    fields = {
        "url": url,
        "rayServiceName": name,
        "stable": _wire(stable, plans[0] if plans else None),
        "canary": _wire(canary, plans[1] if len(plans) > 1 else None),
        "rollout": decision.status.to_wire(),
        "replicas": {
            "desired": replicas,
            "current": replicas,
            "ready": replicas if serving_cond.status else 0,
        },
        "phase": _phase(model_cond, serving_cond, canary),
    }
    healthy = Cond(
        "RolloutHealthy",
        decision.status.phase.value != "RolledBack",
        decision.status.phase.value,
        decision.reason,
    )
    _record(body, patch, logger, recorded, fields, [model_cond, serving_cond, healthy], None)
    for ev in decision.events:
        emit(body, Event(ev.type, ev.reason, ev.message), logger)
    if control is not None:
        patch.metadata.setdefault("annotations", {})[ROLLOUT_ANNOTATION] = None


def _accel(model_spec: Mapping[str, Any]) -> AcceleratorRequest | None:
    """The model's own accelerator request, used when the service names none."""
    raw = model_spec.get("accelerator")
    return AcceleratorRequest.model_validate(raw) if raw else None


def _read_models(svc: InferenceService, ns: str) -> dict[str, dict[str, Any]]:
    names = {svc.spec.model.name} | ({svc.spec.adapter.name} if svc.spec.adapter else set())
    found = {n: children.get_object("FoundationModel", ns, n) for n in names}
    return {n: obj for n, obj in found.items() if obj is not None}


def _model_condition(svc: InferenceService, models: Mapping[str, Any]) -> Cond:
    cond = decide_model_ready(
        "ModelReady", "spec.model.name", svc.spec.model.name, models.get(svc.spec.model.name)
    )
    if cond.status is True and svc.spec.adapter is not None:
        cond = decide_model_ready(
            "ModelReady",
            "spec.adapter.name",
            svc.spec.adapter.name,
            models.get(svc.spec.adapter.name),
        )
    return cond


def _index_plan(svc: InferenceService, ns: str) -> IndexPlan | None:
    if svc.spec.retrieval is None:
        return None
    index = children.get_object("VectorIndex", ns, svc.spec.retrieval.vector_index.name)
    st = (index or {}).get("status") or {}
    if not index or not st.get("version") or not st.get("path"):
        return None
    embedder = children.get_object("FoundationModel", ns, index["spec"]["embeddingModel"]["name"])
    cache = ((embedder or {}).get("status") or {}).get("cache") or {}
    if not cache:
        return None
    return IndexPlan(
        claim=str(st.get("claimName")),
        path=str(st["path"]),
        embedder_claim=str(cache.get("claimName")),
        embedder_path=str(cache.get("path")),
    )


def _desired_ref(svc: InferenceService, models: Mapping[str, Any]) -> VersionRef:
    digest = models[svc.spec.model.name]["status"]["digest"]
    if svc.spec.adapter is None:
        return VersionRef(model=svc.spec.model.name, digest=digest)
    adapter_digest = models[svc.spec.adapter.name]["status"]["digest"]
    return VersionRef(
        model=f"{svc.spec.model.name}+{svc.spec.adapter.name}", digest=f"{digest}+{adapter_digest}"
    )


def _served(raw: Any, health: Mapping[str, str]) -> ServedVersion | None:
    if not raw:
        return None
    version = ServedVersion.model_validate(raw)
    ready = health.get(f"model-{served_version_id(version)}") == "HEALTHY"
    return version.model_copy(update={"ready": ready})


def _control(body: Mapping[str, Any]) -> RolloutControl | None:
    value = (body.get("metadata", {}).get("annotations") or {}).get(ROLLOUT_ANNOTATION)
    try:
        return RolloutControl(value) if value else None
    except ValueError:
        return None


def _rollout_state(recorded: Mapping[str, Any]) -> RolloutStatus | None:
    raw = recorded.get("rollout")
    return RolloutStatus.model_validate(raw) if raw else None


def _measure(
    decision: Any,
    svc: InferenceService,
    spec: RolloutSpec,
    config: OperatorConfig,
    url: str,
    stable: ServedVersion | None,
    when: Any,
) -> list[Any] | None:
    """Warm-up or analysis results when the state machine asked for them, else None."""
    if decision.canary is None or stable is None:
        return None
    canary_id = _ref_plan_id(decision.canary)
    stable_id = _ref_plan_id(stable.ref())
    if RolloutAction.WARM_UP in decision.actions:
        return serving.warm_up(
            url,
            svc.name,
            canary_id,
            spec.warmup.requests,
            spec.analysis.evaluation_prompts,
            now=when,
        )
    if (
        RolloutAction.RUN_ANALYSIS in decision.actions
        and decision.analysis_window_start is not None
    ):
        results = serving.measure(
            config.prometheus.url,
            spec.analysis,
            service=svc.name,
            namespace=svc.namespace or "default",
            canary=canary_id,
            stable=stable_id,
            window_start=decision.analysis_window_start,
            now=when,
            timeout=config.prometheus.timeout_seconds,
        )
        results += serving.evaluate_prompts(
            url, svc.name, canary_id, spec.analysis.evaluation_prompts, now=when
        )
        return results
    return None


def _ref_plan_id(ref: VersionRef) -> str:
    base, _, adapter = ref.digest.partition("+")
    return VersionPlan(model=ref.model, digest=base, claim="", path="", adapter_digest=adapter).id


def served_version_id(version: ServedVersion) -> str:
    """The id of a served version: Serve deployment `model-<id>`, metrics label `version`."""
    return _ref_plan_id(version.ref())


def _apply_actions(
    decision: Any,
    desired: VersionRef | None,
    stable: ServedVersion | None,
    canary: ServedVersion | None,
) -> tuple[ServedVersion | None, ServedVersion | None]:
    for action in decision.actions:
        if action is RolloutAction.DEPLOY_STABLE and desired is not None:
            stable = ServedVersion(model=desired.model, digest=desired.digest, weight=100)
        elif action is RolloutAction.REMOVE_CANARY:
            canary = None
        elif action is RolloutAction.DEPLOY_CANARY and decision.canary is not None:
            canary = ServedVersion(model=decision.canary.model, digest=decision.canary.digest)
        elif action is RolloutAction.PROMOTE_CANARY and canary is not None:
            stable, canary = canary, None
    if (
        canary is None
        and decision.canary is not None
        and decision.status.phase.value in ("Deploying", "Warming", "Step", "Analysing", "Paused")
    ):
        canary = ServedVersion(model=decision.canary.model, digest=decision.canary.digest)
    return stable, canary


def _replicas(svc: InferenceService, recorded: Mapping[str, Any]) -> int:
    desired = (recorded.get("autoscaling") or {}).get("desiredReplicas")
    bounds = svc.spec.replicas
    value = int(desired) if desired is not None else bounds.min
    return max(bounds.min, min(bounds.max, value))


def _plan(
    version: ServedVersion | None, models: Mapping[str, Any], ns: str, weight: int, replicas: int
) -> VersionPlan | None:
    if version is None:
        return None
    base_name, _, adapter_name = version.model.partition("+")
    base_digest, _, adapter_digest = version.digest.partition("+")
    base = _location(
        models.get(base_name) or children.get_object("FoundationModel", ns, base_name),
        base_name,
        base_digest,
    )
    if base is None:
        return None
    adapter = ("", "")
    if adapter_name:
        found = _location(
            models.get(adapter_name) or children.get_object("FoundationModel", ns, adapter_name),
            adapter_name,
            adapter_digest,
        )
        adapter = found or ("", "")
    return VersionPlan(
        model=version.model,
        digest=base_digest,
        claim=base[0],
        path=base[1],
        adapter_claim=adapter[0],
        adapter_path=adapter[1],
        adapter_digest=adapter_digest,
        weight=weight,
        replicas=replicas,
    )


def _location(model: Mapping[str, Any] | None, name: str, digest: str) -> tuple[str, str] | None:
    """(claim, path) of `digest`'s weights: the current cache or an older kept directory."""
    status = (model or {}).get("status") or {}
    cache = status.get("cache") or {}
    if not cache.get("claimName"):
        return None
    if status.get("digest") == digest:
        return str(cache["claimName"]), str(cache.get("path", ""))
    return str(cache["claimName"]), f"{name}/{digest.split(':')[-1][:12]}"


def _wire(version: ServedVersion | None, plan: VersionPlan | None) -> dict[str, Any] | None:
    if version is None:
        return None
    update: dict[str, Any] = {}
    if plan is not None:
        update = {"weight": plan.weight, "replicas": plan.replicas}
    return version.model_copy(update=update).to_wire()


def _phase(model: Cond, serving_cond: Cond, canary: ServedVersion | None) -> str:
    if serving_cond.status is False:
        return "Degraded"
    if canary is not None:
        return "RollingOut"
    if serving_cond.status is True:
        return "Ready"
    return "Deploying"


def _record(
    body: Mapping[str, Any],
    patch: kopf.Patch,
    logger: Any,
    recorded: Mapping[str, Any],
    fields: Mapping[str, Any],
    conds: list[Cond],
    event: Event | None,
) -> None:
    write_status(body, patch, fields=fields, conditions=conds, declared=DECLARED, when=now())
    if recorded.get("phase") != fields.get("phase"):
        emit(body, event, logger)
