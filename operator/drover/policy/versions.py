"""Policy layer: which versions an InferenceService runs, after the rollout machine has spoken.

Pure. The rollout state machine says what to do (deploy the first version, deploy or remove a
canary, promote it); these functions apply that to the recorded stable/canary pair, read each
version's readiness from Serve's deployment health, and derive the service's phase.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drover.api.rollout import ACTIVE_PHASES, ServedVersion, VersionRef
from drover.api.versions import version_id
from drover.policy.conditions import Cond
from drover.policy.rollout import RolloutAction, RolloutDecision
from drover.policy.serving import serves


def served_with_health(raw: Any, health: Mapping[str, str]) -> ServedVersion | None:
    """The recorded version with `ready` from Serve: `health` maps version id to the status of
    its application's `model` deployment, and that deployment serves (HEALTHY, or UPSCALING /
    DOWNSCALING on its running replicas)."""
    if not raw:
        return None
    version = ServedVersion.model_validate(raw)
    # A version that was ready stays ready while Serve updates its deployment (see `serves`).
    ready = serves(health.get(version_id(version.digest)), was_serving=version.ready)
    return version.model_copy(update={"ready": ready})


def apply_actions(
    decision: RolloutDecision,
    desired: VersionRef | None,
    stable: ServedVersion | None,
    canary: ServedVersion | None,
) -> tuple[ServedVersion | None, ServedVersion | None]:
    """The (stable, canary) pair after the decision's actions."""
    for action in decision.actions:
        if action is RolloutAction.DEPLOY_STABLE and desired is not None:
            stable = ServedVersion(model=desired.model, digest=desired.digest, weight=100)
        elif action is RolloutAction.REMOVE_CANARY:
            canary = None
        elif action is RolloutAction.PROMOTE_CANARY and canary is not None:
            stable, canary = canary, None
    target = decision.canary
    rolling = decision.status.phase in ACTIVE_PHASES
    if target is not None and rolling and (canary is None or canary.ref() != target):
        canary = ServedVersion(model=target.model, digest=target.digest)
    return stable, canary


def desired_replicas(bounds: tuple[int, int], autoscaling: Mapping[str, Any] | None) -> int:
    """The autoscaler's recorded decision within bounds; the minimum when it has none."""
    low, high = bounds
    decided = (autoscaling or {}).get("desiredReplicas")
    value = int(decided) if decided is not None else low
    return max(low, min(high, value))


def service_phase(model: Cond, serving: Cond, canary: ServedVersion | None) -> str:
    if serving.status is False:
        return "Degraded"
    if canary is not None:
        return "RollingOut"
    if serving.status is True:
        return "Ready"
    return "Deploying" if model.status is True else "WaitingForModel"
