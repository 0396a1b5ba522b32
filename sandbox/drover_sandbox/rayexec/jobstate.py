"""Local stack, Ray executor: the RayJob state machine of KubeRay v1.7.0, as pure functions.

`next_rayjob` takes the RayJob, what Ray says about its job and `now`, and returns the status to
write plus the one action the executor must take (submit or stop the Ray job).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import yaml

from drover.api.common import parse_timestamp
from drover_sandbox.rayexec.validation import validate_rayjob_metadata

TERMINAL_DEPLOYMENTS = ("Complete", "Failed", "ValidationFailed")
TERMINAL_JOBS = ("SUCCEEDED", "FAILED", "STOPPED")


class Action(Enum):
    NONE = "none"
    SUBMIT = "submit"
    STOP = "stop"


@dataclass(frozen=True)
class RayJobInfo:
    """What the Jobs API reports about one submission (times in epoch milliseconds)."""

    status: str
    message: str = ""
    start_time: int | None = None
    end_time: int | None = None


# Ray's job monitor (ray/dashboard/modules/job/job_manager.py, JobManager._monitor_job_internal)
# polls the supervisor actor every JOB_MONITOR_LOOP_PERIOD_S (1 s). After a job ends, the actor
# exits; the monitor then reads the status and, finding none, writes FAILED ("Job supervisor actor
# died") through JobInfoStorageClient.put_status (common.py), which creates a fresh record,
# "Entrypoint not found.", without metadata, when the old one is gone. A job deleted in that
# window comes back as a stranger. So a finished job is deleted only once it has been over for a
# while; under load the monitor's next pass can lag by seconds.
DELETE_AFTER_END_SECONDS = 15.0


def ready_to_delete(info: RayJobInfo, now_ms: float) -> bool:
    """Whether a finished Ray job's record can be deleted without Ray resurrecting it."""
    if info.status not in TERMINAL_JOBS:
        return False  # Ray refuses (JobManager.delete_job: "non-terminal state")
    if info.end_time is None:
        return True
    return now_ms - info.end_time >= DELETE_AFTER_END_SECONDS * 1000


def cluster_expired(rayjob: Mapping[str, Any], now: dt.datetime) -> bool:
    """Whether KubeRay has deleted this finished RayJob's Ray cluster by `now`.

    rayjob_controller.go (v1.7.0), Reconcile → handleShutdownAfterJobFinishes: once the RayJob is
    Complete or Failed with `shutdownAfterJobFinishes` and no `clusterSelector`, the RayCluster is
    deleted at `status.endTime + ttlSecondsAfterFinished` (deleteClusterResources); the RayJob and
    its status (rayClusterName, dashboardURL, jobId) stay as they were. Locally the cluster is
    shared, so what goes is the Ray job's record and logs: the executor deletes it then.
    (`deletionStrategy`, behind the RayJobDeletionPolicy feature gate, is not modelled.)
    """
    spec = rayjob.get("spec") or {}
    st = rayjob.get("status") or {}
    if st.get("jobDeploymentStatus") not in ("Complete", "Failed"):
        return False
    if not spec.get("shutdownAfterJobFinishes") or spec.get("clusterSelector"):
        return False
    if spec.get("deletionStrategy"):
        return False
    end = parse_timestamp(st.get("endTime"))
    if end is None:
        return False
    ttl = dt.timedelta(seconds=int(spec.get("ttlSecondsAfterFinished") or 0))
    return now >= end + ttl


@dataclass(frozen=True)
class Cluster:
    """The local Ray cluster as a RayJob status names it."""

    dashboard: str  # host:port, as KubeRay writes dashboardURL


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def base_job_id(rayjob: Mapping[str, Any]) -> str:
    meta = rayjob["metadata"]
    return f"{meta.get('namespace', 'default')}-{meta['name']}-{str(meta.get('uid', ''))[:8]}"


def next_job_id(rayjob: Mapping[str, Any], existing: Collection[str]) -> str:
    """A submission id no Ray job has yet: `<ns>-<name>-<uid8>`, then `-2`, `-3`, ... ."""
    base = base_job_id(rayjob)
    if base not in existing:
        return base
    n = 2
    while f"{base}-{n}" in existing:
        n += 1
    return f"{base}-{n}"


def cluster_name(rayjob: Mapping[str, Any]) -> str:
    return f"{rayjob['metadata']['name'][:50]}-local"


def validate_spec(spec: Mapping[str, Any]) -> str | None:
    """Why the spec cannot run (a sentence naming the field), or None."""
    if not str(spec.get("entrypoint") or "").strip():
        return "spec.entrypoint is empty: set the command the Ray job runs"
    try:
        env = yaml.safe_load(spec.get("runtimeEnvYAML") or "{}")
    except yaml.YAMLError as exc:
        return f"spec.runtimeEnvYAML is not valid YAML ({exc.__class__.__name__}): fix its syntax"
    if env is not None and not isinstance(env, dict):
        return "spec.runtimeEnvYAML must be a YAML mapping such as `env_vars: {...}`"
    return None


def _ms(value: int | None) -> str | None:
    if not value:
        return None
    return rfc3339(dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC))


def _initialize(
    st: dict[str, Any], rayjob: Mapping[str, Any], job_id: str, cluster: Cluster, now: dt.datetime
) -> dict[str, Any]:
    keep = {k: st[k] for k in ("succeeded", "failed", "observedGeneration") if k in st}
    return {
        **keep,
        "jobDeploymentStatus": "Initializing",
        "jobStatus": "",
        "jobId": job_id,
        "rayClusterName": cluster_name(rayjob),
        "dashboardURL": cluster.dashboard,
        "startTime": rfc3339(now),
    }


def finish(
    st: dict[str, Any], deployment: str, now: dt.datetime, spec: Mapping[str, Any], reason: str = ""
) -> dict[str, Any]:
    """Complete/Failed, with KubeRay's counters and its backoffLimit → Retrying rule."""
    st["jobDeploymentStatus"] = deployment
    st["endTime"] = rfc3339(now)
    if reason:
        st["reason"] = reason
    if deployment == "Failed":
        st["failed"] = int(st.get("failed") or 0) + 1
    elif st.get("jobStatus") == "SUCCEEDED":
        st["succeeded"] = int(st.get("succeeded") or 0) + 1
    limit = int(spec.get("backoffLimit") or 0)
    if deployment == "Failed" and reason != "DeadlineExceeded" and st["failed"] < limit + 1:
        st["jobDeploymentStatus"] = "Retrying"
    return st


def _deadline_passed(st: Mapping[str, Any], spec: Mapping[str, Any], now: dt.datetime) -> bool:
    limit = spec.get("activeDeadlineSeconds")
    start = parse_timestamp(st.get("startTime"))
    return bool(limit) and start is not None and (now - start).total_seconds() > int(limit)


def next_rayjob(
    rayjob: Mapping[str, Any],
    info: RayJobInfo | None,
    *,
    existing_ids: Collection[str],
    cluster: Cluster,
    now: dt.datetime,
) -> tuple[dict[str, Any], Action]:
    """The status KubeRay would write next, and what to do with the Ray job.

    `info` describes the Ray job named by `status.jobId` (None when Ray has no such job);
    `existing_ids` are all submission ids Ray knows, so a new attempt gets a fresh id.
    """
    spec = rayjob.get("spec") or {}
    st: dict[str, Any] = dict(rayjob.get("status") or {})
    st["observedGeneration"] = int(rayjob["metadata"].get("generation") or 1)
    st.setdefault("succeeded", 0)
    st.setdefault("failed", 0)
    # rayjob_controller.go (v1.7.0), Reconcile → validateRayJob, before the state machine on
    # every pass: an invalid name (utils/validation.go, ValidateRayJobMetadata) makes the RayJob
    # ValidationFailed, reason ValidationFailed, the error as message; no cluster, no Ray job.
    bad_name = validate_rayjob_metadata(rayjob["metadata"])
    if bad_name:
        st.update(
            jobDeploymentStatus="ValidationFailed", reason="ValidationFailed", message=bad_name
        )
        return st, Action.NONE
    deployment = st.get("jobDeploymentStatus") or ""
    if deployment in TERMINAL_DEPLOYMENTS:
        return st, Action.NONE
    suspend = bool(spec.get("suspend"))

    if deployment in ("", "New"):
        if suspend:
            return {**st, "jobDeploymentStatus": "Suspended"}, Action.NONE
        problem = validate_spec(spec)
        if problem:
            st.update(
                jobDeploymentStatus="ValidationFailed", reason="ValidationFailed", message=problem
            )
            return st, Action.NONE
        return _initialize(st, rayjob, next_job_id(rayjob, existing_ids), cluster, now), Action.NONE

    if deployment == "Retrying":
        return _initialize(st, rayjob, next_job_id(rayjob, existing_ids), cluster, now), Action.NONE

    if deployment == "Suspended":
        if suspend:
            return st, Action.NONE
        keep = {k: st[k] for k in ("succeeded", "failed", "observedGeneration")}
        return {**keep, "jobDeploymentStatus": "New"}, Action.NONE

    running = info is not None and info.status not in TERMINAL_JOBS
    if deployment == "Suspending" or suspend:
        if running:
            return {**st, "jobDeploymentStatus": "Suspending"}, Action.STOP
        keep = {k: st[k] for k in ("succeeded", "failed", "observedGeneration")}
        return {**keep, "jobDeploymentStatus": "Suspended", "jobStatus": ""}, Action.NONE

    if _deadline_passed(st, spec, now):
        st["message"] = (
            f"The RayJob has passed the activeDeadlineSeconds. StartTime: {st.get('startTime')}. "
            f"ActiveDeadlineSeconds: {spec.get('activeDeadlineSeconds')}"
        )
        st = finish(st, "Failed", now, spec, "DeadlineExceeded")
        return st, Action.STOP if running else Action.NONE

    if info is None:
        if deployment == "Initializing":
            return st, Action.SUBMIT
        st["message"] = f"the Ray job {st.get('jobId')} no longer exists on the local Ray cluster"
        return finish(st, "Failed", now, spec, "AppFailed"), Action.NONE

    st["jobDeploymentStatus"] = "Running"
    st["jobStatus"] = info.status
    if info.message:
        st["message"] = info.message
    times = {
        k: v for k, v in (("startTime", _ms(info.start_time)), ("endTime", _ms(info.end_time))) if v
    }
    if times:
        st["rayJobInfo"] = times
    if info.status == "FAILED":
        return finish(st, "Failed", now, spec, "AppFailed"), Action.NONE
    if info.status in TERMINAL_JOBS:
        return finish(st, "Complete", now, spec), Action.NONE
    return st, Action.NONE


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """A merge patch turning `old` into `new` (None for keys dropped), or None when equal."""
    if dict(old) == dict(new):
        return None
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch
