"""Claims on Ray pods: mounted only where the caller says they are used, refused where their
access mode would leave a pod in ContainerCreating, and writable by the Ray images' group."""

from __future__ import annotations

import pytest
from tests.unit.builders.conftest import kuberay_validator

from drover.api.common import AccessMode, StorageSpec
from drover.builders.errors import SpecError
from drover.builders.meta import build_claim
from drover.builders.raycluster import Mount, Placement, build_ray_cluster_spec

RWO, RWX, RWOP = (
    AccessMode.READ_WRITE_ONCE,
    AccessMode.READ_WRITE_MANY,
    AccessMode.READ_WRITE_ONCE_POD,
)
CACHE_FIELD = "spec.cache.accessMode"


def _claims(pod: dict) -> dict[str, str]:
    """claim name -> mount path in a pod spec."""
    by_volume = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    return {
        by_volume[m["name"]]: m["mountPath"]
        for m in pod["containers"][0]["volumeMounts"]
        if m["name"] in by_volume
    }


def _pods(cluster: dict) -> tuple[dict, dict]:
    return (
        cluster["headGroupSpec"]["template"]["spec"],
        cluster["workerGroupSpecs"][0]["template"]["spec"],
    )


def test_a_claim_used_only_by_workers_is_not_mounted_on_the_head() -> None:
    cluster = build_ray_cluster_spec(
        image="x",
        placement=Placement("cpu"),
        mounts=[
            Mount("cache", read_only=False, on_head=False),
            Mount("notes", on_workers=False),
            Mount("shared"),
        ],
        secrets=["hf-token"],
    )
    head, worker = _pods(cluster)
    assert _claims(head) == {"notes": "/models/notes", "shared": "/models/shared"}
    assert _claims(worker) == {"cache": "/models/cache", "shared": "/models/shared"}
    # A claim keeps its volume name on every pod that mounts it; secrets go everywhere.
    names = {v["persistentVolumeClaim"]["claimName"]: v["name"] for v in head["volumes"][:-1]}
    names.update(
        {v["persistentVolumeClaim"]["claimName"]: v["name"] for v in worker["volumes"][:-1]}
    )
    assert names == {"cache": "cache-0", "notes": "cache-1", "shared": "cache-2"}
    for pod in (head, worker):
        secret = {"name": "secret-0", "secret": {"secretName": "hf-token", "optional": True}}
        assert secret in pod["volumes"]
    job = {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": "j"},
        "spec": {"entrypoint": "python -m x", "rayClusterSpec": cluster},
    }
    assert [e.message for e in kuberay_validator("rayjobs").iter_errors(job)] == []


def test_by_default_a_claim_is_mounted_on_the_head_and_the_workers() -> None:
    head, worker = _pods(
        build_ray_cluster_spec(image="x", placement=Placement("cpu"), mounts=[Mount("c")])
    )
    assert _claims(head) == _claims(worker) == {"c": "/models/c"}


def test_a_mount_must_be_somewhere() -> None:
    with pytest.raises(ValueError, match="neither the head nor the workers"):
        Mount("c", on_head=False, on_workers=False)


def test_every_ray_pod_makes_fresh_volumes_writable_for_gid_100() -> None:
    for pod in _pods(
        build_ray_cluster_spec(image="x", placement=Placement("cpu"), mounts=[Mount("c")])
    ):
        assert pod["securityContext"]["fsGroup"] == 100
        assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"


def test_a_read_write_once_claim_on_the_head_and_a_worker_is_refused_naming_the_field() -> None:
    with pytest.raises(SpecError) as err:
        build_ray_cluster_spec(
            image="x",
            placement=Placement("cpu"),
            mounts=[
                Mount("fm-cache", read_only=False, access_mode=RWO, access_mode_field=CACHE_FIELD)
            ],
        )
    assert err.value.reason == "ClaimAccessMode"
    assert err.value.field == CACHE_FIELD
    message = err.value.message
    assert message.startswith(f"{CACHE_FIELD}: claim 'fm-cache' is ReadWriteOnce")
    assert "the head and up to 1 worker mount it" in message
    assert "Multi-Attach" in message and "ReadWriteMany" in message


def test_read_write_once_is_fine_on_the_one_pod_that_uses_it() -> None:
    cluster = build_ray_cluster_spec(
        image="x",
        placement=Placement("cpu"),
        mounts=[Mount("c", read_only=False, on_head=False, access_mode=RWO)],
    )
    head, worker = _pods(cluster)
    assert _claims(head) == {} and _claims(worker) == {"c": "/models/c"}


def test_several_possible_workers_need_a_multi_node_access_mode() -> None:
    serving = Mount("c", on_head=False, access_mode=RWO, access_mode_field=CACHE_FIELD)
    with pytest.raises(SpecError, match=r"up to 4 workers mount it.*or run a single worker"):
        build_ray_cluster_spec(
            image="x", placement=Placement("cpu"), mounts=[serving], workers=1, max_workers=4
        )
    with pytest.raises(SpecError, match="ReadWriteOncePod"):
        build_ray_cluster_spec(
            image="x",
            placement=Placement("cpu"),
            mounts=[Mount("c", on_head=False, access_mode=RWOP)],
            workers=2,
        )
    for fine in (
        Mount("c", on_head=False, access_mode=RWX),
        Mount("c", on_head=False, access_mode=AccessMode.READ_ONLY_MANY),
        Mount("c", on_head=False),  # an existing claim: its mode is not Drover's to know
    ):
        build_ray_cluster_spec(
            image="x", placement=Placement("cpu"), mounts=[fine], workers=1, max_workers=4
        )


def test_claims_drover_creates_carry_the_access_mode_asked_for() -> None:
    for mode in AccessMode:
        claim = build_claim("c", StorageSpec(access_mode=mode))
        assert claim is not None and claim["spec"]["accessModes"] == [mode.value]
    assert build_claim("c", StorageSpec()) is not None
    assert StorageSpec().access_mode is RWO  # binds on every storage class
