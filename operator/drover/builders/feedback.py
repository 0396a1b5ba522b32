"""Builders layer: an InferenceService's feedback storage on the serving cluster.

The router appends feedback records under `spec.feedback.storage` (`pvc://claim/path`): the
claim is mounted read-write on the serving workers, the router deployment asks for the claim's
Ray resource so it lands on a pod that mounts it, and its args say where to write
(drover_workers.serve.feedback.FeedbackArgs).
"""

from __future__ import annotations

from typing import Any

from drover.api.inferenceservice import InferenceService
from drover.api.uris import parse_source_uri
from drover.builders.meta import model_mount_path


def feedback_claim(svc: InferenceService) -> str | None:
    """The claim the router writes feedback to, when feedback is on."""
    fb = svc.spec.feedback
    if fb is None or not fb.enabled or fb.storage is None:
        return None
    return parse_source_uri(fb.storage).authority


def feedback_claims(svc: InferenceService) -> set[str]:
    claim = feedback_claim(svc)
    return {claim} if claim else set()


def build_feedback_args(svc: InferenceService) -> dict[str, Any] | None:
    """The router's `feedback` args, or None when feedback is off."""
    fb = svc.spec.feedback
    if fb is None or not fb.enabled or fb.storage is None:
        return None
    uri = parse_source_uri(fb.storage)
    path = f"{model_mount_path(uri.authority)}/{uri.path}".rstrip("/")
    return {
        "path": path,
        "builtinRedactors": [r.value for r in fb.redact.builtin],
        "redact": [{"name": p.name, "pattern": p.pattern} for p in fb.redact.patterns],
        "remember": fb.remember,
    }
