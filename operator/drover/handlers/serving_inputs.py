"""Handlers layer: what an InferenceService needs read from the cluster before deciding anything.

Its model (and adapter), its index and the index's embedder, as plain objects plus the condition
saying whether they are usable; for any served version, where its weights are; and how many
replicas of each Serve application Serve counts healthy (from Prometheus).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drover.api.common import AcceleratorRequest
from drover.api.inferenceservice import InferenceService
from drover.api.reasons import InferenceServiceReason, SummaryReason
from drover.api.rollout import ServedVersion, VersionRef
from drover.api.versions import MODEL_DEPLOYMENT
from drover.builders.engine import check_context, resolve_engine_placement
from drover.builders.raycluster import Placement
from drover.builders.serving_plans import IndexPlan, VersionPlan
from drover.config import OperatorConfig
from drover.k8s import children, metrics
from drover.policy.conditions import Cond
from drover.policy.dependencies import all_problems, decide_model_ready
from drover.policy.fetching import cache_dir
from drover.policy.retraining import served_names

FAULTS_ANNOTATION = "drover.dev/faults"


@dataclass
class ServingInputs:
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    condition: Cond = field(
        default_factory=lambda: Cond("ModelReady", None, SummaryReason.RECONCILING)
    )
    index: IndexPlan | None = None
    desired: VersionRef | None = None


def read_inputs(
    svc: InferenceService, namespace: str, retraining: Mapping[str, Any] | None = None
) -> ServingInputs:
    """The model, adapter and index to serve, and whether all are ready (every problem named in
    one condition, not the first alone). They are the spec's, or a retraining's output that passed
    its gate (`status.retraining.latest`, see drover.policy.retraining.served_names)."""
    names = served_names(svc.spec, retraining)
    found = {n: children.read_dependency("FoundationModel", namespace, n) for n in names}
    models = {n: obj for n, obj in found.items() if obj is not None}
    field = "spec.model.name" if names[0] == svc.spec.model.name else "status.retraining.latest"
    ready = decide_model_ready("ModelReady", field, names[0], models.get(names[0]))
    checks = [ready, *_adapter_checks(svc, names, models)]
    index = None
    if svc.spec.retrieval is not None:
        index, index_check = _read_index(svc.spec.retrieval.vector_index.name, namespace)
        checks.append(index_check)
    problem = all_problems(checks)
    inputs = ServingInputs(models=models, condition=problem or ready, index=index)
    if problem is None:
        digests = [models[n]["status"]["digest"] for n in names]
        inputs.desired = VersionRef(model="+".join(names), digest="+".join(digests))
    return inputs


def _adapter_checks(
    svc: InferenceService, names: list[str], models: Mapping[str, dict[str, Any]]
) -> list[Cond]:
    """The adapter's readiness, and a base model that is itself only an adapter."""
    checks = []
    if len(names) > 1:
        adapter = models.get(names[1])
        field = "spec.adapter.name" if svc.spec.adapter else "status.retraining.latest.model"
        checks.append(decide_model_ready("ModelReady", field, names[1], adapter))
    adapter_of = _adapter_of(models.get(names[0]))
    if adapter_of:
        checks.append(
            Cond(
                "ModelReady",
                False,
                InferenceServiceReason.MODEL_IS_ADAPTER,
                f"FoundationModel {names[0]} holds LoRA adapter weights for {adapter_of}: serve "
                f"it with spec.model.name: {adapter_of} and spec.adapter.name: {names[0]}",
            )
        )
    return checks


def _read_index(name: str, namespace: str) -> tuple[IndexPlan | None, Cond]:
    """The index's plan once it and its embedder are ready, and a condition saying so."""
    plan = _index_plan(name, namespace)
    if plan is not None:
        return plan, Cond(
            "ModelReady", True, InferenceServiceReason.INDEX_READY, f"VectorIndex {name} is ready"
        )
    if children.read_dependency("VectorIndex", namespace, name) is not None:
        return None, Cond(
            "ModelReady",
            False,
            InferenceServiceReason.WAITING_FOR_INDEX,
            f"waiting for VectorIndex {name} to be Ready",
        )
    return None, Cond(
        "ModelReady",
        False,
        InferenceServiceReason.INDEX_NOT_FOUND,
        f"VectorIndex {name} does not exist; create it or fix spec.retrieval.vectorIndex.name",
    )


def service_placement(
    svc: InferenceService, inputs: ServingInputs, config: OperatorConfig
) -> Placement:
    """The serving placement (the spec's accelerator, else the model's), checked against the
    runtime (the model's context, quantization, tensor and pipeline parallelism); raises
    SpecError."""
    model = inputs.models[svc.spec.model.name]
    model_spec = model["spec"]
    check_context(svc.spec.runtime, (model.get("status") or {}).get("contextLength"))
    request = svc.spec.accelerator
    if request is None and model_spec.get("accelerator"):
        request = AcceleratorRequest.model_validate(model_spec["accelerator"])
    return resolve_engine_placement(
        svc.spec.runtime,
        request,
        config.accelerator_classes,
        field="spec.accelerator",
        parameter_count=model_spec.get("parameterCount"),
    )


def read_version_plan(
    version: ServedVersion | None, namespace: str, *, weight: int, replicas: int
) -> VersionPlan | None:
    """Where a served version's weights are (read from its FoundationModels), as a deployment plan;
    None when unknown."""
    if version is None:
        return None
    base_name, _, adapter_name = version.model.partition("+")
    base_digest, _, adapter_digest = version.digest.partition("+")
    base_model = children.read_dependency("FoundationModel", namespace, base_name)
    base = _location(base_model, base_name, base_digest)
    if base is None:
        return None
    adapter, adapter_model = None, None
    if adapter_name:
        adapter_model = children.read_dependency("FoundationModel", namespace, adapter_name)
        adapter = _location(adapter_model, adapter_name, adapter_digest)
    return VersionPlan(
        model=version.model,
        digest=base_digest,
        claim=base[0],
        path=base[1],
        adapter_claim=adapter[0] if adapter else "",
        adapter_path=adapter[1] if adapter else "",
        adapter_digest=adapter_digest,
        weight=weight,
        replicas=replicas,
        faults=injected_faults(adapter_model if adapter_name else base_model),
    )


def draining(
    recorded: Mapping[str, Any], plans: list[VersionPlan], namespace: str
) -> list[VersionPlan]:
    """Versions the last reconcile served with traffic (status `stable`/`canary`) that `plans`
    drop: they stay one more reconcile at weight 0. The router then stops sending them requests
    before Serve deletes their application; a request already routed to a deleted application
    would never be answered."""
    kept, out = {p.id for p in plans}, []
    for key in ("stable", "canary"):
        served = recorded.get(key)
        if not served or not served.get("weight"):
            continue
        old = ServedVersion.model_validate(served)
        plan = read_version_plan(old, namespace, weight=0, replicas=max(old.replicas, 1))
        if plan is not None and plan.id not in kept:
            kept.add(plan.id)
            out.append(plan)
    return out


def read_healthy_replicas(
    config: OperatorConfig, namespace: str, applications: Sequence[str], now: datetime
) -> dict[str, float] | None:
    """Healthy `model` replicas per Serve application, from Serve's own gauge in Prometheus
    (an application without series is left out); None when Prometheus could not be asked."""
    if not applications:
        return {}
    promql = metrics.healthy_replicas_query(namespace, applications, MODEL_DEPLOYMENT)
    try:
        return metrics.query_by(
            config.prometheus.url,
            promql,
            "application",
            at=now,
            timeout=config.prometheus.timeout_seconds,
        )
    except metrics.MetricsUnavailable:
        return None


def injected_faults(model: Mapping[str, Any] | None) -> dict[str, float] | None:
    """A test hook: `drover.dev/faults: '{"errorRate": 0.2}'` on a FoundationModel makes every
    version serving it fail that share of requests (or add latency). Off unless set."""
    raw = ((model or {}).get("metadata", {}).get("annotations") or {}).get(FAULTS_ANNOTATION)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    keys = ("errorRate", "addedLatencySeconds", "startupDelaySeconds")
    return {k: float(value[k]) for k in keys if isinstance(value, dict) and k in value} or None


def _location(model: Mapping[str, Any] | None, name: str, digest: str) -> tuple[str, str] | None:
    """(claim, path) of `digest`'s weights: the model's current cache, or the directory an older
    digest was fetched into (fetches keep old digests until nothing uses them)."""
    status = (model or {}).get("status") or {}
    cache: Mapping[str, Any] = status.get("cache") or {}
    if not cache.get("claimName"):
        return None
    if status.get("digest") == digest:
        return str(cache["claimName"]), str(cache.get("path", ""))
    return str(cache["claimName"]), cache_dir(name, digest)


def _index_plan(name: str, namespace: str) -> IndexPlan | None:
    index = children.read_dependency("VectorIndex", namespace, name)
    status = (index or {}).get("status") or {}
    if index is None or not status.get("version") or not status.get("path"):
        return None
    embedder = children.get_object(
        "FoundationModel", namespace, index["spec"]["embeddingModel"]["name"]
    )
    cache = ((embedder or {}).get("status") or {}).get("cache") or {}
    if not cache:
        return None
    return IndexPlan(
        claim=str(status.get("claimName")),
        path=str(status["path"]),
        embedder_claim=str(cache.get("claimName")),
        embedder_path=str(cache.get("path")),
    )


def _adapter_of(model: Mapping[str, Any] | None) -> str:
    """The base model an adapter-only FoundationModel (a LoRA output, not merged) belongs to."""
    labels = (model or {}).get("metadata", {}).get("labels") or {}
    return str(labels.get("drover.dev/adapter-of", ""))


def present_claims(namespace: str, claims: Iterable[str]) -> set[str]:
    """Those of `claims` that exist and are not being deleted."""
    present = set()
    for claim in claims:
        pvc = children.get_object("PersistentVolumeClaim", namespace, claim)
        if pvc is not None and not (pvc.get("metadata") or {}).get("deletionTimestamp"):
            present.add(claim)
    return present
