"""Policy layer: what a RayService's status says about an InferenceService's versions.

Pure. KubeRay reports Ray Serve's own statuses per application and deployment. The service is a
router application `<svc>` plus one application `<svc>-<engine id>` per set of base weights
(LoRA versions run on their base's engine); a version is ready when the `model` deployment that
serves it is HEALTHY, and serving is ready when the
RayService is Ready, the router application runs and the stable version is ready.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drover.api.versions import MODEL_DEPLOYMENT, ROUTER_DEPLOYMENT
from drover.policy.conditions import Cond


def _applications(rayservice: Mapping[str, Any] | None) -> Mapping[str, Any]:
    status = (rayservice or {}).get("status") or {}
    return (status.get("activeServiceStatus") or {}).get("applicationStatuses") or {}


def deployment_statuses(rayservice: Mapping[str, Any] | None, app: str) -> dict[str, str]:
    """Deployment name → Serve status (HEALTHY, UPDATING, UNHEALTHY, ...) of one application."""
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


def rayservice_ready(rayservice: Mapping[str, Any] | None) -> bool:
    status = (rayservice or {}).get("status") or {}
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return bool(status.get("serviceStatus") == "Running")


def decide_serving(
    rayservice: Mapping[str, Any] | None, router_app: str, stable_app: str | None
) -> Cond:
    """ServingReady: the RayService is Ready, the router is HEALTHY and the stable version's
    application has a HEALTHY `model` deployment."""
    if rayservice is None:
        return Cond("ServingReady", None, "Deploying", "creating the RayService")
    for app in (router_app, stable_app):
        if app is None:
            continue
        app_status, app_message = application_status(rayservice, app)
        if app_status in ("DEPLOY_FAILED", "UNHEALTHY"):
            return Cond(
                "ServingReady",
                False,
                "ServingFailed",
                f"Serve application {app} is {app_status}: {app_message}".rstrip(": "),
            )
    router = deployment_statuses(rayservice, router_app).get(ROUTER_DEPLOYMENT)
    model = deployment_statuses(rayservice, stable_app or "").get(MODEL_DEPLOYMENT)
    if rayservice_ready(rayservice) and router == "HEALTHY" and model == "HEALTHY":
        return Cond(
            "ServingReady", True, "Serving", f"Serve applications {router_app}, {stable_app} run"
        )
    waiting = [
        f"{app} ({application_status(rayservice, app)[0] or 'not deployed yet'})"
        for app in (router_app, stable_app)
        if app is not None
    ]
    return Cond(
        "ServingReady", None, "Deploying", f"waiting for Serve application {', '.join(waiting)}"
    )
