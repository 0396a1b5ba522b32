"""Builders layer: the securityContexts of every pod and container Drover defines.

Pod Security "restricted", as the Ray images' own user; the Ray cluster builder
(`drover.builders.raycluster`) and the RayJob submitter template (`drover.builders.rayjob`) use
them, and tests/unit/builders/test_pod_security.py checks every manifest against the standard.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RAY_GID", "RAY_UID", "container_security_context", "pod_security_context"]

# The Ray images (rayproject/ray and Drover's workers image built on it) run as user `ray`,
# uid 1000, primary group `users`, gid 100. KubeRay sets no securityContext (common/pod.go).
RAY_UID = 1000
RAY_GID = 100


def pod_security_context() -> dict[str, Any]:
    """The pod-level securityContext of every Ray pod: "restricted", as the Ray images' user.

    `fsGroup` makes a fresh volume writable by gid 100 (a new claim's root is owned by root);
    `OnRootMismatch` skips the recursive chown when the root already matches, which on a model
    cache of many GiB is the difference between seconds and minutes of pod start.
    """
    return {
        "runAsNonRoot": True,
        "runAsUser": RAY_UID,
        "runAsGroup": RAY_GID,
        "fsGroup": RAY_GID,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """The container-level securityContext of every container Drover defines ("restricted").

    The root filesystem stays writable: Pod Security "restricted" does not require it read-only,
    and Ray writes its session directory, logs and spilled objects under /tmp/ray, runtime_env
    and compile caches under $HOME; emptyDirs over each would cost the node the same ephemeral
    storage and break whenever Ray or vLLM adds a path.
    """
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
