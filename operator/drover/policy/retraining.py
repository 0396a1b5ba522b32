"""Policy layer: when an InferenceService retrains, and which model it then serves.

A retraining is a FineTuneJob made from `spec.retraining.template`, named `<service>-retrain-<n>`
(n counts the service's retrainings, kept in status), so a restarted operator that finds the
job already there does not create a second one. At most one runs at a time; a new one needs its
trigger (drift detected, or the schedule's interval passed) and the cooldown since the last one.
A job that passes its evaluation gate becomes `status.retraining.latest`, which the serving
reconcile then serves in place of spec.model (and spec.adapter) — as a canary through
spec.rollout — for as long as the spec still names what it named when the job was created:
the spec belongs to the user's GitOps repository and is never rewritten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from drover.api.drift import (
    DRIFT_HISTORY_LIMIT,
    RetrainingRun,
    RetrainingSpec,
    RetrainingStatus,
    RetrainingTrigger,
)
from drover.api.finetunejob import FineTuneMethod
from drover.api.inferenceservice import InferenceServiceSpec
from drover.policy.events import Event

__all__ = [
    "JobView",
    "RetrainingDecision",
    "basis_of",
    "decide_retraining",
    "job_name",
    "job_spec",
    "served_names",
]

NAME_LIMIT = 63  # the output FoundationModel's name is a DNS label


def basis_of(spec: InferenceServiceSpec) -> str:
    """What the spec names to serve: `model` or `model+adapter`."""
    return spec.model.name + (f"+{spec.adapter.name}" if spec.adapter else "")


def served_names(spec: InferenceServiceSpec, status: Mapping[str, Any] | None) -> list[str]:
    """The FoundationModels to serve, base first (then the adapter): the latest retraining's
    output while the spec still names what it named then, else the spec's own."""
    latest = RetrainingStatus.model_validate(status).latest if status else None
    if spec.retraining is None or latest is None or latest.model is None:
        return [spec.model.name] + ([spec.adapter.name] if spec.adapter else [])
    if latest.basis != basis_of(spec):
        return [spec.model.name] + ([spec.adapter.name] if spec.adapter else [])
    return [latest.adapter_of, latest.model] if latest.adapter_of else [latest.model]


def job_name(service: str, n: int) -> str:
    """`<service>-retrain-<n>`, shortened with a hash of the service's name past 63 characters."""
    suffix = f"-retrain-{n}"
    name = service + suffix
    if len(name) <= NAME_LIMIT:
        return name
    digest = hashlib.sha256(service.encode()).hexdigest()[:8]
    head = service[: NAME_LIMIT - len(suffix) - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}{suffix}"


def job_spec(spec: RetrainingSpec, name: str) -> dict[str, Any]:
    """The FineTuneJob spec of one retraining: the template, its output named after the job."""
    wire: dict[str, Any] = spec.job.model_dump(mode="json", by_alias=True, exclude_none=True)
    wire.setdefault("output", {})["modelName"] = name
    return wire


def adapter_base(spec: RetrainingSpec) -> str | None:
    """The base model a retraining's output applies to when it is a LoRA adapter (not merged)."""
    template = spec.job
    if template.method == FineTuneMethod.LORA and not template.output.merge:
        return template.base_model.name
    return None


@dataclass(frozen=True)
class JobView:
    """What the handler read of the current run's FineTuneJob (None fields: not there yet)."""

    exists: bool
    phase: str | None = None
    output_model: str | None = None
    message: str = ""


@dataclass
class RetrainingDecision:
    status: RetrainingStatus
    create: str | None = None  # the FineTuneJob to create
    trigger: RetrainingTrigger | None = None
    events: list[Event] = field(default_factory=list)


def _finish(
    status: RetrainingStatus, run: RetrainingRun, job: JobView, spec: RetrainingSpec
) -> Event | None:
    """Record the current run's end (Succeeded / Failed / deleted) in `status`."""
    if job.exists and job.phase not in ("Succeeded", "Failed"):
        status.current = run.model_copy(update={"phase": job.phase})
        return None
    status.current = None
    if job.phase == "Succeeded" and job.output_model:
        done = run.model_copy(
            update={
                "phase": "Succeeded",
                "model": job.output_model,
                "adapter_of": adapter_base(spec),
            }
        )
        status.latest = done
        why = f"passed its evaluation gate; serving {job.output_model}"
        event = Event("Normal", "RetrainingSucceeded", f"FineTuneJob {run.job}: {why}")
    else:
        why = job.message or ("the job was deleted" if not job.exists else "failed")
        done = run.model_copy(update={"phase": job.phase or "Deleted"})
        event = Event("Warning", "RetrainingFailed", f"FineTuneJob {run.job}: {why}")
    line = f"{done.job} ({done.trigger.value}, {done.created_at:%Y-%m-%dT%H:%M:%SZ}): "
    status.history = [*status.history, line + f"{done.phase}: {why}"]
    status.history = status.history[-DRIFT_HISTORY_LIMIT:]
    return event


def _trigger(
    spec: RetrainingSpec,
    status: RetrainingStatus,
    drift_detected: bool,
    now: datetime,
) -> RetrainingTrigger | None:
    last = status.since if status.count else None
    if last is not None and now - last < timedelta(seconds=spec.cooldown_seconds):
        return None
    if spec.on_drift and drift_detected:
        return RetrainingTrigger.DRIFT
    since = status.since
    every = spec.schedule_seconds
    if every and since and now - since >= timedelta(seconds=every):
        return RetrainingTrigger.SCHEDULE
    return None


def decide_retraining(
    service: str,
    spec: InferenceServiceSpec,
    previous: RetrainingStatus | None,
    job: JobView | None,
    *,
    drift_detected: bool,
    rolling_out: bool,
    now: datetime,
) -> RetrainingDecision:
    """Follow the run in flight (`job` is its FineTuneJob), or start one when a trigger fires.
    No run starts while a canary rolls out: the drift it would answer belongs to the old stable."""
    assert spec.retraining is not None
    status = (previous or RetrainingStatus()).model_copy(deep=True)
    status.since = status.since or now  # the schedule's start until a run starts
    decision = RetrainingDecision(status)
    if status.current is not None:
        event = _finish(status, status.current, job or JobView(exists=False), spec.retraining)
        decision.events += [event] if event else []
        return decision
    if rolling_out:
        return decision
    trigger = _trigger(spec.retraining, status, drift_detected, now)
    if trigger is None:
        return decision
    status.count += 1
    status.since = now
    name = job_name(service, status.count)
    status.current = RetrainingRun(
        job=name, trigger=trigger, created_at=now, basis=basis_of(spec), phase="Pending"
    )
    decision.create, decision.trigger = name, trigger
    why = "drift detected" if trigger is RetrainingTrigger.DRIFT else "scheduled"
    decision.events.append(Event("Normal", "RetrainingStarted", f"FineTuneJob {name}: {why}"))
    return decision
