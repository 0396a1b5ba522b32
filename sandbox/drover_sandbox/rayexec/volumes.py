"""Local stack, Ray executor: pod-template volumes mapped to directories of the data dir.

A PersistentVolumeClaim becomes `<data>/pvc/<namespace>/<claim>` and a Secret becomes files under
`<data>/secrets/<namespace>/<secret>/`; every string that starts with a mount path (in the worker
config, Serve args and env values) is rewritten to the mapped directory. `build_*` are pure.

A claim whose access modes attach it to one node, used by several pods, is refused the way
Kubernetes refuses it (`multi_attach_errors`): locally the head and each worker replica count as
separate nodes, the worst a scheduler can produce.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL_ROOT = "/models"  # the operator mounts claim C at /models/C; workers get pvcRoot=/models


@dataclass(frozen=True)
class SecretMount:
    secret: str
    directory: str
    items: tuple[tuple[str, str], ...] = ()  # (key, relative path); empty: every key


@dataclass(frozen=True)
class VolumeMap:
    """mount path -> local directory, plus the secrets and claims that must be materialised."""

    paths: dict[str, str] = field(default_factory=dict)
    claims: tuple[str, ...] = ()
    secrets: tuple[SecretMount, ...] = ()

    def rewrite(self, value: str) -> str:
        """`value` with its longest matching mount-path prefix replaced by the local directory."""
        for mount in sorted(self.paths, key=len, reverse=True):
            if value == mount or value.startswith(mount.rstrip("/") + "/"):
                return self.paths[mount] + value[len(mount.rstrip("/")) :]
        return value


def pod_templates(cluster_spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The pod specs of a rayClusterSpec / rayClusterConfig (head first, then worker groups)."""
    specs = [((cluster_spec.get("headGroupSpec") or {}).get("template") or {}).get("spec") or {}]
    for group in cluster_spec.get("workerGroupSpecs") or ():
        specs.append(((group or {}).get("template") or {}).get("spec") or {})
    return specs


def build_volume_map(cluster_spec: Mapping[str, Any], namespace: str, data_dir: str) -> VolumeMap:
    """Map every volume mount of the cluster's pod templates to a directory under `data_dir`."""
    pvc_root = os.path.join(data_dir, "pvc", namespace)
    paths: dict[str, str] = {MODEL_ROOT: pvc_root}
    claims: dict[str, None] = {}
    secrets: dict[str, SecretMount] = {}
    for pod in pod_templates(cluster_spec):
        volumes = {v.get("name"): v for v in pod.get("volumes") or () if isinstance(v, Mapping)}
        for container in pod.get("containers") or ():
            for mount in container.get("volumeMounts") or ():
                volume = volumes.get(mount.get("name"))
                target = str(mount.get("mountPath") or "")
                if volume is None or not target.startswith("/"):
                    continue
                sub = str(mount.get("subPath") or "")
                if "persistentVolumeClaim" in volume:
                    claim = str(volume["persistentVolumeClaim"].get("claimName") or "")
                    if claim:
                        claims[claim] = None
                        paths[target] = os.path.join(pvc_root, claim, sub).rstrip("/")
                elif "secret" in volume:
                    name = str(volume["secret"].get("secretName") or "")
                    if name:
                        directory = os.path.join(data_dir, "secrets", namespace, name)
                        items = tuple(
                            (str(i.get("key")), str(i.get("path")))
                            for i in volume["secret"].get("items") or ()
                        )
                        secrets[name] = SecretMount(name, directory, items)
                        paths[target] = os.path.join(directory, sub).rstrip("/")
    return VolumeMap(paths, tuple(claims), tuple(secrets.values()))


def build_container_env(cluster_spec: Mapping[str, Any]) -> dict[str, str]:
    """Literal `env` values of the pod templates' containers (what the Ray processes would see)."""
    env: dict[str, str] = {}
    for pod in reversed(pod_templates(cluster_spec)):  # the head's value wins
        for container in pod.get("containers") or ():
            for var in container.get("env") or ():
                if "value" in var and var.get("name"):
                    env[str(var["name"])] = str(var["value"])
    return env


def rewrite_strings(value: Any, rewrite: Callable[[str], str]) -> Any:
    """A copy of a JSON-like value with `rewrite` applied to every string in it."""
    if isinstance(value, str):
        return rewrite(value)
    if isinstance(value, Mapping):
        return {k: rewrite_strings(v, rewrite) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite_strings(v, rewrite) for v in value]
    return value


def rewrite_env(env: Mapping[str, str], volume_map: VolumeMap, json_keys: tuple[str, ...]) -> dict:
    """Env values rewritten; values of `json_keys` are JSON documents rewritten string by string."""
    out: dict[str, str] = {}
    for key, value in env.items():
        if key in json_keys:
            try:
                doc = json.loads(value)
            except ValueError:
                out[key] = value
                continue
            out[key] = json.dumps(rewrite_strings(doc, volume_map.rewrite), sort_keys=True)
        else:
            out[key] = volume_map.rewrite(str(value))
    return out


def ensure_volume_dirs(volume_map: VolumeMap, read_secret: Callable[[str], Any]) -> list[str]:
    """Create claim directories and write secret files; returns the names of missing Secrets.

    `read_secret(name)` returns the Secret's `data` (base64 values) or None when it is absent.
    """
    for local in volume_map.paths.values():
        if "/secrets/" not in local:
            Path(local).mkdir(parents=True, exist_ok=True)
    missing = []
    for mount in volume_map.secrets:
        data = read_secret(mount.secret)
        if data is None:
            missing.append(mount.secret)
            continue
        directory = Path(mount.directory)
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        wanted = mount.items or tuple((key, key) for key in data)
        for key, rel in wanted:
            if key not in data:
                continue
            target = directory / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(data[key] or ""))
            os.chmod(target, 0o600)
    return missing


# Access modes whose volumes may be attached to several nodes at once (Kubernetes
# pkg/volume/util/util.go IsMultiAttachAllowed: ReadWriteMany or ReadOnlyMany among the PV's
# modes; no modes at all: unknown, allowed).
MULTI_ATTACH_MODES = frozenset({"ReadWriteMany", "ReadOnlyMany"})


def pod_claims(cluster_spec: Mapping[str, Any], name: str) -> list[tuple[str, list[str]]]:
    """The pods KubeRay would create for a cluster named `name`, each with its claim names.

    The head, then `replicas` (times `numOfHosts`) pods per worker group, named the way KubeRay
    names them without the random suffix. A pod uses a claim when its `volumes` name it: the
    attach/detach controller attaches every volume of a pod's spec, mounted by a container or not.
    """
    head = cluster_spec.get("headGroupSpec") or {}
    groups: list[tuple[list[str], Mapping[str, Any]]] = [
        ([f"{name}-head"], (head.get("template") or {}).get("spec") or {})
    ]
    for group in cluster_spec.get("workerGroupSpecs") or ():
        group = group or {}
        replicas = group.get("replicas")
        if replicas is None:
            replicas = group.get("minReplicas") or 0
        count = int(replicas) * int(group.get("numOfHosts") or 1)
        prefix = f"{name}-{group.get('groupName', 'workers')}-worker"
        spec = (group.get("template") or {}).get("spec") or {}
        groups.append(([f"{prefix}-{i}" for i in range(count)], spec))
    pods: list[tuple[str, list[str]]] = []
    for names, spec in groups:
        claims = [
            str(v["persistentVolumeClaim"].get("claimName") or "")
            for v in spec.get("volumes") or ()
            if isinstance(v, Mapping) and isinstance(v.get("persistentVolumeClaim"), Mapping)
        ]
        pods += [(pod, [c for c in claims if c]) for pod in names]
    return pods


def multi_attach_errors(
    cluster_spec: Mapping[str, Any],
    name: str,
    read_claim: Callable[[str], Mapping[str, Any] | None],
) -> list[str]:
    """What Kubernetes reports for each pod left in ContainerCreating by a single-node claim.

    `read_claim(name)` returns the PersistentVolumeClaim as a dict (None when it is absent: not
    checked here); the bound volume's modes (`status.accessModes`) win over the requested ones.
    The first pod of the cluster to use a claim gets it attached to its node; every other pod
    (on another node, in the worst case) gets the event of Kubernetes' attach/detach controller
    (pkg/controller/volume/attachdetach/reconciler/reconciler.go, reportMultiAttachError, with
    operationexecutor's generateVolumeMsg):
    `Multi-Attach error for volume "<volume>" Volume is already used by pod(s) <first pod>`.
    """
    users: dict[str, list[str]] = {}
    for pod, claims in pod_claims(cluster_spec, name):
        for claim in dict.fromkeys(claims):
            users.setdefault(claim, []).append(pod)
    errors: list[str] = []
    for claim, pods in users.items():
        if len(pods) < 2:
            continue
        pvc = read_claim(claim)
        if pvc is None:
            continue
        spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
        modes = set(status.get("accessModes") or spec.get("accessModes") or ())
        if not modes or modes & MULTI_ATTACH_MODES:
            continue
        volume = str(spec.get("volumeName") or claim)  # the PV's name once bound
        for pod in pods[1:]:
            errors.append(
                f"pod {pod} is ContainerCreating: Multi-Attach error for volume "
                f'"{volume}" Volume is already used by pod(s) {pods[0]}'
            )
    return errors
