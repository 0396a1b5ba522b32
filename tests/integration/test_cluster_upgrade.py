"""While KubeRay replaces a RayService's cluster, the InferenceService keeps what it knew.

KubeRay v1.7.0 rayservice_controller.go: `Reconcile` stops reconciling the active cluster's Serve
applications once `rayClusterConfig` changed beyond replica counts, `calculateStatus` then
reports none of them, and `calculateConditions` sets UpgradeInProgress while a pending cluster
exists. An empty application list must not read as "no version is healthy".
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from tests.integration.conftest import wait_for
from tests.integration.serving_support import DIGEST_A, create_service, ready_model, serve_config
from tests.integration.support import kuberay_status, status_of

from drover.api.versions import version_app, version_id

SVC = "chat"


def _status(name: str, apps: dict[str, Any], pending: str = "") -> dict[str, Any]:
    upgrading = bool(pending)
    body = kuberay_status(name, apps)
    status = body["status"]
    status["conditions"].append(
        {
            "type": "UpgradeInProgress",
            "status": "True" if upgrading else "False",
            "reason": "BothActivePendingClustersExist" if upgrading else "NoPendingCluster",
            "message": "",
            "lastTransitionTime": "2026-11-22T12:00:00Z",
        }
    )
    status["activeServiceStatus"]["rayClusterName"] = f"{name}-old12"
    if pending:  # the active cluster's applications are not reported during an upgrade
        status["activeServiceStatus"]["applicationStatuses"] = None  # merge patch: removed
        status["pendingServiceStatus"] = {"rayClusterName": pending}
    return body


def test_a_cluster_upgrade_holds_serving_status_instead_of_losing_version_health(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    app = version_app(SVC, version_id(DIGEST_A))
    start_operator()
    ready_model(k8s_api, namespace, "tiny-llama", dashboard, DIGEST_A)
    create_service(k8s_api, namespace, SVC)
    wait_for("the RayService", lambda: serve_config(k8s_api, namespace, SVC))
    api = client.CustomObjectsApi(k8s_api)
    running = {SVC: ("RUNNING", "router", "HEALTHY"), app: ("RUNNING", "model", "HEALTHY")}
    api.patch_namespaced_custom_object_status(
        "ray.io", "v1", namespace, "rayservices", SVC, _status(SVC, running)
    )

    def serving(reason: str) -> dict[str, Any] | None:
        status = status_of(k8s_api, "inferenceservices", namespace, SVC)
        cond = next((c for c in status.get("conditions") or () if c["type"] == "ServingReady"), {})
        return status if cond.get("reason") == reason and status.get("phase") == "Ready" else None

    before = wait_for("the service Ready", lambda: serving("Serving"))
    api.patch_namespaced_custom_object_status(
        "ray.io", "v1", namespace, "rayservices", SVC, _status(SVC, running, pending=f"{SVC}-new34")
    )
    during = wait_for("ServingReady held for the upgrade", lambda: serving("RayClusterUpgrade"))
    cond = next(c for c in during["conditions"] if c["type"] == "ServingReady")
    assert cond["status"] == "True" and f"{SVC}-new34" in cond["message"]
    assert during["stable"] == before["stable"], "version health and weights are kept"
