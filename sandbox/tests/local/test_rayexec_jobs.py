"""The local Ray executor runs RayJobs on a real local Ray and writes KubeRay's RayJob status.

Every RayJob of this module is created up front (one namespace), so their Ray jobs start side by
side; each test then follows its own.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from sandbox.tests.local.helpers import APPS_DIR, RayExec, assert_valid_status, wait_for

from drover.builders.raycluster import Mount, Placement, build_ray_cluster_spec, secret_path
from drover.builders.rayjob import build_rayjob

pytestmark = pytest.mark.timeout(240)


def make_rayjob(name: str, config: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A RayJob shaped as the operator builds one: cache claim at /models/cache, a Secret."""
    cluster = build_ray_cluster_spec(
        image="local",
        placement=Placement(class_name="cpu", cpu="1", memory="1Gi"),
        mounts=[Mount("cache", read_only=False)],
        secrets=["creds"],
        env={"PYTHONPATH": str(APPS_DIR)},
    )
    worker_config = {
        "cacheRoot": "/models/cache",
        "pvcRoot": "/models",
        "tokenFile": secret_path("creds", "token"),
        **config,
    }
    kwargs.setdefault("entrypoint_num_cpus", 1)
    return build_rayjob(
        name=name,
        module="drover_test_job",
        worker_config=worker_config,
        cluster_spec=cluster,
        **kwargs,
    )


def create(custom, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    return custom.create_namespaced_custom_object("ray.io", "v1", namespace, "rayjobs", manifest)


def get(custom, namespace: str, name: str) -> dict[str, Any]:
    return custom.get_namespaced_custom_object("ray.io", "v1", namespace, "rayjobs", name)


def status_when(custom, namespace, name, rayexec, *deployments: str, timeout: float = 90):
    def check() -> dict[str, Any] | None:
        st = get(custom, namespace, name).get("status") or {}
        return st if st.get("jobDeploymentStatus") in deployments else None

    return wait_for(check, timeout, f"RayJob {name} in {deployments}", rayexec)


def ray_job_status(rayexec: RayExec, job_id: str) -> str:
    """The Ray job's status, or GONE once its record was deleted."""
    from ray.job_submission import JobSubmissionClient

    dashboard = rayexec.proc.args[rayexec.proc.args.index("--dashboard-url") + 1]
    jobs = {
        j.submission_id: j
        for j in JobSubmissionClient(dashboard).list_jobs()
        if j.type.value == "SUBMISSION"  # a deleted submission leaves a DRIVER entry behind
    }
    return str(jobs[job_id].status.value) if job_id in jobs else "GONE"


TOKEN = "s3cr3t-token"


def jobs() -> dict[str, dict[str, Any]]:
    later = make_rayjob("later", {"mode": "write"})
    later["spec"]["suspend"] = True
    broken = make_rayjob("broken", {"mode": "write"})
    broken["spec"]["runtimeEnvYAML"] = "env_vars: [unclosed"
    return {
        "fetch-ok": make_rayjob("fetch-ok", {"mode": "write"}),
        "ft-bad": make_rayjob("ft-bad", {"mode": "fail"}, backoff_limit=1),
        "idx-long": make_rayjob("idx-long", {"mode": "sleep"}),
        "slow": make_rayjob("slow", {"mode": "sleep"}, active_deadline_seconds=4),
        "later": later,
        "broken": broken,
        "gpu-nowhere": make_rayjob("gpu-nowhere", {"mode": "write"}, entrypoint_num_gpus=1),
    }


@pytest.fixture(scope="module")
def ns(k8s_api, custom, rayexec: RayExec) -> Iterator[str]:
    """A namespace with Secret `creds` and every RayJob of this module, created at once."""
    core = client.CoreV1Api(k8s_api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_secret(
        name,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="creds"),
            data={"token": base64.b64encode(TOKEN.encode()).decode()},
        ),
    )
    for manifest in jobs().values():
        create(custom, name, manifest)
    yield name
    core.delete_namespace(name)


def test_rayjob_completes_with_kuberay_status_and_mapped_paths(custom, ns, rayexec: RayExec):
    uid = get(custom, ns, "fetch-ok")["metadata"]["uid"]
    st = status_when(custom, ns, "fetch-ok", rayexec, "Complete", "Failed")

    assert st["jobDeploymentStatus"] == "Complete", st
    assert st["jobStatus"] == "SUCCEEDED"
    assert st["jobId"] == f"{ns}-fetch-ok-{uid[:8]}"
    assert st["dashboardURL"].startswith("127.0.0.1:")
    assert st["rayClusterName"] == "fetch-ok-local"
    assert st["startTime"] <= st["endTime"]
    assert (st["succeeded"], st["failed"], st["observedGeneration"]) == (1, 0, 1)
    assert_valid_status("rayjobs", st)
    result = rayexec.data_dir / "pvc" / ns / "cache" / "result.txt"
    token, pvc_root, hf = result.read_text().split("|")
    assert token == TOKEN
    assert pvc_root == str(rayexec.data_dir / "pvc" / ns)
    assert hf == "http://127.0.0.1:9"


def test_failing_rayjob_is_retried_up_to_backoff_limit_then_failed(custom, ns, rayexec):
    st = status_when(custom, ns, "ft-bad", rayexec, "Failed", "Complete", timeout=150)

    assert st["jobDeploymentStatus"] == "Failed", st
    assert (st["jobStatus"], st["reason"]) == ("FAILED", "AppFailed")
    assert st["failed"] == 2 and st["succeeded"] == 0
    assert st["jobId"].endswith("-2"), "the second attempt is a new Ray submission"
    assert ray_job_status(rayexec, st["jobId"].removesuffix("-2")) == "FAILED"
    assert_valid_status("rayjobs", st)


def test_deleting_a_running_rayjob_stops_its_ray_job(custom, ns, rayexec: RayExec):
    def running() -> dict[str, Any] | None:
        st = get(custom, ns, "idx-long").get("status") or {}
        return st if st.get("jobStatus") == "RUNNING" else None

    st = wait_for(running, 120, "the Ray job to run", rayexec)
    custom.delete_namespaced_custom_object("ray.io", "v1", ns, "rayjobs", "idx-long")
    # Stopped, then forgotten, as when KubeRay deletes the RayJob's cluster.
    wait_for(
        lambda: ray_job_status(rayexec, st["jobId"]) == "GONE", 60, "the Ray job to go", rayexec
    )


def test_a_driver_no_node_of_its_cluster_can_hold_fails_as_ray_fails_it(custom, ns, rayexec):
    # Ray 2.60 job_manager.py JobManager._monitor_job_internal fails a job whose supervisor
    # cannot be placed once RAY_JOB_START_TIMEOUT_SECONDS passes; the entrypoint resources come
    # from KubeRay v1.7.0 common/job.go BuildJobSubmitCommand. This cluster has no GPU.
    st = status_when(custom, ns, "gpu-nowhere", rayexec, "Failed", "Complete")

    assert (st["jobDeploymentStatus"], st["jobStatus"], st["reason"]) == (
        "Failed",
        "FAILED",
        "AppFailed",
    )
    assert "entrypoint's specified resources" in st["message"]
    assert "entrypointNumGpus=1" in st["message"]
    assert ray_job_status(rayexec, st["jobId"]) == "GONE", "nothing was submitted to Ray"


def test_active_deadline_fails_the_rayjob_and_stops_the_ray_job(custom, ns, rayexec):
    st = status_when(custom, ns, "slow", rayexec, "Failed", "Complete")

    assert (st["jobDeploymentStatus"], st["reason"]) == ("Failed", "DeadlineExceeded")
    assert "activeDeadlineSeconds" in st["message"]
    assert st["failed"] == 1
    assert_valid_status("rayjobs", st)
    wait_for(
        lambda: ray_job_status(rayexec, st["jobId"]) == "STOPPED",
        60,
        "the Ray job to stop",
        rayexec,
    )


def test_suspended_rayjob_waits_and_runs_once_resumed(custom, ns, rayexec):
    st = status_when(custom, ns, "later", rayexec, "Suspended")
    assert not st.get("jobId") and not st.get("jobStatus"), "nothing was submitted"

    custom.patch_namespaced_custom_object(
        "ray.io", "v1", ns, "rayjobs", "later", {"spec": {"suspend": False}}
    )
    st = status_when(custom, ns, "later", rayexec, "Complete", "Failed")
    assert (st["jobDeploymentStatus"], st["jobStatus"]) == ("Complete", "SUCCEEDED")
    assert st["observedGeneration"] == 2


def test_invalid_runtime_env_is_a_validation_failure(custom, ns, rayexec):
    st = status_when(custom, ns, "broken", rayexec, "ValidationFailed")
    assert st["reason"] == "ValidationFailed"
    assert "spec.runtimeEnvYAML" in st["message"]
    assert_valid_status("rayjobs", st)
