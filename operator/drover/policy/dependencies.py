"""Policy layer: is a FoundationModel another resource depends on ready to use?

One function for every dependency (a job's base model, an index's embedder, a service's model),
so all of them wait, fail and explain themselves the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drover.api.reasons import DependencyReason
from drover.policy.conditions import Cond


def decide_model_ready(
    cond_type: str, field: str, name: str, model: Mapping[str, Any] | None
) -> Cond:
    """`cond_type` True when the model is Ready with a digest; a reason and fix otherwise."""
    if model is None:
        return Cond(
            cond_type,
            False,
            DependencyReason.MODEL_NOT_FOUND,
            f"FoundationModel {name} does not exist; create it or fix {field}",
        )
    status = model.get("status") or {}
    if status.get("phase") == "Ready" and status.get("digest"):
        return Cond(cond_type, True, DependencyReason.MODEL_READY, f"{name} is {status['digest']}")
    if status.get("phase") == "Failed":
        return Cond(
            cond_type,
            False,
            DependencyReason.DEPENDENCY_FAILED,
            f"FoundationModel {name} failed; see its status, or point {field} at another model",
        )
    phase = status.get("phase") or "Pending"
    return Cond(
        cond_type,
        False,
        DependencyReason.WAITING_FOR_MODEL,
        f"waiting for FoundationModel {name} to be Ready (phase {phase})",
    )


def decide_secret_ready(
    cond_type: str, field: str, namespace: str, name: str, key: str, state: str
) -> Cond | None:
    """`cond_type` False naming the Secret and the fix when `state` (k8s.secrets.SecretState's
    value) says it or its key is missing; None when present or unknown (nothing to report)."""
    create = (
        f"create it in namespace {namespace} (kubectl -n {namespace} create secret generic "
        f"{name} --from-literal={key}=...) or fix {field}"
    )
    if state == "no-secret":
        return Cond(
            cond_type,
            False,
            DependencyReason.SECRET_NOT_FOUND,
            f"Secret {name} does not exist; {create}",
        )
    if state == "no-key":
        return Cond(
            cond_type,
            False,
            DependencyReason.SECRET_KEY_NOT_FOUND,
            f"Secret {name} has no key {key}; add the key to it or fix {field}.key",
        )
    return None


def all_problems(conds: Sequence[Cond]) -> Cond | None:
    """One condition for several dependencies: None when every one is True; else the first
    problem's type and reason with every problem's message, so a user fixes them all at once."""
    problems = [c for c in conds if c.status is not True]
    if not problems:
        return None
    first = problems[0]
    return Cond(first.type, first.status, first.reason, "; ".join(c.message for c in problems))
