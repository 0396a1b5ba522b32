"""Statuses of the four kinds as the operator writes them, and the two readers of them that the
GitOps tests apply: Argo CD's health script (`argocd_health`, real Lua 5.1) and kstatus' rules
(`kstatus_compute`). The integration test test_gitops_health_live.py applies the same readers to
statuses the running operator wrote.

Each status here goes through the handlers' own `write_status` (set the sub-conditions,
summarise, stamp observedGeneration) with the conditions and reasons the policy layer decides,
so the tests read exactly the shape that reaches the API server.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf
import lupa.lua51 as lua51

from drover.handlers import finetunejob, foundationmodel, inferenceservice, vectorindex
from drover.handlers.common import write_status
from drover.policy.conditions import Cond

ROOT = Path(__file__).resolve().parents[3]
HEALTH_LUA = ROOT / "charts" / "drover" / "argocd" / "health.lua"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def argocd_health(obj: dict[str, Any]) -> dict[str, str]:
    """Run the chart's health script the way Argo CD does: `obj` global in, a table out."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = _to_lua(runtime, obj)
    result = runtime.execute(HEALTH_LUA.read_text())
    return {str(k): str(v) for k, v in dict(result).items()}


def kstatus_compute(obj: dict[str, Any]) -> tuple[str, str]:
    """kstatus' verdict on a custom resource (sigs.k8s.io/cli-utils pkg/kstatus/status):
    `Compute` (status.go) runs `checkGenericProperties` (generic.go) — deletionTimestamp →
    Terminating; `checkGeneration`: status.observedGeneration present and != metadata.generation
    → InProgress; a condition Reconciling=True → InProgress; Stalled=True → Failed — and, for a
    kind it has no rules for (every CRD), otherwise returns Current."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating", "Resource scheduled for deletion"
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        return "InProgress", (
            f"{obj['kind']} generation is {generation}, but latest observed generation is "
            f"{observed}"
        )
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Reconciling" and cond.get("status") == "True":
            return "InProgress", cond.get("message", "")
        if cond.get("type") == "Stalled" and cond.get("status") == "True":
            return "Failed", cond.get("message", "")
    return "Current", "Resource is current"


DECLARED = {
    "FoundationModel": foundationmodel.DECLARED,
    "FineTuneJob": finetunejob.DECLARED,
    "VectorIndex": vectorindex.DECLARED,
    "InferenceService": inferenceservice.DECLARED,
}


def resource(kind: str, name: str, generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "drover.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "ml", "generation": generation},
        "spec": {},
    }


def written(
    body: dict[str, Any], conds: list[Cond], fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`body` after the operator's status patch of `conds` and `fields`."""
    patch = kopf.Patch()
    write_status(
        body, patch, fields=fields or {}, conditions=conds, declared=DECLARED[body["kind"]], when=T0
    )
    out = copy.deepcopy(body)
    out["status"] = merge_status(body.get("status") or {}, dict(patch.get("status") or {}))
    return out


def merge_status(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a JSON merge patch (RFC 7386) the way the API server does."""
    out = dict(old)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_status(out[key], value)
        else:
            out[key] = value
    return out


def edited(obj: dict[str, Any]) -> dict[str, Any]:
    """The same object after `kubectl apply` of a new spec, before the operator saw it."""
    out = copy.deepcopy(obj)
    out["metadata"]["generation"] += 1
    return out


@dataclass(frozen=True)
class Case:
    """An object as the operator leaves it, and what Argo CD and kstatus should call it."""

    name: str
    obj: dict[str, Any]
    argocd: str  # Healthy, Progressing, Degraded, Suspended
    kstatus: str  # Current, InProgress, Failed, Terminating


CLAIM = Cond("CacheReady", True, "ClaimBound", "weights cache on claim tiny-llama-cache")
BASE = Cond("BaseModelReady", True, "ModelReady", "tiny-llama is sha256:0a1b")
EMBEDDER = Cond("EmbeddingModelReady", True, "ModelReady", "minilm is sha256:9f8e")
MODEL = Cond("ModelReady", True, "ModelReady", "tiny-llama is sha256:0a1b")
SERVING = Cond("ServingReady", True, "Serving", "Serve applications support-bot, v-0a1b run")


def _fm(conds: list[Cond], phase: str, generation: int = 1) -> dict[str, Any]:
    return written(resource("FoundationModel", "tiny-llama", generation), conds, {"phase": phase})


def _ft(conds: list[Cond], phase: str) -> dict[str, Any]:
    return written(resource("FineTuneJob", "support-lora"), conds, {"phase": phase})


def _vi(conds: list[Cond], phase: str) -> dict[str, Any]:
    return written(resource("VectorIndex", "handbook"), conds, {"phase": phase})


def _rollout(phase: str, reason: str, *, canary: bool) -> dict[str, Any]:
    stable = {"model": "tiny-llama", "digest": "sha256:0a1b", "weight": 100, "ready": True}
    fields: dict[str, Any] = {
        "phase": "RollingOut" if canary else "Ready",
        "stable": stable,
        "rollout": {
            "phase": phase,
            "target": {"model": "support-lora", "digest": "sha256:0a1b+77"},
            "reason": reason,
        },
    }
    if canary:
        stable["weight"] = 80
        fields["canary"] = {"model": "support-lora", "digest": "sha256:0a1b+77", "weight": 20}
    healthy = Cond("RolloutHealthy", phase != "RolledBack", phase, reason)
    return written(resource("InferenceService", "support-bot"), [MODEL, SERVING, healthy], fields)


def _is(conds: list[Cond], phase: str) -> dict[str, Any]:
    return written(resource("InferenceService", "support-bot"), conds, {"phase": phase})


def cases() -> list[Case]:
    fetched = _fm([CLAIM, Cond("Fetched", True, "Cached", "sha256:0a1b, 2.1 MB")], "Ready")
    trained = [BASE, Cond("Trained", True, "Trained", "support-lora-train finished")]
    return [
        # FoundationModel
        Case("fm-created", resource("FoundationModel", "tiny-llama"), "Progressing", "Current"),
        Case(
            "fm-fetching",
            _fm([CLAIM, Cond("Fetched", None, "Fetching", "fetch job running: 40%")], "Fetching"),
            "Progressing",
            "InProgress",
        ),
        Case("fm-ready", fetched, "Healthy", "Current"),
        Case(
            "fm-fetch-failed",
            _fm([CLAIM, Cond("Fetched", False, "FetchFailed", "404 from the hub")], "Failed"),
            "Degraded",
            "Failed",
        ),
        Case(
            "fm-invalid-spec",
            _fm(
                [Cond("CacheReady", False, "InvalidSpec", "spec.source.uri: bad scheme")], "Failed"
            ),
            "Degraded",
            "Failed",
        ),
        Case("fm-spec-edited", edited(fetched), "Progressing", "InProgress"),
        # FineTuneJob
        Case(
            "ft-waiting-for-base",
            _ft(
                [Cond("BaseModelReady", False, "WaitingForModel", "waiting for tiny-llama")],
                "WaitingForBaseModel",
            ),
            "Progressing",
            "InProgress",
        ),
        Case(
            "ft-training",
            _ft(
                [
                    BASE,
                    Cond("Trained", None, "Training", "step 40/100"),
                    Cond("Evaluated", None, "Pending", ""),
                ],
                "Running",
            ),
            "Progressing",
            "InProgress",
        ),
        Case(
            "ft-succeeded",
            _ft(
                [*trained, Cond("Evaluated", True, "EvaluationPassed", "rougeL 0.41 >= 0.3")],
                "Succeeded",
            ),
            "Healthy",
            "Current",
        ),
        Case(
            "ft-training-failed",
            _ft([BASE, Cond("Trained", False, "TrainingFailed", "RayJob failed: OOM")], "Failed"),
            "Degraded",
            "Failed",
        ),
        Case(
            "ft-below-threshold",
            _ft(
                [
                    *trained,
                    Cond("Evaluated", False, "EvaluationBelowThreshold", "rougeL 0.1 < 0.3"),
                ],
                "Failed",
            ),
            "Degraded",
            "Failed",
        ),
        # VectorIndex
        Case(
            "vi-building",
            _vi([EMBEDDER, Cond("Built", None, "Building", "embedding 3 documents")], "Building"),
            "Progressing",
            "InProgress",
        ),
        Case(
            "vi-ready",
            _vi([EMBEDDER, Cond("Built", True, "Built", "version 1 is current")], "Ready"),
            "Healthy",
            "Current",
        ),
        Case(
            "vi-embedder-failed",
            _vi(
                [
                    Cond(
                        "EmbeddingModelReady",
                        False,
                        "DependencyFailed",
                        "FoundationModel minilm failed",
                    )
                ],
                "Failed",
            ),
            "Degraded",
            "Failed",
        ),
        # InferenceService
        Case(
            "is-deploying",
            _is(
                [MODEL, Cond("ServingReady", None, "Deploying", "creating the RayService")],
                "Deploying",
            ),
            "Progressing",
            "InProgress",
        ),
        Case("is-serving", _is([MODEL, SERVING], "Ready"), "Healthy", "Current"),
        Case(
            "is-serving-failed",
            _is(
                [
                    MODEL,
                    Cond("ServingReady", False, "ServingFailed", "support-bot is DEPLOY_FAILED"),
                ],
                "Degraded",
            ),
            "Degraded",
            "Failed",
        ),
        Case(
            "is-rollout-step",
            _rollout("Step", "step 1/3: canary at 20% (warmed)", canary=True),
            "Progressing",
            "Current",
        ),
        Case(
            "is-rollout-paused",
            _rollout("Paused", "paused by the drover.dev/rollout annotation", canary=True),
            "Suspended",
            "Current",
        ),
        Case(
            "is-rollout-promoted",
            _rollout("Promoted", "promoted support-lora@0a1b+77: all steps passed", canary=False),
            "Healthy",
            "Current",
        ),
        Case(
            "is-rolled-back",
            _rollout("RolledBack", "RolledBack support-lora: error rate 0.2 > 0.05", canary=False),
            "Degraded",
            "Current",
        ),
    ]
