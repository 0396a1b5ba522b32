"""Policy layer: whether KubeRay is replacing a RayService's Ray cluster, and what that means.

Pure. When `rayClusterConfig` changes beyond replica counts, KubeRay (v1.7.0,
rayservice_controller.go `Reconcile` / `calculateStatus` / `calculateConditions`) prepares a new
RayCluster beside the active one, stops applying serveConfigV2 to the active cluster, reports
none of its Serve applications (activeServiceStatus.applicationStatuses is empty) and sets the
UpgradeInProgress condition until traffic switches to the new cluster. During that time the
active cluster keeps serving what it served; an empty application list then says nothing about
version health, and a weight or replica change would not reach the serving cluster. So the
operator keeps the last version health it saw and holds rollout steps and autoscaling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def cluster_upgrade(rayservice: Mapping[str, Any] | None) -> str | None:
    """A sentence for the user while KubeRay replaces the RayService's cluster, else None."""
    status = (rayservice or {}).get("status") or {}
    pending = str((status.get("pendingServiceStatus") or {}).get("rayClusterName") or "")
    active = str((status.get("activeServiceStatus") or {}).get("rayClusterName") or "")
    upgrading = any(
        c.get("type") == "UpgradeInProgress" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )
    if not (upgrading or (pending and active)):
        return None
    name = (rayservice or {}).get("metadata", {}).get("name", "")
    return (
        f"KubeRay is replacing the Ray cluster of RayService {name}: {pending or 'a new cluster'} "
        f"is being prepared{_pending_progress(status)} while {active or 'the active cluster'} "
        "keeps serving (its rayClusterConfig changed beyond replica counts, e.g. a model on "
        "another cache claim); rollout steps and autoscaling wait for the switch"
    )


def _pending_progress(status: Mapping[str, Any]) -> str:
    """How far the new cluster's Serve applications are (pendingServiceStatus), or ""."""
    apps = (status.get("pendingServiceStatus") or {}).get("applicationStatuses") or {}
    if not apps:
        return ""
    states = {name: str((app or {}).get("status") or "") for name, app in apps.items()}
    running = sum(s == "RUNNING" for s in states.values())
    failed = sorted(n for n, s in states.items() if s in ("DEPLOY_FAILED", "UNHEALTHY"))
    text = f" ({running}/{len(states)} Serve applications running"
    return text + (f"; failing: {', '.join(failed)})" if failed else ")")
