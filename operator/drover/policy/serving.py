"""Policy layer: what a RayService's status says about an InferenceService's versions.

Pure. KubeRay reports Ray Serve's own statuses per application and deployment. The service is a
router application `<svc>` plus one application `<svc>-<engine id>` per set of base weights
(LoRA versions run on their base's engine); a version is ready when the `model` deployment that
serves it serves (HEALTHY, or scaling from HEALTHY), and serving is ready when the RayService is
Ready, the router serves and the stable version is ready. Replica counts come from Prometheus,
never from the RayService (KubeRay's status carries none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drover.api.inferenceservice import ReplicaStatus
from drover.api.reasons import InferenceServiceReason
from drover.api.versions import MODEL_DEPLOYMENT, ROUTER_DEPLOYMENT
from drover.policy.conditions import Cond

# Ray Serve's DeploymentStatus (ray/serve/_private/common.py, Ray 2.60): UPDATING, HEALTHY,
# UNHEALTHY, DEPLOY_FAILED, UPSCALING, DOWNSCALING. With a fixed num_replicas (Drover's), a
# deployment goes UPSCALING/DOWNSCALING only from HEALTHY or from scaling
# (`DeploymentStatusInfo.handle_transition`, MANUALLY_INCREASE/DECREASE_NUM_REPLICAS; from
# UPDATING the status stays UPDATING): its running replicas keep serving while replicas are added
# or removed. KubeRay copies the strings verbatim (v1.7.0 rayservice_controller.go,
# `getAndCheckServeStatus`, "Copy deployment statuses").
SERVING_STATUSES = frozenset({"HEALTHY", "UPSCALING", "DOWNSCALING"})


def serves(status: str | None, *, was_serving: bool = False) -> bool:
    """Whether a Serve deployment in `status` answers requests on its running replicas.

    UPDATING counts only for a deployment that served before (`was_serving`): Serve applies a
    user_config in place on the running replicas (`reconfigure`) and replaces replicas of a new
    version while the old ones serve, so an update does not take a serving version out of
    service; a deployment that never served is UPDATING while its first replicas start."""
    return status in SERVING_STATUSES or (was_serving and status == "UPDATING")


def _applications(rayservice: Mapping[str, Any] | None) -> Mapping[str, Any]:
    status = (rayservice or {}).get("status") or {}
    return (status.get("activeServiceStatus") or {}).get("applicationStatuses") or {}


def deployment_statuses(rayservice: Mapping[str, Any] | None, app: str) -> dict[str, str]:
    """Deployment name → Serve status (HEALTHY, UPSCALING, UPDATING, ...) of one application."""
    deployments = (_applications(rayservice).get(app) or {}).get("serveDeploymentStatuses") or {}
    return {name: str((d or {}).get("status", "")) for name, d in deployments.items()}


def version_statuses(
    rayservice: Mapping[str, Any] | None, service: str, routes: Mapping[str, str] = {}
) -> dict[str, str]:
    """Version id → Serve status of the `model` deployment that serves it: every version
    application (`<service>-<id>`) the RayService reports, and each LoRA version in `routes`
    (version id → the engine id whose application serves it) with its engine's status."""
    prefix = f"{service}-"
    statuses = {
        app[len(prefix) :]: status
        for app in _applications(rayservice)
        if app.startswith(prefix)
        and (status := deployment_statuses(rayservice, app).get(MODEL_DEPLOYMENT)) is not None
    }
    for version, engine in routes.items():
        if engine in statuses:
            statuses[version] = statuses[engine]
    return statuses


def application_status(rayservice: Mapping[str, Any] | None, app: str) -> tuple[str, str]:
    entry = _applications(rayservice).get(app) or {}
    return str(entry.get("status", "")), str(entry.get("message", ""))


def router_current(rayservice: Mapping[str, Any] | None, router_app: str) -> bool:
    """Whether the router runs the Serve config the RayService's spec holds now, so a version
    just added to it is routable: KubeRay's status is of the spec's generation (it sets
    observedGeneration after submitting the config, rayservice_controller.go `calculateStatus`)
    and the router application is RUNNING. Serve marks an application DEPLOYING as it accepts a
    new config (ray/serve/_private/application_state.py, `ApplicationState._set_target_state`),
    RUNNING once its deployments have it."""
    if rayservice is None:
        return False
    generation = int((rayservice.get("metadata") or {}).get("generation") or 0)
    observed = int(((rayservice.get("status") or {}).get("observedGeneration")) or 0)
    return observed >= generation and application_status(rayservice, router_app)[0] == "RUNNING"


def rayservice_ready(rayservice: Mapping[str, Any] | None) -> bool:
    status = (rayservice or {}).get("status") or {}
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return bool(status.get("serviceStatus") == "Running")


def decide_serving(
    rayservice: Mapping[str, Any] | None,
    router_app: str,
    stable_app: str | None,
    *,
    was_serving: bool = False,
) -> Cond:
    """ServingReady: the RayService is Ready, the router serves and the stable version's
    application has a `model` deployment that serves (HEALTHY, UPSCALING or DOWNSCALING; also
    UPDATING when ServingReady was True, see `serves`)."""
    if rayservice is None:
        return Cond(
            "ServingReady", None, InferenceServiceReason.DEPLOYING, "creating the RayService"
        )
    for app in (router_app, stable_app):
        if app is None:
            continue
        app_status, app_message = application_status(rayservice, app)
        if app_status in ("DEPLOY_FAILED", "UNHEALTHY"):
            return Cond(
                "ServingReady",
                False,
                InferenceServiceReason.SERVING_FAILED,
                f"Serve application {app} is {app_status}: {app_message}".rstrip(": "),
            )
    router = deployment_statuses(rayservice, router_app).get(ROUTER_DEPLOYMENT)
    model = deployment_statuses(rayservice, stable_app or "").get(MODEL_DEPLOYMENT)
    steady = {"was_serving": was_serving}
    if rayservice_ready(rayservice) and serves(router, **steady) and serves(model, **steady):
        scaling = "" if model == "HEALTHY" else f" ({stable_app} {model})"
        return Cond(
            "ServingReady",
            True,
            InferenceServiceReason.SERVING,
            f"Serve applications {router_app}, {stable_app} run{scaling}",
        )
    waiting = [
        f"{app} ({application_status(rayservice, app)[0] or 'not deployed yet'})"
        for app in (router_app, stable_app)
        if app is not None
    ]
    return Cond(
        "ServingReady",
        None,
        InferenceServiceReason.DEPLOYING,
        f"waiting for Serve application {', '.join(waiting)}",
    )


def ready_replicas(app: str, healthy: Mapping[str, float] | None) -> int | None:
    """Healthy replicas of one application's `model` deployment as Prometheus counted them
    (`healthy`: application → count, None when Prometheus could not be asked); None: unknown."""
    if healthy is None or app not in healthy:
        return None
    return max(round(healthy[app]), 0)


def replica_status(
    live: Sequence[tuple[str, int]], healthy: Mapping[str, float] | None
) -> ReplicaStatus:
    """`status.replicas` over the live versions, given as (Serve application, replicas ordered):
    versions on one application (a LoRA version on its base's engine) share its replicas. Ready
    is the sum of the healthy counts, and unknown (absent) when any application's is unknown."""
    ordered: dict[str, int] = {}
    for app, replicas in live:
        ordered[app] = max(ordered.get(app, 0), replicas)
    counts = [ready_replicas(app, healthy) for app in ordered]
    total = sum(ordered.values())
    known = [c for c in counts if c is not None]
    ready = sum(known) if len(known) == len(counts) else None
    return ReplicaStatus(desired=total, current=total, ready=ready)
