"""Every pod Drover defines passes the Pod Security Standard "restricted" (tests/fixtures/
pod_security.py implements Kubernetes' own checks); KubeRay adds no securityContext of its own
(common/pod.go, common/job.go GetDefaultSubmitterTemplate, v1.7.0), so Drover's is all there is."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from tests.fixtures.pod_security import check_restricted
from tests.unit.builders.conftest import READY_BASE, READY_EMBEDDER, kuberay_validator

from drover.builders.finetunejob import build_finetune_rayjob
from drover.builders.foundationmodel import build_fetch_rayjob
from drover.builders.placement import resolve_placement
from drover.builders.raycluster import (
    ContainerImage,
    Placement,
    build_ray_cluster_spec,
)
from drover.builders.rayjob import restricted_submitter_template
from drover.builders.security import RAY_GID, RAY_UID
from drover.builders.serving import build_rayservice
from drover.builders.serving_plans import IndexPlan, VersionPlan
from drover.builders.vectorindex import build_index_rayjob


def _cluster_pods(cluster: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pods = {"head": cluster["headGroupSpec"]["template"]["spec"]}
    for group in cluster["workerGroupSpecs"]:
        pods[f"worker group {group['groupName']}"] = group["template"]["spec"]
    return pods


@pytest.fixture
def emitted(base_model, finetune, index, service, config) -> dict[str, dict[str, Any]]:
    """Every pod spec of every RayJob and RayService the builders emit for the pipeline."""
    gpu = resolve_placement(
        finetune.spec.resources.accelerator, config.accelerator_classes, field="f"
    )
    cpu = resolve_placement(None, config.accelerator_classes, field="f")
    plan = VersionPlan(
        model="tiny-llama",
        digest=READY_BASE["digest"],
        claim="tiny-llama-cache",
        path="tiny-llama/abababababab",
    )
    index_plan = IndexPlan("handbook-index", "handbook/v1", "minilm-cache", "minilm/cdcdcdcdcdcd")
    clusters = {
        "fetch": build_fetch_rayjob(base_model, image="x")["spec"]["rayClusterSpec"],
        "finetune": build_finetune_rayjob(
            finetune, base_model, READY_BASE, placement=gpu, image="x"
        )["spec"]["rayClusterSpec"],
        "index": build_index_rayjob(index, READY_EMBEDDER, 1, image="x")["spec"]["rayClusterSpec"],
        "serve": build_rayservice(service, [plan], index_plan, placement=cpu, image="x")["spec"][
            "rayClusterConfig"
        ],
    }
    pods = {
        f"{kind} {role}": pod
        for kind, cluster in clusters.items()
        for role, pod in _cluster_pods(cluster).items()
    }
    pods["submitter"] = restricted_submitter_template("x")["spec"]
    return pods


def test_every_pod_drover_defines_is_restricted(emitted) -> None:
    problems = {name: check_restricted(pod) for name, pod in emitted.items()}
    assert {name: p for name, p in problems.items() if p} == {}


def test_ray_pods_run_as_the_ray_images_user_and_own_their_volumes(emitted) -> None:
    for name, pod in emitted.items():
        ctx = pod["securityContext"]
        assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) == (1000, 100, 100), name
        assert (RAY_UID, RAY_GID) == (1000, 100)
        assert ctx["fsGroupChangePolicy"] == "OnRootMismatch", name


def test_the_checker_catches_what_kuberay_would_emit_by_default() -> None:
    """KubeRay's default submitter (no securityContext) and a pod with each violation."""
    kuberay_default = {
        "restartPolicy": "Never",
        "containers": [{"name": "ray-job-submitter", "image": "x"}],
    }
    reasons = {p.split(" (")[0] for p in check_restricted(kuberay_default)}
    assert reasons == {
        "allowPrivilegeEscalation != false",
        "runAsNonRoot != true",
        "seccompProfile",
        "unrestricted capabilities",
    }
    bad = copy.deepcopy(restricted_submitter_template("x")["spec"])
    bad["hostNetwork"] = True
    bad["securityContext"]["runAsUser"] = 0
    bad["volumes"] = [{"name": "host", "hostPath": {"path": "/var/run"}}]
    container = bad["containers"][0]
    container["securityContext"]["capabilities"]["add"] = ["SYS_ADMIN"]
    container["securityContext"]["privileged"] = True
    container["ports"] = [{"containerPort": 80, "hostPort": 80}]
    reasons = {p.split(" (")[0] for p in check_restricted(bad)}
    assert reasons == {
        "privileged",
        "host namespaces",
        "hostPort",
        "restricted volume types",
        "runAsUser=0",
        "unrestricted capabilities",
    }
    unconfined = copy.deepcopy(restricted_submitter_template("x")["spec"])
    unconfined["containers"][0]["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    assert [p.split(" (")[0] for p in check_restricted(unconfined)] == ["seccompProfile"]


def test_submitter_template_is_kuberays_default_plus_security() -> None:
    template = restricted_submitter_template("drover/workers:1")
    container = template["spec"]["containers"][0]
    assert container["name"] == "ray-job-submitter"  # KubeRay takes the first container
    assert container["image"] == "drover/workers:1"
    assert "command" not in container  # KubeRay fills in `ray job submit ...`
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "200Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert template["spec"]["restartPolicy"] == "Never"


def test_submitter_template_and_secured_pods_pass_the_kuberay_and_kubernetes_schemas(
    base_model,
) -> None:
    job = build_fetch_rayjob(base_model, image="x")
    job["metadata"]["namespace"] = "default"
    job["spec"]["submitterPodTemplate"] = restricted_submitter_template("x")
    errors = [e.message for e in kuberay_validator("rayjobs").iter_errors(job)]
    assert errors == []
    templates = [job["spec"]["submitterPodTemplate"]]
    cluster = job["spec"]["rayClusterSpec"]
    templates += [cluster["headGroupSpec"]["template"]]
    templates += [g["template"] for g in cluster["workerGroupSpecs"]]
    for template in templates:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, **template}
        kubernetes_validate.validate(pod, "1.30", strict=True)


def test_a_cluster_without_mounts_is_restricted_too() -> None:
    cluster = build_ray_cluster_spec(image="x", placement=Placement("cpu"))
    for pod in _cluster_pods(cluster).values():
        assert check_restricted(pod) == []


def test_every_container_pulls_with_the_configured_policy(base_model) -> None:
    image = ContainerImage("registry.example.com/drover-workers:1-cpu", "Always")
    job = build_fetch_rayjob(base_model, image=image)
    cluster = job["spec"]["rayClusterSpec"]
    pods = [
        cluster["headGroupSpec"]["template"]["spec"],
        job["spec"]["submitterPodTemplate"]["spec"],
    ]
    pods += [group["template"]["spec"] for group in cluster["workerGroupSpecs"]]
    containers = [c for pod in pods for c in pod["containers"]]
    assert len(containers) == 3
    assert {(c["image"], c["imagePullPolicy"]) for c in containers} == {(image.reference, "Always")}
