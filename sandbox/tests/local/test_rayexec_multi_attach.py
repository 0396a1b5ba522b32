"""The executor refuses a single-node claim on several pods the way Kubernetes does.

Fidelity to kubernetes/kubernetes (read at commit afd5df58bd7d, master after v1.30):
- pkg/controller/volume/attachdetach/reconciler/reconciler.go, attachDesiredVolumes and
  reportMultiAttachError: a volume that does not allow multi-attach, already attached to one
  node, is not attached to another; each pod scheduled there gets the Warning event
  `Multi-Attach error for volume "<pv>" Volume is already used by pod(s) <pods>` (the message
  from pkg/volume/util/operationexecutor/operation_executor.go, generateVolumeMsg) and stays
  ContainerCreating. KubeRay then waits: the RayJob stays Initializing, the RayService not ready.
- pkg/volume/util/util.go, IsMultiAttachAllowed: allowed when the PersistentVolume's access modes
  include ReadWriteMany or ReadOnlyMany, or when it lists none.
Locally the head and every worker replica count as separate nodes: the worst a scheduler can do.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from kubernetes import client

from drover.builders.raycluster import Mount, Placement, build_ray_cluster_spec
from drover_sandbox.rayexec.executor import Executor, Settings
from drover_sandbox.rayexec.volumes import multi_attach_errors, pod_claims

NOW = dt.datetime(2026, 11, 22, 8, 0, 0, tzinfo=dt.UTC)


def cluster(*mounts: Mount, workers: int = 1) -> dict[str, Any]:
    return build_ray_cluster_spec(
        image="x", placement=Placement("cpu"), mounts=list(mounts), workers=workers
    )


def pvc(*modes: str, bound: tuple[str, ...] = (), volume: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": list(modes)}
    if volume:
        spec["volumeName"] = volume
    return {"spec": spec, "status": {"accessModes": list(bound)} if bound else {}}


def errors(spec: dict[str, Any], claims: dict[str, dict[str, Any]]) -> list[str]:
    return multi_attach_errors(spec, "fetch", claims.get)


def test_read_write_once_on_the_head_and_a_worker_leaves_the_worker_creating():
    spec = cluster(Mount("cache", read_only=False))
    assert errors(spec, {"cache": pvc("ReadWriteOnce")}) == [
        'pod fetch-cpu-worker-0 is ContainerCreating: Multi-Attach error for volume "cache" '
        "Volume is already used by pod(s) fetch-head"
    ]


def test_read_only_mounts_of_a_read_write_once_claim_still_attach_to_one_node():
    spec = cluster(Mount("cache"))  # readOnly on both pods: attach is per node, not per mode
    assert len(errors(spec, {"cache": pvc("ReadWriteOnce")})) == 1


def test_each_worker_replica_is_its_own_node():
    spec = cluster(Mount("cache", on_head=False), workers=3)
    found = errors(spec, {"cache": pvc("ReadWriteOncePod", volume="pvc-1234")})
    assert [e.split(" is ")[0] for e in found] == [
        "pod fetch-cpu-worker-1",
        "pod fetch-cpu-worker-2",
    ]
    assert all(
        'volume "pvc-1234" Volume is already used by pod(s) fetch-cpu-worker-0' in e for e in found
    )
    spec["workerGroupSpecs"][0]["replicas"] = 1
    spec["workerGroupSpecs"][0]["numOfHosts"] = 2  # a multi-host replica is two pods
    assert len(errors(spec, {"cache": pvc("ReadWriteOnce")})) == 1


@pytest.mark.parametrize(
    "claim",
    [
        pvc("ReadWriteMany"),
        pvc("ReadOnlyMany"),
        pvc(),  # no modes: IsMultiAttachAllowed does not know, lets the attacher decide
        pvc("ReadWriteOnce", bound=("ReadWriteOnce", "ReadOnlyMany")),  # the PV's modes count
    ],
    ids=["rwx", "rox", "no-modes", "bound-to-a-rox-volume"],
)
def test_multi_attach_modes_are_not_refused(claim):
    assert errors(cluster(Mount("cache", read_only=False)), {"cache": claim}) == []


def test_one_pod_or_an_absent_claim_is_not_refused():
    one_pod = cluster(Mount("cache", read_only=False, on_head=False))
    assert errors(one_pod, {"cache": pvc("ReadWriteOnce")}) == []
    assert errors(cluster(Mount("cache")), {}) == []


def test_pods_are_those_kuberay_creates_with_the_claims_in_their_volumes():
    spec = cluster(Mount("a", on_head=False), Mount("b", on_workers=False), workers=2)
    assert pod_claims(spec, "svc") == [
        ("svc-head", ["b"]),
        ("svc-cpu-worker-0", ["a"]),
        ("svc-cpu-worker-1", ["a"]),
    ]


# -- the executor reports it where KubeRay's objects show a waiting pod -------------------------


class FakeCore:
    def __init__(self, modes: dict[str, list[str]]) -> None:
        self.modes = modes
        self.api_client = client.ApiClient()

    def read_namespaced_persistent_volume_claim(self, name: str, namespace: str):
        if name not in self.modes:
            raise client.ApiException(status=404, reason="Not Found")
        return client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace),
            spec=client.V1PersistentVolumeClaimSpec(access_modes=self.modes[name]),
        )

    def read_namespaced_secret(self, name: str, namespace: str):
        raise client.ApiException(status=404, reason="Not Found")


class FakeRay:
    dashboard_hostport = "127.0.0.1:8265"

    def __init__(self) -> None:
        self.submitted: list[str] = []
        self.put: list[dict[str, Any]] = []

    def submit(self, *, job_id: str, **_: Any) -> None:
        self.submitted.append(job_id)

    def serve_get(self) -> dict[str, Any]:
        return {"applications": {}}

    def serve_put(self, config: dict[str, Any]) -> None:
        self.put.append(config)


class FakeCustom:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def patch_namespaced_custom_object_status(self, group, version, ns, plural, name, body):
        self.patches.append(body["status"])
        return {"metadata": {"name": name, "namespace": ns}, "status": body["status"]}


def executor(tmp_path, modes: dict[str, list[str]]) -> Executor:
    settings = Settings(data_dir=str(tmp_path), serve_port=8000, local_env={}, owner="t")
    exe = Executor(client.ApiClient(), FakeRay(), settings)  # type: ignore[arg-type]
    exe.core = FakeCore(modes)  # type: ignore[assignment]
    exe.custom = FakeCustom()  # type: ignore[assignment]
    return exe


def rayjob(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "fetch", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": {
            "entrypoint": "python -m x",
            "entrypointNumCpus": 1,
            "runtimeEnvYAML": "env_vars: {}",
            "rayClusterSpec": spec,
        },
    }


def test_a_rayjob_waits_initializing_with_the_multi_attach_message(tmp_path):
    exe = executor(tmp_path, {"cache": ["ReadWriteOnce"]})
    st = {"jobId": "ns-fetch-1", "jobDeploymentStatus": "Initializing"}
    obj = rayjob(cluster(Mount("cache", read_only=False)))
    new = exe._submit(obj, st, {}, NOW)
    assert new["jobDeploymentStatus"] == "Initializing"
    assert new["message"] == (
        "waiting for volumes: pod fetch-cpu-worker-0 is ContainerCreating: Multi-Attach error "
        'for volume "cache" Volume is already used by pod(s) fetch-head'
    )
    assert exe.ray.submitted == []  # type: ignore[attr-defined]
    # The same claim as ReadWriteMany, or mounted on the worker alone: the job is submitted.
    for modes, mount in (
        ({"cache": ["ReadWriteMany"]}, Mount("cache", read_only=False)),
        ({"cache": ["ReadWriteOnce"]}, Mount("cache", read_only=False, on_head=False)),
    ):
        exe = executor(tmp_path, modes)
        assert "message" not in exe._submit(rayjob(cluster(mount)), dict(st), {}, NOW)
        assert exe.ray.submitted == ["ns-fetch-1"]  # type: ignore[attr-defined]


def test_a_rayservice_stays_not_ready_with_the_multi_attach_message(tmp_path):
    exe = executor(tmp_path, {"model": ["ReadWriteOnce"]})
    obj = {
        "metadata": {"name": "bot", "namespace": "ns", "uid": "u2", "generation": 1},
        "spec": {
            "serveConfigV2": "applications:\n- name: app\n  import_path: m:app\n",
            "rayClusterConfig": cluster(Mount("model", on_head=False), workers=2),
        },
    }
    exe.services.replace([obj])
    exe.reconcile_services()
    (status,) = exe.custom.patches  # type: ignore[attr-defined]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Initializing")
    assert ready["message"] == (
        "waiting for volumes: pod bot-cpu-worker-1 is ContainerCreating: Multi-Attach error "
        'for volume "model" Volume is already used by pod(s) bot-cpu-worker-0'
    )
    assert exe.ray.put == []  # type: ignore[attr-defined]  # nothing deployed
