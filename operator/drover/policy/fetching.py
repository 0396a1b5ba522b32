"""Policy layer: a FoundationModel's status from its fetch job and the worker's report.

Pure: given the job's state and the fetch worker's result, say which phase the model is in, which
conditions hold, which status fields to record and which event (if any) to emit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drover.api.reasons import FoundationModelReason, JobReason
from drover.policy.conditions import Cond
from drover.policy.events import Event
from drover.policy.jobs import JobState, JobView, failed_for_good


@dataclass(frozen=True)
class FetchDecision:
    phase: str
    conditions: tuple[Cond, ...]
    fields: Mapping[str, Any] = field(default_factory=dict)
    event: Event | None = None
    done: bool = False


def cache_dir(model: str, digest: str) -> str:
    """Where the fetch worker puts a digest's weights inside the cache claim."""
    return f"{model}/{digest.split(':')[-1][:12]}"


def cache_ready_condition(claim: str) -> Cond:
    """CacheReady once the cache claim is ensured (a pending bind shows on the job, not here)."""
    return Cond(
        "CacheReady", True, FoundationModelReason.CLAIM_BOUND, f"weights cache on claim {claim}"
    )


def decide_fetch(
    *,
    model: str,
    source_key: str,
    job_name: str,
    claim: str,
    recorded: Mapping[str, Any],
    job: JobView,
    progress: Mapping[str, Any] | None,
    result: Mapping[str, Any] | None,
    result_unavailable: str | None = None,
) -> FetchDecision:
    """The FoundationModel's next status; `recorded` is its current status.

    `result_unavailable` (policy.results) says the succeeded job's result was given up on.
    """
    cache_ready = cache_ready_condition(claim)
    if recorded.get("sourceKey") == source_key and recorded.get("digest"):
        return FetchDecision(
            "Ready",
            (cache_ready, Cond("Fetched", True, FoundationModelReason.CACHED, _cached(recorded))),
            done=True,
        )
    base = {"fetchJob": job_name, "sourceKey": source_key}
    if failed_for_good(job, result):
        detail = (result or {}).get("error") or job.message
        message = f"fetching the weights failed: {detail}; check the source URI and credentials"
        return FetchDecision(
            "Failed",
            (cache_ready, Cond("Fetched", False, FoundationModelReason.FETCH_FAILED, message)),
            base,
            Event("Warning", "FetchFailed", message),
            done=True,
        )
    if job.state is JobState.SUCCEEDED and result is not None and result.get("digest"):
        return _fetched(model, claim, base, result, cache_ready)
    if job.state is JobState.SUCCEEDED and result_unavailable:
        # Still Fetching, so the poll goes on: once the user deletes the RayJob it is rerun.
        return FetchDecision(
            "Fetching",
            (cache_ready, Cond("Fetched", False, JobReason.RESULT_UNAVAILABLE, result_unavailable)),
            base,
            Event("Warning", JobReason.RESULT_UNAVAILABLE, result_unavailable),
        )
    if job.state is JobState.SUCCEEDED:
        message = f"{job.message}; reading the fetch result from the job log"
    elif progress:
        message = f"{job.message}: {_progress_text(progress)}"
    else:
        message = job.message
    return FetchDecision(
        "Fetching" if job.state is not JobState.MISSING else "Pending",
        (cache_ready, Cond("Fetched", None, FoundationModelReason.FETCHING, message)),
        base,
    )


def _fetched(
    model: str,
    claim: str,
    base: Mapping[str, Any],
    result: Mapping[str, Any],
    cache_ready: Cond,
) -> FetchDecision:
    """The fetch finished with a digest: the model is Ready with its weights in the cache."""
    fields = {
        **base,
        "digest": result["digest"],
        # By convention (not the worker's own view of its mounts): <name>/<12 hex of digest>.
        "cache": {"claimName": claim, "path": cache_dir(model, str(result["digest"]))},
        "sizeBytes": int(result.get("sizeBytes") or 0),
    }
    if result.get("revision"):
        fields["revision"] = str(result["revision"])
    if result.get("contextLength"):
        fields["contextLength"] = int(result["contextLength"])
    return FetchDecision(
        "Ready",
        (cache_ready, Cond("Fetched", True, FoundationModelReason.CACHED, _cached(fields))),
        fields,
        Event("Normal", "Fetched", _cached(fields)),
        done=True,
    )


def _cached(status: Mapping[str, Any]) -> str:
    size = int(status.get("sizeBytes") or 0)
    return f"{status.get('digest')} cached ({size / 1e6:.1f} MB)"


def _progress_text(progress: Mapping[str, Any]) -> str:
    done, total = progress.get("bytes"), progress.get("totalBytes")
    if isinstance(done, int | float) and isinstance(total, int | float) and total:
        return f"{done / 1e6:.1f}/{total / 1e6:.1f} MB"
    return str(progress.get("phase", "working"))
