"""Builders layer: the Ray cluster spec shared by RayJobs and RayServices.

A head group that schedules no work, and one worker group placed on an accelerator class (node
selector, tolerations, the class's resource name), with claims mounted only on the pods that use
them. Every pod Drover defines meets the Pod Security Standard "restricted" (see
`pod_security_context`). The result is the `rayClusterSpec` of a RayJob or the `rayClusterConfig`
of a RayService (KubeRay v1.7.0); `restricted_submitter_template` is the RayJob's submitter pod.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drover.api.common import AccessMode
from drover.api.reasons import SpecReason
from drover.builders.errors import SpecError
from drover.builders.meta import MANAGED_BY, model_mount_path
from drover.builders.security import container_security_context, pod_security_context

# On every Ray pod: the chart's PodMonitor selects Drover's Ray pods by it (KubeRay adds its own
# ray.io/* labels beside these, common/pod.go).
POD_LABELS = {MANAGED_BY: "drover"}


@dataclass(frozen=True)
class ContainerImage:
    """The image of every container in a Ray cluster (head, workers, RayJob submitter) and its
    pull policy (the chart's `config.images.pullPolicy`); a plain string means the reference,
    pulled IfNotPresent."""

    reference: str
    pull_policy: str = "IfNotPresent"

    @classmethod
    def of(cls, image: ContainerImage | str) -> ContainerImage:
        return image if isinstance(image, ContainerImage) else cls(image)


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

    @property
    def cpus(self) -> float:
        """The pod's CPU quantity ("2", "1.5", "500m") as a number of CPUs, as Ray counts them."""
        text = self.cpu.strip()
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


# Access modes a volume plugin attaches to one node only: a second pod on another node waits in
# ContainerCreating (Kubernetes' attach/detach controller: reconciler.go reportMultiAttachError,
# util.IsMultiAttachAllowed). ReadWriteOncePod is stricter still: one pod, even on one node.
SINGLE_NODE_MODES = (AccessMode.READ_WRITE_ONCE, AccessMode.READ_WRITE_ONCE_POD)


@dataclass(frozen=True)
class Mount:
    """A PersistentVolumeClaim mounted at `/models/<claim>` (or `path`) on the pods that use it.

    The caller says where the claim is read or written: `on_head` for code that runs on the head
    pod (a RayJob's driver when the job sets no entrypoint resources; the head has `num-cpus: 0`,
    so no task or actor runs there), `on_workers` for drivers placed by entrypoint resources, Ray
    Train workers and Serve replicas. Both default to True, which is right for a driver whose
    placement the caller does not control; a claim mounted on fewer pods attaches to fewer nodes.

    `access_mode` is the claim's mode when Drover knows it (a claim it creates) and
    `access_mode_field` the spec field that sets it (`spec.cache.accessMode`): with them the
    builder refuses a single-node mode on pods that may land on several nodes (see
    `check_claim_attachments`). None means unknown (an existing claim): nothing is checked.
    """

    claim: str
    read_only: bool = True
    path: str = ""
    on_head: bool = True
    on_workers: bool = True
    access_mode: AccessMode | None = None
    access_mode_field: str = ""

    def __post_init__(self) -> None:
        if not (self.on_head or self.on_workers):
            raise ValueError(f"Mount {self.claim!r} is on neither the head nor the workers")

    @property
    def mount_path(self) -> str:
        return self.path or model_mount_path(self.claim)


# A serving cluster's worker groups each mount a set of claims, and each offers one Ray custom
# resource per claim it mounts, so that a Serve replica asking for the resources of the claims it
# reads lands on a pod that has them. A node offers many units; a replica takes a sliver.
CLAIM_RESOURCE_PREFIX = "drover-claim-"
CLAIM_RESOURCE_UNITS = 1000
CLAIM_RESOURCE_REQUEST = 0.001


def claim_resource(claim: str) -> str:
    """The Ray custom resource a worker offers when it mounts `claim`."""
    return f"{CLAIM_RESOURCE_PREFIX}{claim}"


def claim_resources(claims: set[str]) -> dict[str, float]:
    """What a replica that reads `claims` asks Ray for, so it lands on a pod mounting them."""
    return {claim_resource(c): CLAIM_RESOURCE_REQUEST for c in sorted(claims)}


def with_claim_resources(options: Mapping[str, Any], claims: set[str]) -> dict[str, Any]:
    """Deployment options whose replica (or, with a placement group, its first bundle, where
    the replica actor runs) also asks for the claims' resources."""
    out = copy.deepcopy(dict(options))
    wanted = claim_resources(claims)
    if out.get("placement_group_bundles"):
        out["placement_group_bundles"][0].update(wanted)
    else:
        actor = out.setdefault("ray_actor_options", {})
        actor["resources"] = {**actor.get("resources", {}), **wanted}
    return out


@dataclass(frozen=True)
class WorkerGroup:
    """One worker group of a serving cluster: its name and the claims its pods mount."""

    name: str
    claims: tuple[str, ...]


SECRET_MOUNT_ROOT = "/var/run/drover/secrets"


def secret_path(secret: str, key: str) -> str:
    """Where key `key` of Secret `secret` appears as a file in every Ray pod."""
    return f"{SECRET_MOUNT_ROOT}/{secret}/{key}"


def check_claim_attachments(mounts: Sequence[Mount], *, max_workers: int) -> None:
    """Refuse a claim whose access mode attaches to one node, mounted by pods on several.

    KubeRay makes the head and every worker a separate pod, and nothing keeps them on one
    node: a ReadWriteOnce claim mounted by two of them leaves the second in ContainerCreating
    ("Multi-Attach error ... Volume is already used by pod(s) ...") on block storage. The
    builder cannot know the cluster's nodes, so it assumes the worst a scheduler can do.
    Raises SpecError (reason ClaimAccessMode) naming the field that sets the mode.
    """
    for mount in {m.claim: m for m in mounts}.values():
        if mount.access_mode not in SINGLE_NODE_MODES:
            continue
        head = 1 if mount.on_head else 0
        workers = max_workers if mount.on_workers else 0
        if head + workers <= 1:
            continue
        pods = " and ".join(
            part
            for part in (
                "the head" if head else "",
                f"up to {workers} worker{'s' if workers > 1 else ''}" if workers else "",
            )
            if part
        )
        fix = (
            f"set {mount.access_mode_field or 'the access mode'}: ReadWriteMany with a storage "
            "class that offers it (NFS, CephFS, EFS, Filestore, Azure Files), or name an "
            "existing ReadWriteMany claim"
        )
        if workers > 1:
            fix += ", or run a single worker"
        raise SpecError(
            SpecReason.CLAIM_ACCESS_MODE,
            mount.access_mode_field or "accessMode",
            f"claim {mount.claim!r} is {mount.access_mode.value}, which attaches to one node, "
            f"but {pods} mount it and may be scheduled on different nodes, where every pod "
            f"after the first would wait in ContainerCreating with a Multi-Attach error; {fix}",
        )


def _claim_group(
    template: Mapping[str, Any],
    group: WorkerGroup,
    mounts: Sequence[Mount],
    secrets: Sequence[str],
    first: bool,
) -> dict[str, Any]:
    """`template`'s worker group mounting `group.claims` only and offering their resources.
    Groups after the first start empty: the autoscaler adds their pods when replicas ask."""
    volumes, volume_mounts = _volumes(mounts, secrets, head=False)
    out = copy.deepcopy(dict(template))
    out["groupName"] = group.name
    if not first:
        out["replicas"] = 0
    # The group's `resources` (KubeRay >= 1.5; common/pod.go updateRayStartParamsResources turns
    # every non-CPU/memory/GPU entry into `ray start --resources='{...}'`).
    out["resources"] = {claim_resource(c): str(CLAIM_RESOURCE_UNITS) for c in group.claims}
    pod = out["template"]["spec"]
    pod["volumes"] = volumes
    pod["containers"][0]["volumeMounts"] = volume_mounts
    return out


def _volumes(
    mounts: Sequence[Mount], secrets: Sequence[str], *, head: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts of the head (`head`) or of a worker: claims where used, all secrets."""
    # Numbered over every claim, so a claim has the same volume name on the head and workers.
    unique = list({m.claim: m for m in mounts}.values())
    here = [(i, m) for i, m in enumerate(unique) if (m.on_head if head else m.on_workers)]
    volumes: list[dict[str, Any]] = [
        {
            "name": f"cache-{i}",
            "persistentVolumeClaim": {"claimName": m.claim, "readOnly": m.read_only},
        }
        for i, m in here
    ]
    volume_mounts: list[dict[str, Any]] = [
        {"name": f"cache-{i}", "mountPath": m.mount_path, "readOnly": m.read_only} for i, m in here
    ]
    for i, secret in enumerate(sorted(set(secrets))):
        # optional: a missing Secret lets the pod start and the worker fail the job naming the
        # Secret (what the operator reports), instead of pods stuck in ContainerCreating on a
        # FailedMount that only `kubectl describe pod` shows.
        volumes.append({"name": f"secret-{i}", "secret": {"secretName": secret, "optional": True}})
        volume_mounts.append(
            {"name": f"secret-{i}", "mountPath": f"{SECRET_MOUNT_ROOT}/{secret}", "readOnly": True}
        )
    return volumes, volume_mounts


def _container(
    name: str,
    image: ContainerImage,
    *,
    requests: Mapping[str, str],
    limits: Mapping[str, str],
    mounts: list[dict[str, Any]],
    env: Mapping[str, str],
    ports: Sequence[tuple[str, int]] = (),
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image.reference,
        "imagePullPolicy": image.pull_policy,
        "resources": {"requests": dict(requests), "limits": dict(limits)},
        "volumeMounts": mounts,
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "securityContext": container_security_context(),
    }
    if ports:
        container["ports"] = [{"name": n, "containerPort": p} for n, p in ports]
    return container


def build_ray_cluster_spec(
    *,
    image: ContainerImage | str,
    placement: Placement,
    mounts: Sequence[Mount] = (),
    secrets: Sequence[str] = (),
    workers: int = 1,
    max_workers: int | None = None,
    env: Mapping[str, str] = {},
    autoscaling: bool = False,
    serve: bool = False,
    groups: Sequence[WorkerGroup] = (),
) -> dict[str, Any]:
    """The cluster spec: head (no work scheduled on it) plus worker groups on `placement`: one,
    or one per entry of `groups`, each mounting its own claims and offering their resources.

    Raises SpecError when a claim's access mode cannot serve the pods that mount it (see
    `check_claim_attachments`)."""
    image = ContainerImage.of(image)
    max_replicas = max(max_workers or workers, workers)
    check_claim_attachments(mounts, max_workers=max_replicas)
    group = {
        "groupName": placement.class_name,
        "replicas": workers,
        "minReplicas": 0 if autoscaling else workers,
        "maxReplicas": max_replicas,
        "rayStartParams": {},
        "template": {
            "metadata": {"labels": dict(POD_LABELS)},
            "spec": _worker_pod_spec(image, placement, mounts, secrets, env),
        },
    }
    worker_groups = [group]
    if groups:
        worker_groups = [
            _claim_group(
                group, g, [m for m in mounts if m.claim in g.claims], secrets, first=i == 0
            )
            for i, g in enumerate(groups)
        ]
    spec: dict[str, Any] = {
        "headGroupSpec": _head_group(image, mounts, secrets, env, serve=serve),
        "workerGroupSpecs": worker_groups,
    }
    if autoscaling:
        spec["enableInTreeAutoscaling"] = True
    return spec


def _head_group(
    image: ContainerImage,
    mounts: Sequence[Mount],
    secrets: Sequence[str],
    env: Mapping[str, str],
    *,
    serve: bool,
) -> dict[str, Any]:
    """The head group: no work scheduled on it (`num-cpus: 0`); Serve's port when it serves."""
    head_volumes, head_mounts = _volumes(mounts, secrets, head=True)
    head_ports = [("gcs-server", 6379), ("dashboard", 8265), ("client", 10001)]
    if serve:
        head_ports.append(("serve", 8000))
    return {
        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
        "template": {
            "metadata": {"labels": dict(POD_LABELS)},
            "spec": {
                "securityContext": pod_security_context(),
                "containers": [
                    _container(
                        "ray-head",
                        image,
                        requests={"cpu": "1", "memory": "2Gi"},
                        limits={"cpu": "2", "memory": "4Gi"},
                        mounts=head_mounts,
                        env=env,
                        ports=head_ports,
                    )
                ],
                "volumes": head_volumes,
            },
        },
    }


def _worker_pod_spec(
    image: ContainerImage,
    placement: Placement,
    mounts: Sequence[Mount],
    secrets: Sequence[str],
    env: Mapping[str, str],
) -> dict[str, Any]:
    """A worker pod on `placement`: its accelerators requested as limits, on its node pool."""
    worker_volumes, worker_mounts = _volumes(mounts, secrets, head=False)
    limits = {"cpu": placement.cpu, "memory": placement.memory}
    if placement.resource_name and placement.count:
        limits[placement.resource_name] = str(placement.count)
    worker_spec: dict[str, Any] = {
        "securityContext": pod_security_context(),
        "containers": [
            _container(
                "ray-worker",
                image,
                requests=dict(limits),
                limits=limits,
                mounts=worker_mounts,
                env=env,
            )
        ],
        "volumes": worker_volumes,
    }
    if placement.node_selector:
        worker_spec["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        worker_spec["tolerations"] = [dict(t) for t in placement.tolerations]
    return worker_spec
