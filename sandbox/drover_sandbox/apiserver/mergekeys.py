"""Local control plane, patch layer: merge keys of the built-in kinds the project uses.

Strategic merge patch and server-side apply merge these lists by key (containers, env and
volumes by name, ports by containerPort or port, ownerReferences by uid, finalizers as a set);
every other list is atomic.
"""

from __future__ import annotations

__all__ = ["BUILTIN_MERGE_KEYS", "SET", "merge_keys_for"]

SET = "$set"
"""A merge-key value meaning "list of scalars merged as a set" (e.g. finalizers)."""


def _pod_keys(prefix: str) -> dict[str, str]:
    keys = {
        "containers": "name",
        "initContainers": "name",
        "ephemeralContainers": "name",
        "volumes": "name",
        "imagePullSecrets": "name",
        "hostAliases": "ip",
        "topologySpreadConstraints": "topologyKey",
    }
    container_keys = {
        "env": "name",
        "ports": "containerPort",
        "volumeMounts": "mountPath",
        "volumeDevices": "devicePath",
        "resizePolicy": "resourceName",
    }
    result = {f"{prefix}.{field}": key for field, key in keys.items()}
    for containers in ("containers", "initContainers", "ephemeralContainers"):
        for field, key in container_keys.items():
            result[f"{prefix}.{containers}.{field}"] = key
    return result


_META = {"metadata.ownerReferences": "uid", "metadata.finalizers": SET}
_CONDITIONS = {"status.conditions": "type"}
_TEMPLATE = _pod_keys("spec.template.spec")
BUILTIN_MERGE_KEYS: dict[str, dict[str, str]] = {
    "Pod": {**_META, **_CONDITIONS, **_pod_keys("spec")},
    "Deployment": {**_META, **_CONDITIONS, **_TEMPLATE},
    "ReplicaSet": {**_META, **_CONDITIONS, **_TEMPLATE},
    "StatefulSet": {**_META, **_CONDITIONS, **_TEMPLATE},
    "DaemonSet": {**_META, **_CONDITIONS, **_TEMPLATE},
    "Job": {**_META, **_CONDITIONS, **_TEMPLATE},
    "CronJob": {**_META, **_pod_keys("spec.jobTemplate.spec.template.spec")},
    "Service": {**_META, **_CONDITIONS, "spec.ports": "port"},
    "Namespace": {**_META, **_CONDITIONS, "spec.finalizers": SET},
    "Node": {**_META, **_CONDITIONS},
}
"""Strategic merge keys per built-in kind: dotted path (no list indices) → merge key.

Kinds not listed (ConfigMap, Secret, Lease, Event, ...) still merge maps and get the
metadata keys from :func:`merge_keys_for`; their lists are replaced.
"""


def merge_keys_for(kind: str) -> dict[str, str]:
    """Merge keys for a built-in kind (metadata keys only for kinds not listed)."""
    return BUILTIN_MERGE_KEYS.get(kind, _META)
