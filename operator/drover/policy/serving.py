"""Policy layer: what a RayService's status says about an InferenceService's versions.

Pure. KubeRay reports Ray Serve's own statuses per application and deployment; a version is
ready when its deployment (`model-<id>`) is HEALTHY, and serving is ready when the RayService is
Ready and the stable version is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drover.policy.conditions import Cond


def deployment_statuses(rayservice: Mapping[str, Any] | None, app: str) -> dict[str, str]:
    """Deployment name → Serve status (HEALTHY, UPDATING, UNHEALTHY, ...) of one application."""
    status = (rayservice or {}).get("status") or {}
    apps = (status.get("activeServiceStatus") or {}).get("applicationStatuses") or {}
    deployments = (apps.get(app) or {}).get("serveDeploymentStatuses") or {}
    return {name: str((d or {}).get("status", "")) for name, d in deployments.items()}


def application_status(rayservice: Mapping[str, Any] | None, app: str) -> tuple[str, str]:
    status = (rayservice or {}).get("status") or {}
    apps = (status.get("activeServiceStatus") or {}).get("applicationStatuses") or {}
    entry = apps.get(app) or {}
    return str(entry.get("status", "")), str(entry.get("message", ""))


def rayservice_ready(rayservice: Mapping[str, Any] | None) -> bool:
    status = (rayservice or {}).get("status") or {}
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return bool(status.get("serviceStatus") == "Running")


def decide_serving(
    rayservice: Mapping[str, Any] | None, app: str, stable_deployment: str | None
) -> Cond:
    """ServingReady: the RayService is Ready and the stable version's deployment is HEALTHY."""
    if rayservice is None:
        return Cond("ServingReady", None, "Deploying", "creating the RayService")
    app_status, app_message = application_status(rayservice, app)
    if app_status in ("DEPLOY_FAILED", "UNHEALTHY"):
        return Cond(
            "ServingReady",
            False,
            "ServingFailed",
            f"Serve application {app} is {app_status}: {app_message}".rstrip(": "),
        )
    healthy = deployment_statuses(rayservice, app).get(stable_deployment or "") == "HEALTHY"
    if rayservice_ready(rayservice) and healthy:
        return Cond("ServingReady", True, "Serving", f"Serve application {app} is running")
    return Cond(
        "ServingReady",
        None,
        "Deploying",
        f"waiting for Serve application {app} ({app_status or 'not deployed yet'})",
    )
