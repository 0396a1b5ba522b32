"""Policy layer: what a RayJob's status means for the Drover resource that owns it.

KubeRay v1.7.0 reports `jobDeploymentStatus` (the RayJob's own life) and `jobStatus` (the Ray
job's); `classify_rayjob` folds both into one of five states with a sentence for the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    MISSING = "Missing"
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class JobView:
    state: JobState
    message: str


_PENDING = {"", "New", "Initializing", "Waiting", "Suspending", "Suspended"}
_RUNNING = {"Running", "Retrying"}
_FAILED = {"Failed", "ValidationFailed"}


def classify_rayjob(rayjob: Mapping[str, Any] | None) -> JobView:
    """Fold a RayJob's status into Missing / Pending / Running / Succeeded / Failed."""
    if rayjob is None:
        return JobView(JobState.MISSING, "the RayJob does not exist yet")
    status = rayjob.get("status") or {}
    deployment = str(status.get("jobDeploymentStatus") or "")
    job = str(status.get("jobStatus") or "")
    message = str(status.get("message") or "")
    name = rayjob.get("metadata", {}).get("name", "")
    if deployment in _FAILED:
        reason = status.get("reason") or deployment
        return JobView(JobState.FAILED, f"RayJob {name} failed ({reason}): {message}".rstrip(": "))
    if deployment == "Complete":
        if job == "SUCCEEDED":
            return JobView(JobState.SUCCEEDED, f"RayJob {name} succeeded")
        return JobView(
            JobState.FAILED, f"RayJob {name} ended with job status {job or 'unknown'}: {message}"
        )
    if deployment in _RUNNING or job == "RUNNING":
        return JobView(JobState.RUNNING, f"RayJob {name} is running")
    if deployment in _PENDING:
        what = deployment.lower() or "submitted"
        return JobView(JobState.PENDING, f"RayJob {name} is {what}")
    return JobView(JobState.PENDING, f"RayJob {name} is {deployment}")


def failed_for_good(job: JobView, result: Mapping[str, Any] | None) -> bool:
    """The RayJob failed and will not be retried: KubeRay says Failed, or the job ended with
    the worker's error result. An error result while the RayJob is still running or being
    retried (KubeRay's `backoffLimit`: `jobDeploymentStatus` Retrying, then New with a fresh
    job id; rayjob_controller.go `Reconcile`) is one attempt's: the next attempt may succeed
    (a lost node, a killed worker), so it decides nothing yet."""
    if job.state is JobState.FAILED:
        return True
    ended = job.state is JobState.SUCCEEDED
    return ended and result is not None and bool(result.get("error"))
