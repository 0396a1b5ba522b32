"""Builders layer: the Ray cluster spec shared by RayJobs and RayServices.

A head group that schedules no work, and one worker group placed on an accelerator class (node
selector, tolerations, the class's resource name), with model-cache claims mounted. The result is
the `rayClusterSpec` of a RayJob or the `rayClusterConfig` of a RayService (KubeRay v1.7.0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drover.builders.meta import model_mount_path


@dataclass(frozen=True)
class Placement:
    """Where workers run: an accelerator class resolved from the operator configuration."""

    class_name: str
    resource_name: str = ""  # e.g. nvidia.com/gpu; empty for a CPU class
    count: int = 0
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()
    cpu: str = "2"
    memory: str = "8Gi"


@dataclass(frozen=True)
class Mount:
    """A PersistentVolumeClaim mounted at `/models/<claim>` (or `path`)."""

    claim: str
    read_only: bool = True
    path: str = ""

    @property
    def mount_path(self) -> str:
        return self.path or model_mount_path(self.claim)


SECRET_MOUNT_ROOT = "/var/run/drover/secrets"


def secret_path(secret: str, key: str) -> str:
    """Where key `key` of Secret `secret` appears as a file in every Ray pod."""
    return f"{SECRET_MOUNT_ROOT}/{secret}/{key}"


def _volumes(
    mounts: Sequence[Mount], secrets: Sequence[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    unique = {m.claim: m for m in mounts}
    volumes: list[dict[str, Any]] = [
        {
            "name": f"cache-{i}",
            "persistentVolumeClaim": {"claimName": m.claim, "readOnly": m.read_only},
        }
        for i, m in enumerate(unique.values())
    ]
    volume_mounts: list[dict[str, Any]] = [
        {"name": f"cache-{i}", "mountPath": m.mount_path, "readOnly": m.read_only}
        for i, m in enumerate(unique.values())
    ]
    for i, secret in enumerate(sorted(set(secrets))):
        volumes.append({"name": f"secret-{i}", "secret": {"secretName": secret}})
        volume_mounts.append(
            {"name": f"secret-{i}", "mountPath": f"{SECRET_MOUNT_ROOT}/{secret}", "readOnly": True}
        )
    return volumes, volume_mounts


def _container(
    name: str,
    image: str,
    *,
    requests: Mapping[str, str],
    limits: Mapping[str, str],
    mounts: list[dict[str, Any]],
    env: Mapping[str, str],
    ports: Sequence[tuple[str, int]] = (),
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "resources": {"requests": dict(requests), "limits": dict(limits)},
        "volumeMounts": mounts,
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
    }
    if ports:
        container["ports"] = [{"name": n, "containerPort": p} for n, p in ports]
    return container


def build_ray_cluster_spec(
    *,
    image: str,
    placement: Placement,
    mounts: Sequence[Mount] = (),
    secrets: Sequence[str] = (),
    workers: int = 1,
    max_workers: int | None = None,
    env: Mapping[str, str] = {},
    autoscaling: bool = False,
    serve: bool = False,
) -> dict[str, Any]:
    """The cluster spec: head (no work scheduled on it) plus one worker group on `placement`."""
    volumes, volume_mounts = _volumes(mounts, secrets)
    head_ports = [("gcs-server", 6379), ("dashboard", 8265), ("client", 10001)]
    if serve:
        head_ports.append(("serve", 8000))
    head = {
        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
        "template": {
            "spec": {
                "containers": [
                    _container(
                        "ray-head",
                        image,
                        requests={"cpu": "1", "memory": "2Gi"},
                        limits={"cpu": "2", "memory": "4Gi"},
                        mounts=volume_mounts,
                        env=env,
                        ports=head_ports,
                    )
                ],
                "volumes": volumes,
            }
        },
    }
    limits = {"cpu": placement.cpu, "memory": placement.memory}
    if placement.resource_name and placement.count:
        limits[placement.resource_name] = str(placement.count)
    worker_spec: dict[str, Any] = {
        "containers": [
            _container(
                "ray-worker",
                image,
                requests=dict(limits),
                limits=limits,
                mounts=volume_mounts,
                env=env,
            )
        ],
        "volumes": volumes,
    }
    if placement.node_selector:
        worker_spec["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        worker_spec["tolerations"] = [dict(t) for t in placement.tolerations]
    group = {
        "groupName": placement.class_name,
        "replicas": workers,
        "minReplicas": 0 if autoscaling else workers,
        "maxReplicas": max(max_workers or workers, workers),
        "rayStartParams": {},
        "template": {"spec": worker_spec},
    }
    spec: dict[str, Any] = {"headGroupSpec": head, "workerGroupSpecs": [group]}
    if autoscaling:
        spec["enableInTreeAutoscaling"] = True
    return spec
