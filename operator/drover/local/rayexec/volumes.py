"""Local stack, Ray executor: pod-template volumes mapped to directories of the data dir.

A PersistentVolumeClaim becomes `<data>/pvc/<namespace>/<claim>` and a Secret becomes files under
`<data>/secrets/<namespace>/<secret>/`; every string that starts with a mount path (in the worker
config, Serve args and env values) is rewritten to the mapped directory. `build_*` are pure.
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
