"""Policy layer: how long a resource waits to read a finished job's result, and what it says then.

The operator reads a worker's `::drover::result` line from the job log through the Ray dashboard
the RayJob status names (`dashboardURL`, port 8265 of `<cluster>-head-svc`). A NetworkPolicy,
dashboard authentication or a cluster already deleted by KubeRay (`ttlSecondsAfterFinished` after
the job) make that read fail. `result_unavailable` gives the read `RESULT_DEADLINE_SECONDS` from
the RayJob's end time, then a message that names the RayJob, the URL, the likely causes and the
fix. The clock it compares against lives in the RayJob's status, so a restarted operator goes on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from drover.api.common import parse_timestamp
from drover.api.reasons import JobReason
from drover.policy.conditions import get_condition
from drover.policy.jobs import JobState, classify_rayjob

# From the RayJob's end: long past the cluster's TTL (builders.rayjob.CLUSTER_TTL_SECONDS, 60 s)
# and many operator polls, so a result that could be read has been.
RESULT_DEADLINE_SECONDS = 300


def job_end_time(rayjob: Mapping[str, Any]) -> dt.datetime | None:
    """When KubeRay marked the RayJob finished (`status.endTime`), else when Ray says it ended."""
    status = rayjob.get("status") or {}
    return parse_timestamp(status.get("endTime")) or parse_timestamp(
        (status.get("rayJobInfo") or {}).get("endTime")
    )


def result_deadline(rayjob: Mapping[str, Any]) -> dt.datetime | None:
    end = job_end_time(rayjob)
    return None if end is None else end + dt.timedelta(seconds=RESULT_DEADLINE_SECONDS)


def _logs_url(status: Mapping[str, Any]) -> str:
    dashboard = str(status.get("dashboardURL") or "")
    base = dashboard if "://" in dashboard or not dashboard else f"http://{dashboard}"
    return f"{base.rstrip('/')}/api/jobs/{status.get('jobId', '')}/logs"


def result_unavailable(
    rayjob: Mapping[str, Any] | None,
    *,
    log_read: bool,
    result: Mapping[str, Any] | None,
    now: dt.datetime,
) -> str | None:
    """Why the succeeded job's result is given up on (a sentence to act on), or None.

    None while the job has not succeeded, once the result is in hand, before the deadline, and
    when the RayJob has no end time to count from. `log_read` says whether the log was reached
    at all (it was, but held no result line) or not.
    """
    if rayjob is None or result is not None:
        return None
    if classify_rayjob(rayjob).state is not JobState.SUCCEEDED:
        return None
    deadline = result_deadline(rayjob)
    if deadline is None or now < deadline:
        return None
    status = rayjob.get("status") or {}
    name = rayjob.get("metadata", {}).get("name", "")
    url = _logs_url(status)
    minutes = RESULT_DEADLINE_SECONDS // 60
    ttl = (rayjob.get("spec") or {}).get("ttlSecondsAfterFinished")
    if log_read:
        return (
            f"RayJob {name} succeeded but its job log at {url} holds no ::drover::result line "
            f"{minutes} minutes after it ended: the worker exited without reporting; check the "
            f"log, then delete RayJob {name} to run it again"
        )
    dashboard = str(status.get("dashboardURL") or "the Ray dashboard")
    return (
        f"RayJob {name} succeeded but its result could not be read from {url} for "
        f"{minutes} minutes after it ended. Likely causes: a NetworkPolicy that keeps the "
        f"operator from {dashboard} (port 8265 of the head service), Ray dashboard "
        f"authentication, or the Ray cluster already deleted by KubeRay "
        f"(ttlSecondsAfterFinished: {ttl}). Fix: let the operator reach port 8265 of the head "
        f"service, then delete RayJob {name} to run it again"
    )


def newly_unavailable(conditions: Sequence[Mapping[str, Any]] | None, cond_type: str) -> bool:
    """Whether the recorded `cond_type` condition does not yet say ResultUnavailable (warn once)."""
    recorded = get_condition([dict(c) for c in conditions or ()], cond_type)
    return recorded is None or recorded.get("reason") != JobReason.RESULT_UNAVAILABLE
