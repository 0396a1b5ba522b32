"""Helpers of the operator's integration tests: the pipeline examples as objects, reads, and
KubeRay's part — RayJob and RayService status written as KubeRay v1.7.0 writes it — plus the
`::drover::` lines a worker prints, served by the test's Ray-dashboard stand-in.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from kubernetes import client
from tests.integration.conftest import ROOT, wait_for

G, V = "drover.dev", "v1alpha1"
PIPELINE = ROOT / "examples" / "pipeline"
DIGEST = "sha256:" + "ab" * 32


def line(kind: str, record: dict[str, Any]) -> str:
    """One line of a worker's report, as the workers print it."""
    return f"::drover::{kind} {json.dumps(record)}\n"


def manifest(name: str, namespace: str, **spec_changes: Any) -> dict[str, Any]:
    doc = yaml.safe_load((PIPELINE / name).read_text())
    doc["metadata"]["namespace"] = namespace
    doc["spec"].update(copy.deepcopy(spec_changes))
    return dict(doc)


def service_without_retrieval(namespace: str, **spec_changes: Any) -> dict[str, Any]:
    """The pipeline's InferenceService with no VectorIndex, for tests about serving alone."""
    svc = manifest("04-service.yaml", namespace, **spec_changes)
    del svc["spec"]["retrieval"]
    return svc


def create(api: client.ApiClient, doc: dict[str, Any]) -> None:
    plural = {
        "FoundationModel": "foundationmodels",
        "FineTuneJob": "finetunejobs",
        "VectorIndex": "vectorindexes",
        "InferenceService": "inferenceservices",
    }[doc["kind"]]
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        G, V, doc["metadata"]["namespace"], plural, doc
    )


def get(
    api: client.ApiClient, plural: str, ns: str, name: str, group: str = G, version: str = V
) -> dict[str, Any]:
    return dict(
        client.CustomObjectsApi(api).get_namespaced_custom_object(group, version, ns, plural, name)
    )


def status_of(api: client.ApiClient, plural: str, ns: str, name: str) -> dict[str, Any]:
    return get(api, plural, ns, name).get("status") or {}


def rayjobs(api: client.ApiClient, ns: str) -> list[dict[str, Any]]:
    return list(
        client.CustomObjectsApi(api).list_namespaced_custom_object("ray.io", "v1", ns, "rayjobs")[
            "items"
        ]
    )


def kuberay_job_status(
    api: client.ApiClient,
    ns: str,
    name: str,
    dashboard: str,
    *,
    deployment: str,
    job: str,
    job_id: str | None = None,
    end_time: str | None = None,
) -> None:
    """Write a RayJob's status the way KubeRay v1.7.0 does (`endTime` once Complete/Failed)."""
    body = {
        "status": {
            "jobDeploymentStatus": deployment,
            "jobStatus": job,
            "jobId": job_id or f"{ns}-{name}",
            "dashboardURL": dashboard,
            "rayClusterName": f"{name}-raycluster",
            "startTime": "2026-11-22T12:00:00Z",
            **({"endTime": end_time} if end_time else {}),
        }
    }
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        "ray.io", "v1", ns, "rayjobs", name, body
    )


def finish_fetch(
    api: client.ApiClient, ns: str, job: dict[str, Any], dashboard: Any, digest: str = DIGEST
) -> None:
    name = job["metadata"]["name"]
    model = job["metadata"]["labels"]["drover.dev/foundationmodel"]
    dashboard.logs[f"{ns}-{name}"] = (
        '::drover::progress {"phase": "downloading", "bytes": 10, "totalBytes": 10}\n'
        + line(
            "result", {"digest": digest, "path": f"{model}/{digest[7:19]}", "sizeBytes": 4000000}
        )
    )
    kuberay_job_status(api, ns, name, dashboard.address, deployment="Complete", job="SUCCEEDED")


def ready_model(api: client.ApiClient, ns: str, name: str, dashboard: Any) -> None:
    """Drive a FoundationModel to Ready through its fetch RayJob."""
    job = wait_for(
        f"the fetch RayJob of {name}",
        lambda: next(
            (
                j
                for j in rayjobs(api, ns)
                if j["metadata"]["labels"].get("drover.dev/foundationmodel") == name
            ),
            None,
        ),
    )
    finish_fetch(api, ns, job, dashboard)
    wait_for(
        f"{name} Ready",
        lambda: status_of(api, "foundationmodels", ns, name).get("phase") == "Ready",
    )


def events_for(api: client.ApiClient, ns: str, name: str) -> list[str]:
    items = client.CoreV1Api(api).list_namespaced_event(ns).items
    return [f"{e.reason}: {e.message}" for e in items if e.involved_object.name == name]


def kuberay_status(
    name: str, apps: dict[str, tuple[str, str, str]], **extra: Any
) -> dict[str, Any]:
    """A Ready RayService status as KubeRay v1.7.0 writes it: `apps` maps each Serve application
    to (application status, its deployment, that deployment's status); `extra` adds or replaces
    top-level status fields (observedGeneration, conditions, pendingServiceStatus, ...)."""
    status: dict[str, Any] = {
        "serviceStatus": "Running",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "NonZeroServeEndpoints",
                "message": "",
                "lastTransitionTime": "2026-11-22T12:00:00Z",
            }
        ],
        "activeServiceStatus": {
            "rayClusterName": f"{name}-raycluster",
            "applicationStatuses": {
                app: {
                    "status": app_status,
                    "serveDeploymentStatuses": {deployment: {"status": deployment_status}},
                }
                for app, (app_status, deployment, deployment_status) in apps.items()
            },
        },
        "numServeEndpoints": 1,
    }
    return {"status": {**status, **extra}}


def serving_status(api: client.ApiClient, ns: str, name: str, versions: list[str]) -> None:
    """Write the RayService status as KubeRay does when the router application (named after the
    service, as the operator names it) and these versions' applications (`<name>-<version id>`,
    each with its `model` deployment) are RUNNING and HEALTHY, for the RayService's current
    spec (observedGeneration, as KubeRay's calculateStatus sets it)."""
    custom = client.CustomObjectsApi(api)
    current = custom.get_namespaced_custom_object("ray.io", "v1", ns, "rayservices", name)
    apps = {name: ("RUNNING", "router", "HEALTHY")}
    apps |= {f"{name}-{v}": ("RUNNING", "model", "HEALTHY") for v in versions}
    body = kuberay_status(name, apps, observedGeneration=current["metadata"].get("generation", 1))
    custom.patch_namespaced_custom_object_status("ray.io", "v1", ns, "rayservices", name, body)
