"""The floor of bench/reconcile.py: a bare kopf operator making the same children as Drover — a
cache claim and a fetch RayJob per FoundationModel, a RayService per InferenceService once its
model is Ready — as minimal manifests, with the same Kubernetes client, and nothing else (no
conditions, no parsing, no builders, no timers: it reacts to its children's status events).

Run by the benchmark: `python bench/_bare_kopf.py` with KUBECONFIG and BARE_NAMESPACE set.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf
import kubernetes
from kubernetes import client
from kubernetes.client.exceptions import ApiException

G, V = "drover.dev", "v1alpha1"
NS = os.environ.get("BARE_NAMESPACE", "default")
RAY_TEMPLATE = {
    "rayStartParams": {},
    "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.40.0"}]}},
}


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.INFO
    kubernetes.config.load_kube_config()


def _create(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except ApiException as exc:
        if exc.status != 409:  # exists already: a re-run after a restart
            raise


def _child(kind: str, api_version: str, name: str, parent: str, body: Any) -> dict[str, Any]:
    doc = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "labels": {"bench/parent": parent}},
    }
    kopf.adopt(doc, owner=body)
    return doc


@kopf.on.resume(G, V, "foundationmodels")
@kopf.on.create(G, V, "foundationmodels")
def model_created(body: kopf.Body, name: str, **_: Any) -> None:
    claim = _child("PersistentVolumeClaim", "v1", f"{name}-cache", name, body)
    claim["spec"] = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    _create(client.CoreV1Api().create_namespaced_persistent_volume_claim, NS, claim)
    job = _child("RayJob", "ray.io/v1", f"{name}-fetch", name, body)
    job["spec"] = {
        "entrypoint": "python -m drover_workers.fetch",
        "rayClusterSpec": {"headGroupSpec": RAY_TEMPLATE},
    }
    _create(
        client.CustomObjectsApi().create_namespaced_custom_object,
        "ray.io",
        "v1",
        NS,
        "rayjobs",
        job,
    )


@kopf.on.field("ray.io", "v1", "rayjobs", field="status.jobDeploymentStatus")
def job_progressed(new: Any, labels: kopf.Labels, **_: Any) -> None:
    if new == "Complete" and "bench/parent" in labels:
        client.CustomObjectsApi().patch_namespaced_custom_object_status(
            G, V, NS, "foundationmodels", labels["bench/parent"], {"status": {"phase": "Ready"}}
        )


@kopf.index(G, V, "inferenceservices")
def services_by_model(spec: kopf.Spec, name: str, **_: Any) -> dict[str, str]:
    return {spec["model"]["name"]: name}


def _serve(service: str) -> None:
    body = client.CustomObjectsApi().get_namespaced_custom_object(
        G, V, NS, "inferenceservices", service
    )
    rs = _child("RayService", "ray.io/v1", service, service, body)
    rs["spec"] = {
        "serveConfigV2": f"applications:\n- name: {service}\n  import_path: router:app\n"
        "  route_prefix: /\n",
        "rayClusterConfig": {"headGroupSpec": RAY_TEMPLATE},
    }
    _create(
        client.CustomObjectsApi().create_namespaced_custom_object,
        "ray.io",
        "v1",
        NS,
        "rayservices",
        rs,
    )


@kopf.on.field(G, V, "foundationmodels", field="status.phase")
def model_ready(new: Any, name: str, services_by_model: kopf.Index[str, str], **_: Any) -> None:
    if new == "Ready":
        for service in services_by_model.get(name, []):
            _serve(service)


@kopf.on.resume(G, V, "inferenceservices")
@kopf.on.create(G, V, "inferenceservices")
def service_created(spec: kopf.Spec, name: str, patch: kopf.Patch, **_: Any) -> None:
    model = client.CustomObjectsApi().get_namespaced_custom_object(
        G, V, NS, "foundationmodels", spec["model"]["name"]
    )
    if (model.get("status") or {}).get("phase") == "Ready":
        _serve(name)
    else:
        patch.status["phase"] = "WaitingForModel"


@kopf.on.field("ray.io", "v1", "rayservices", field="status.serviceStatus")
def service_progressed(new: Any, labels: kopf.Labels, **_: Any) -> None:
    if new == "Running" and "bench/parent" in labels:
        client.CustomObjectsApi().patch_namespaced_custom_object_status(
            G, V, NS, "inferenceservices", labels["bench/parent"], {"status": {"phase": "Ready"}}
        )


if __name__ == "__main__":
    kopf.configure(verbose=False)
    kopf.run(standalone=True, namespaces=[NS])
