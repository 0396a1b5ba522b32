"""Local stack, Ray executor: when KubeRay builds a new RayCluster for a RayService.

KubeRay v1.7.0 compares the RayService's `rayClusterConfig` with the running cluster's through a
hash that leaves out what its autoscaler changes (ray-operator/controllers/ray/utils/util.go,
`GenerateHashWithoutReplicasAndWorkersToDelete`: each worker group's replicas, minReplicas,
maxReplicas and scaleStrategy.workersToDelete, and the cluster's upgradeStrategy). Equal hashes:
nothing to do. Worker groups appended at the end, the rest equal: the running cluster is updated
in place. Anything else: with upgradeStrategy NewCluster, a whole new cluster is prepared beside
the old one and traffic switches when its Serve applications run
(rayservice_controller.go, `shouldPrepareNewCluster`, `isClusterSpecHashEqual` with `partial`).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from drover.api.common import parse_timestamp


class ClusterChange(Enum):
    NONE = "none"  # same hash: KubeRay leaves the cluster alone (replica counts may differ)
    UPDATE = "update"  # worker groups appended: the running cluster is updated in place
    NEW_CLUSTER = "new-cluster"  # anything else: a new cluster, then a switch


def cluster_hash(cluster_spec: Mapping[str, Any]) -> str:
    """The hash KubeRay compares: the spec without replica counts and workers to delete."""
    spec = copy.deepcopy(dict(cluster_spec))
    for group in spec.get("workerGroupSpecs") or []:
        for key in ("replicas", "minReplicas", "maxReplicas"):
            group.pop(key, None)
        strategy = group.get("scaleStrategy")
        if isinstance(strategy, dict):
            strategy.pop("workersToDelete", None)
            if not strategy:
                group.pop("scaleStrategy")
    spec.pop("upgradeStrategy", None)
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha1(blob).hexdigest()


def cluster_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> ClusterChange:
    """What KubeRay does when a RayService's rayClusterConfig goes from `old` to `new`."""
    if cluster_hash(old) == cluster_hash(new):
        return ClusterChange.NONE
    old_groups = old.get("workerGroupSpecs") or []
    new_groups = new.get("workerGroupSpecs") or []
    if len(new_groups) > len(old_groups):
        trimmed = {**new, "workerGroupSpecs": new_groups[: len(old_groups)]}
        if cluster_hash(old) == cluster_hash(trimmed):
            return ClusterChange.UPDATE
    return ClusterChange.NEW_CLUSTER


# The local stand-in's time for a new cluster's pods to start and its Serve applications to run;
# on a cluster that is minutes (image pulls, model loads), which is why Drover avoids rebuilds.
NEW_CLUSTER_SECONDS = 8.0


@dataclass(frozen=True)
class Upgrade:
    """Which cluster serves a RayService now and which one is being prepared."""

    active: str  # the cluster KubeRay's services point at
    pending: str = ""  # a new cluster being prepared; "" when none
    started: dt.datetime | None = None  # when the pending cluster was first reported


def cluster_name(rayservice: Mapping[str, Any]) -> str:
    """The local cluster's name: KubeRay names it `<rayservice>-<random>`; the local executor
    puts the spec hash there instead, so a restarted executor knows which spec is running."""
    spec = (rayservice.get("spec") or {}).get("rayClusterConfig") or {}
    return f"{rayservice['metadata']['name']}-{cluster_hash(spec)[:5]}"


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions") or () if c.get("type") == kind), {})


def plan_upgrade(
    rayservice: Mapping[str, Any], now: dt.datetime, active_spec: Mapping[str, Any] | None = None
) -> Upgrade:
    """KubeRay's choice between the active and a pending cluster (rayservice_controller.go at
    v1.7.0, `Reconcile`, `calculateStatus`, `isZeroDowntimeUpgradeEnabled`): a first cluster
    becomes active; a changed hash under upgradeStrategy NewCluster (the default) prepares a new
    one, and traffic switches once it serves (here: NEW_CLUSTER_SECONDS after it was reported);
    under `None` the running cluster stays as it is. `active_spec` is the spec the active
    cluster runs, when known: a change that only appends worker groups updates it in place, and
    it keeps its name (the executor remembers specs in memory; after a restart it cannot tell,
    and treats the change as a new cluster)."""
    status = rayservice.get("status") or {}
    desired = cluster_name(rayservice)
    active = str((status.get("activeServiceStatus") or {}).get("rayClusterName") or "")
    if not active or active == desired:
        return Upgrade(active=desired)
    wanted = (rayservice.get("spec") or {}).get("rayClusterConfig") or {}
    if (
        active_spec is not None
        and cluster_change(active_spec, wanted) is not ClusterChange.NEW_CLUSTER
    ):
        return Upgrade(active=active)
    strategy = ((rayservice.get("spec") or {}).get("upgradeStrategy") or {}).get("type")
    if strategy == "None":
        return Upgrade(active=active)
    cond = _condition(status, "UpgradeInProgress")
    pending = str((status.get("pendingServiceStatus") or {}).get("rayClusterName") or "")
    started = now
    if cond.get("status") == "True" and pending == desired:
        started = parse_timestamp(cond.get("lastTransitionTime")) or now
    if (now - started).total_seconds() >= NEW_CLUSTER_SECONDS:
        return Upgrade(active=desired)  # the new cluster serves: KubeRay promotes it
    return Upgrade(active=active, pending=desired, started=started)
