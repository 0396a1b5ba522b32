"""Builders layer: an InferenceService's RayService — Serve config plus the Ray cluster.

What changes often (versions, weights, replica counts) lives only in `serveConfigV2`, which
KubeRay applies in place; `rayClusterConfig` changes only when placement or volumes do, because
a new Ray cluster doubles GPU use while KubeRay upgrades.

`serveConfigV2` holds a router application `<svc>` whose args never change in a rollout, and one
application `<svc>-<engine id>` per set of live base weights: one vLLM engine serves its base
version and every LoRA version on that base (the adapter is applied per request), so a LoRA
canary adds no replica. Serve hashes an application's args into the code version of its
deployments, so adding or removing base weights adds or deletes an application and never
restarts the router or another version's replicas; LoRA versions come and go in place, through
the router's and the engine's `user_config`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from drover.api.common import quantity_bytes
from drover.api.inferenceservice import Dtype, InferenceService, ReplicaRouting, RuntimeSpec
from drover.api.versions import MODEL_DEPLOYMENT, ROUTER_DEPLOYMENT, version_app
from drover.builders.engine import engine_deployment_options, kv_cache_bytes
from drover.builders.feedback import build_feedback_args, feedback_claims
from drover.builders.meta import Manifest, model_mount_path
from drover.builders.names import kuberay_name
from drover.builders.raycluster import (
    ContainerImage,
    Mount,
    Placement,
    WorkerGroup,
    build_ray_cluster_spec,
    claim_resources,
    secret_path,
    with_claim_resources,
)
from drover.builders.serving_plans import (
    EnginePlan,
    IndexPlan,
    VersionPlan,
    adapter_path_of,
    engine_claims,
    needed_claims,
    plan_engines,
)

ROUTER_IMPORT_PATH = "drover_workers.serve.app:build_router"
MODEL_IMPORT_PATH = "drover_workers.serve.app:build_model"
# Ray Serve request routers of a model deployment, per spec.runtime.replicaRouting.
REQUEST_ROUTER_CLASSES = {
    ReplicaRouting.PREFIX_AWARE: "drover_workers.serve.replica_router:PrefixAffinityRouter",
    ReplicaRouting.POWER_OF_TWO_CHOICES: (
        "ray.serve._private.request_router:PowerOfTwoChoicesRequestRouter"
    ),
}
ROUTING_STATS_PERIOD_S = 1.0  # how often Serve pulls each replica's engine load
SERVE_PORT = 8000
API_KEYS_ENV = "DROVER_API_KEYS"
STARTUP_DELAY = "startupDelaySeconds"  # the one fault that acts when a replica starts


def rayservice_name(svc: InferenceService) -> str:
    return kuberay_name(svc.name)


def _service_ref(svc: InferenceService) -> dict[str, str]:
    return {"name": svc.name, "namespace": svc.namespace or "default"}


def build_router_args(svc: InferenceService, index: IndexPlan | None) -> dict[str, Any]:
    """The router application's `args` (drover_workers.serve.config.RouterArgs): nothing a
    rollout changes, so the router keeps its replicas through every rollout."""
    rt = svc.spec.runtime
    args: dict[str, Any] = {
        "service": _service_ref(svc),
        "runtime": {
            "maxTokens": rt.max_tokens,
            "maxQueuedRequests": rt.max_concurrent_requests,
            # The router's handles keep the request router they were built with, so a change
            # of replicaRouting must restart the router (its args) as well as the engines.
            "replicaRouting": rt.replica_routing.value,
        },
    }
    autoscaling = svc.spec.autoscaling
    if autoscaling is not None and autoscaling.scale_to_zero.enabled:
        args["runtime"]["holdSeconds"] = autoscaling.scale_to_zero.hold_seconds
    if index is not None and svc.spec.retrieval is not None:
        args["retrieval"] = {
            "indexPath": f"{model_mount_path(index.claim)}/{index.path}",
            "embedderPath": f"{model_mount_path(index.embedder_claim)}/{index.embedder_path}",
            "topK": svc.spec.retrieval.top_k,
        }
    if svc.spec.auth is not None:
        ref = svc.spec.auth.api_key_secret_ref
        args["auth"] = {"apiKeysFile": secret_path(ref.name, ref.key)}
    if (feedback := build_feedback_args(svc)) is not None:
        args["feedback"] = feedback
    return args


def build_engine_args(rt: RuntimeSpec, kv_cache: int | None = None) -> dict[str, Any]:
    """The version's vLLM engine arguments, camelCase (drover_workers.serve.config.RuntimeSpec);
    an unset value is left out so that vLLM's own default applies. `kv_cache` is the KV cache
    size in bytes (engine.kv_cache_bytes: the spec's, or the CPU-class default)."""
    args: dict[str, Any] = {
        "maxNumSeqs": rt.max_num_seqs,
        "maxModelLen": rt.max_model_len,
        "dtype": rt.dtype.value if rt.dtype is not Dtype.AUTO else None,
        "quantization": rt.quantization.value if rt.quantization else None,
        "gpuMemoryUtilization": rt.gpu_memory_utilization,
        "kvCacheMemoryBytes": kv_cache
        or (quantity_bytes(rt.kv_cache_memory) if rt.kv_cache_memory else None),
        "enablePrefixCaching": rt.enable_prefix_caching,
        "enableChunkedPrefill": rt.enable_chunked_prefill,
        "tensorParallelSize": rt.tensor_parallel_size,
        "pipelineParallelSize": rt.pipeline_parallel_size,
        "maxLoraRank": rt.max_lora_rank,
        "maxLoras": rt.max_loras,
    }
    return {k: v for k, v in args.items() if v is not None}


def build_model_args(
    svc: InferenceService, engine: EnginePlan, kv_cache: int | None = None
) -> dict[str, Any]:
    """One version application's `args` (drover_workers.serve.config.ModelArgs): the base
    weights and how to run them. No replica count (a deployment option, so scaling restarts
    nothing) and no LoRA version (they change in place through `user_config`)."""
    base = engine.base
    version: dict[str, Any] = {
        "name": engine.id,
        "model": base.base_model,
        "modelPath": f"{model_mount_path(base.claim)}/{base.path}",
        "digest": base.digest,
    }
    args: dict[str, Any] = {
        "service": _service_ref(svc),
        "version": version,
        "runtime": build_engine_args(svc.spec.runtime, kv_cache),
    }
    startup = (engine.own.faults or {}).get(STARTUP_DELAY) if engine.own is not None else None
    if startup:  # only what acts at start; the rest changes in place (user_config)
        args["faults"] = {STARTUP_DELAY: startup}
    return args


def build_model_user_config(engine: EnginePlan) -> dict[str, Any] | None:
    """The engine's in-place settings: faults of its own version (tests only) and each LoRA
    version on it with its adapter and faults. In place, so a fault or a LoRA canary never
    restarts the engine (which may serve the stable version). None when there is nothing."""
    own = {
        k: v
        for k, v in ((engine.own.faults or {}) if engine.own is not None else {}).items()
        if k != STARTUP_DELAY
    }
    adapters: dict[str, Any] = {}
    for v in engine.adapters:
        adapters[v.id] = {"adapterPath": adapter_path_of(v)}
        if v.faults:
            adapters[v.id]["faults"] = {k: x for k, x in v.faults.items() if k != STARTUP_DELAY}
    if not own and not adapters:
        return None
    return {"faults": own, "adapters": adapters}


def build_request_router_config(svc: InferenceService, engine_id: str) -> dict[str, Any]:
    """The model deployment's `request_router_config`: which Serve request router picks one of
    its replicas (spec.runtime.replicaRouting), with the labels of its routing metric. A change
    restarts the application's replicas: Serve hashes a declarative deployment's
    request_router_config into the application's code version (ray/serve/_private/deploy_utils.py
    get_app_code_version)."""
    routing = svc.spec.runtime.replica_routing
    config: dict[str, Any] = {"request_router_class": REQUEST_ROUTER_CLASSES[routing]}
    if routing is ReplicaRouting.PREFIX_AWARE:
        ref = _service_ref(svc)
        labels = {"service": ref["name"], "namespace": ref["namespace"], "version": engine_id}
        config["request_router_kwargs"] = labels
        config["request_routing_stats_period_s"] = ROUTING_STATS_PERIOD_S
    return config


def build_router_user_config(versions: Sequence[VersionPlan]) -> dict[str, Any]:
    """The router's in-place settings: the live versions, their traffic weights, and where each
    LoRA version runs (its base's engine and its adapter)."""
    routes = {
        v.id: {"engine": v.engine_id, "adapterPath": adapter_path_of(v)}
        for v in versions
        if v.adapter_path
    }
    return {
        "versions": [v.id for v in versions],
        "weights": {v.id: v.weight for v in versions},
        **({"routes": routes} if routes else {}),
    }


def engine_routes(serve_config: Mapping[str, Any], service: str) -> dict[str, str]:
    """Version id → engine id of the LoRA versions a deployed Serve config routes (read back from
    the router's user_config: the versions that have no application of their own)."""
    for app in serve_config.get("applications") or ():
        if app.get("name") != service:
            continue
        for deployment in app.get("deployments") or ():
            if deployment.get("name") == ROUTER_DEPLOYMENT:
                routes = (deployment.get("user_config") or {}).get("routes") or {}
                return {v: str(r.get("engine", "")) for v, r in routes.items()}
    return {}


def build_serve_config(
    svc: InferenceService,
    versions: Sequence[VersionPlan],
    index: IndexPlan | None,
    *,
    placement: Placement,
    route_prefix: str = "/",
    replica_cpus: float = 1.0,
) -> dict[str, Any]:
    """`serveConfigV2` as a dict: the router application, then one application per engine."""
    options = engine_deployment_options(svc.spec.runtime, placement, replica_cpus=replica_cpus)
    kv_cache = kv_cache_bytes(svc.spec.runtime, placement, replica_cpus=replica_cpus)
    router_deployment: dict[str, Any] = {
        "name": ROUTER_DEPLOYMENT,
        "num_replicas": 1,
        "user_config": build_router_user_config(versions),
    }
    # The router reads the index and writes feedback: a pod that mounts their claims.
    read = {index.claim, index.embedder_claim} if index is not None else set()
    if read | feedback_claims(svc):
        resources = claim_resources(read | feedback_claims(svc))
        router_deployment["ray_actor_options"] = {"resources": resources}
    router = {
        "name": svc.name,
        "route_prefix": route_prefix,
        "import_path": ROUTER_IMPORT_PATH,
        "args": build_router_args(svc, index),
        "deployments": [router_deployment],
    }
    models = []
    for engine in plan_engines(versions):
        deployment: dict[str, Any] = {
            "name": MODEL_DEPLOYMENT,
            **replica_count(engine.replicas),
            # Serve's own back-pressure: requests beyond this wait in the router.
            "max_ongoing_requests": svc.spec.runtime.max_concurrent_requests,
            "request_router_config": build_request_router_config(svc, engine.id),
            **with_claim_resources(options, engine_claims(engine)),
        }
        user_config = build_model_user_config(engine)
        if user_config is not None:
            deployment["user_config"] = user_config
        models.append(
            {
                "name": version_app(svc.name, engine.id),
                "route_prefix": None,  # reached only through the router's handles
                "import_path": MODEL_IMPORT_PATH,
                "args": build_model_args(svc, engine, kv_cache),
                "deployments": [deployment],
            }
        )
    return {"applications": [router, *models]}


def replica_count(replicas: int) -> dict[str, Any]:
    """A model deployment's replica count in Serve's config. Serve's schema refuses
    `num_replicas: 0` (ray/serve/schema.py DeploymentSchema: PositiveInt, a 400 from the
    dashboard's REST API), so zero is Serve's own autoscaling held at zero: min 0, max 1, no
    initial replica. Nothing sends to a version at zero (the router holds its requests, counted
    in flight, until the operator's autoscaler orders replicas), so Serve never scales it up by
    itself; the next count the operator orders replaces the autoscaling_config in place."""
    if replicas > 0:
        return {"num_replicas": replicas}
    return {"autoscaling_config": {"min_replicas": 0, "initial_replicas": 0, "max_replicas": 1}}


# Ray Serve's high-throughput mode (Ray >= 2.55; KubeRay's guide "Enable High Throughput on Ray
# Serve"): HAProxy is each pod's port-8000 ingress and forwards straight to the router replicas'
# own HTTP servers, replicas call each other over gRPC, and user code runs on the replica's main
# loop. bench/serving.py measures the router's overhead on this path. `env` can override either.
SERVE_RUNTIME_ENV = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1"}


def plan_worker_groups(
    class_name: str, existing: Sequence[WorkerGroup], needed: set[str], present: set[str]
) -> list[WorkerGroup]:
    """The serving cluster's worker groups, so that a rollout never rebuilds the cluster.

    A pod's volumes are part of `rayClusterConfig`, and KubeRay builds a whole new cluster when
    it changes, except when worker groups are only appended (ray-operator/controllers/ray/
    rayservice_controller.go, `shouldPrepareNewCluster` / `isClusterSpecHashEqual` with
    `partial`: the running cluster is updated in place). So the groups stay as they are while
    one of them mounts every needed claim; a version on a new claim appends a group mounting
    all of them; a drained version's group stays (its pods scale to zero). A fresh single group
    replaces them all only when a rebuild cannot be avoided anyway: another accelerator class,
    or a kept claim that no longer exists (`present`), with which a new pod could not start."""
    fresh = [WorkerGroup(class_name, tuple(sorted(needed)))]
    if not existing or existing[0].name != class_name:
        return fresh
    if any(claim not in present for group in existing for claim in group.claims):
        return fresh
    if any(needed <= set(group.claims) for group in existing):
        return list(existing)
    return [*existing, WorkerGroup(f"{class_name}-{len(existing)}", tuple(sorted(needed)))]


def existing_worker_groups(rayservice: Mapping[str, Any] | None) -> list[WorkerGroup]:
    """The worker groups of an existing RayService and the claims their pods mount."""
    config = ((rayservice or {}).get("spec") or {}).get("rayClusterConfig") or {}
    groups = []
    for group in config.get("workerGroupSpecs") or []:
        volumes = ((group.get("template") or {}).get("spec") or {}).get("volumes") or []
        claims = [v["persistentVolumeClaim"] for v in volumes if "persistentVolumeClaim" in v]
        groups.append(
            WorkerGroup(str(group.get("groupName")), tuple(str(c["claimName"]) for c in claims))
        )
    return groups


def build_rayservice(
    svc: InferenceService,
    versions: Sequence[VersionPlan],
    index: IndexPlan | None,
    *,
    placement: Placement,
    image: ContainerImage | str,
    route_prefix: str = "/",
    replica_cpus: float = 1.0,
    env: Mapping[str, str] = {},
    groups: Sequence[WorkerGroup] | None = None,
) -> Manifest:
    """The RayService (unstamped: see meta.stamp). `groups` are its worker groups (see
    `plan_worker_groups`); by default one, mounting what the versions and the index need."""
    if not groups:
        needed = needed_claims(versions, index) | feedback_claims(svc)
        groups = [WorkerGroup(placement.class_name, tuple(sorted(needed)))]
    # Serve replicas run on the workers; the head runs Serve's controller and proxy only. Only
    # the feedback claim is written (by the router).
    claims = sorted({claim for group in groups for claim in group.claims})
    written = feedback_claims(svc)
    mounts = [Mount(claim, read_only=claim not in written, on_head=False) for claim in claims]
    secrets = [svc.spec.auth.api_key_secret_ref.name] if svc.spec.auth else []
    # One worker pod per replica: a pod offers `placement.count` devices, all one replica's
    # engine needs (tensor x pipeline parallel equals the count), so STRICT_PACK fits one pod.
    cluster = build_ray_cluster_spec(
        image=image,
        placement=placement,
        mounts=mounts,
        secrets=secrets,
        workers=svc.spec.replicas.min,
        # Room for a canary beside the stable version during a rollout.
        max_workers=svc.spec.replicas.max * 2,
        env={**SERVE_RUNTIME_ENV, **env},
        autoscaling=True,
        serve=True,
        groups=groups,
    )
    serve_config = build_serve_config(
        svc,
        versions,
        index,
        placement=placement,
        route_prefix=route_prefix,
        replica_cpus=replica_cpus,
    )
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": rayservice_name(svc)},
        "spec": {
            "serveConfigV2": yaml.safe_dump(serve_config, sort_keys=False),
            "rayClusterConfig": cluster,
            "upgradeStrategy": {"type": "NewCluster"},
        },
    }


def serve_config_of(rayservice: Mapping[str, Any]) -> dict[str, Any]:
    """The Serve config a RayService carries (the inverse of build_serve_config's dump)."""
    raw = (rayservice.get("spec") or {}).get("serveConfigV2") or "{}"
    value = yaml.safe_load(raw)
    return value if isinstance(value, dict) else {}
