"""Policy layer: is a FoundationModel another resource depends on ready to use?

One function for every dependency (a job's base model, an index's embedder, a service's model),
so all of them wait, fail and explain themselves the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drover.policy.conditions import Cond


def decide_model_ready(
    cond_type: str, field: str, name: str, model: Mapping[str, Any] | None
) -> Cond:
    """`cond_type` True when the model is Ready with a digest; a reason and fix otherwise."""
    if model is None:
        return Cond(
            cond_type,
            False,
            "ModelNotFound",
            f"FoundationModel {name} does not exist; create it or fix {field}",
        )
    status = model.get("status") or {}
    if status.get("phase") == "Ready" and status.get("digest"):
        return Cond(cond_type, True, "ModelReady", f"{name} is {status['digest']}")
    if status.get("phase") == "Failed":
        return Cond(
            cond_type,
            False,
            "DependencyFailed",
            f"FoundationModel {name} failed; see its status, or point {field} at another model",
        )
    phase = status.get("phase") or "Pending"
    return Cond(
        cond_type,
        False,
        "WaitingForModel",
        f"waiting for FoundationModel {name} to be Ready (phase {phase})",
    )
