"""The Ray executor reports Serve's scaling statuses as KubeRay v1.7.0 does: verbatim.

KubeRay copies each Serve application's and deployment's status string from the dashboard into
`activeServiceStatus.applicationStatuses` without mapping it (ray-operator/controllers/ray/
rayservice_controller.go, `getAndCheckServeStatus`, "Copy deployment statuses", v1.7.0), so a
`num_replicas` change shows the deployment UPSCALING / DOWNSCALING and the application DEPLOYING
(Ray Serve 2.60, `DeploymentStatusInfo.handle_transition`), and the RayService stays Ready (its
Ready condition counts serve endpoints, `calculateConditions`).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sandbox.tests.local.helpers import assert_valid_status

from drover_sandbox.rayexec import servestate
from drover_sandbox.rayexec.servestate import ServeApps

NOW = dt.datetime(2026, 11, 22, 8, 0, 0, tzinfo=dt.UTC)
APP = "ns--svc--svc-v1"


def rayservice(status: dict | None = None) -> dict:
    return {"metadata": {"name": "svc", "namespace": "ns", "generation": 1}, "status": status or {}}


def serve_apps(app_status: str, deployment_status: str) -> dict:
    """Serve's `GET /api/serve/applications/` `applications` entry for the version app."""
    return {
        APP: {
            "status": app_status,
            "message": "",
            "deployments": {"model": {"status": deployment_status, "message": "scaling"}},
        }
    }


APPS = ServeApps({APP: ("svc-v1", {"name": APP})})


@pytest.mark.parametrize(
    ("app_status", "deployment_status"),
    [("DEPLOYING", "UPSCALING"), ("DEPLOYING", "DOWNSCALING"), ("RUNNING", "UPSCALING")],
)
def test_scaling_statuses_pass_through_verbatim_and_ready_stays(
    app_status, deployment_status
) -> None:
    running = servestate.next_rayservice_status(
        rayservice(), APPS, serve_apps("RUNNING", "HEALTHY"), now=NOW
    )
    scaling = servestate.next_rayservice_status(
        rayservice(running), APPS, serve_apps(app_status, deployment_status), now=NOW
    )
    app = scaling["activeServiceStatus"]["applicationStatuses"]["svc-v1"]
    assert app["status"] == app_status
    assert app["serveDeploymentStatuses"]["model"] == {
        "status": deployment_status,
        "message": "scaling",
    }
    ready = next(c for c in scaling["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert_valid_status("rayservices", scaling)
