"""Policy layer: a VectorIndex's status from its embedder, its build job and the worker's report.

Pure. A new build key (documents, chunking, index type or embedder digest changed) builds
version N+1 beside version N; N stays current until N+1 is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drover.api.reasons import DependencyReason, JobReason, VectorIndexReason
from drover.policy.conditions import Cond
from drover.policy.events import Event
from drover.policy.jobs import JobState, JobView, failed_for_good


@dataclass(frozen=True)
class IndexDecision:
    phase: str
    conditions: tuple[Cond, ...]
    fields: Mapping[str, Any] = field(default_factory=dict)
    event: Event | None = None


def next_version(recorded: Mapping[str, Any]) -> int:
    return int(recorded.get("version") or 0) + 1


def is_current(recorded: Mapping[str, Any], key: str) -> bool:
    return recorded.get("buildKey") == key and bool(recorded.get("version"))


def decide_index(
    *,
    index_dir: str,
    embedder: Cond,
    key: str,
    recorded: Mapping[str, Any],
    job: JobView,
    job_name: str,
    result: Mapping[str, Any] | None,
    now_iso: str,
    result_unavailable: str | None = None,
) -> IndexDecision:
    """The VectorIndex's next status; `result_unavailable` (policy.results) says the succeeded
    build's result was given up on."""
    if embedder.status is not True:
        phase = (
            "Failed"
            if embedder.reason == DependencyReason.DEPENDENCY_FAILED
            else "WaitingForEmbeddingModel"
        )
        return IndexDecision(
            phase, (embedder,), event=Event("Normal", embedder.reason, embedder.message)
        )
    if is_current(recorded, key):
        built = Cond(
            "Built", True, VectorIndexReason.BUILT, f"version {recorded['version']} is current"
        )
        return IndexDecision("Ready", (embedder, built), {"buildingVersion": None})
    version = next_version(recorded)
    building = {"buildJob": job_name, "buildingVersion": version}
    if failed_for_good(job, result):
        detail = (result or {}).get("error") or job.message
        message = f"building version {version} failed: {detail}"
        return IndexDecision(
            "Failed",
            (embedder, Cond("Built", False, VectorIndexReason.INDEX_BUILD_FAILED, message)),
            building,
            Event("Warning", "IndexBuildFailed", message),
        )
    if job.state is JobState.SUCCEEDED and result is not None:
        return _built(embedder, result, index_dir, key, job_name, version, now_iso)
    if job.state is JobState.SUCCEEDED and result_unavailable:
        # Still Building (a current version keeps serving); deleting the RayJob reruns it.
        return IndexDecision(
            "Building",
            (embedder, Cond("Built", False, JobReason.RESULT_UNAVAILABLE, result_unavailable)),
            building,
            Event("Warning", JobReason.RESULT_UNAVAILABLE, result_unavailable),
        )
    return _building(embedder, recorded, version, job_name, job, building)


def _built(
    embedder: Cond,
    result: Mapping[str, Any],
    index_dir: str,
    key: str,
    job_name: str,
    version: int,
    now_iso: str,
) -> IndexDecision:
    """The build finished with a result: its version becomes the current one."""
    fields = {
        "version": int(result.get("version") or version),
        "buildingVersion": None,
        "buildKey": key,
        "buildJob": job_name,
        "builtAt": now_iso,
    }
    for src in ("documents", "chunks", "dimensions", "embedderDigest"):
        if result.get(src) is not None:
            fields[src] = result[src]
    fields["path"] = f"{index_dir}/v{fields['version']}"  # inside the index claim
    message = (
        f"built version {fields['version']}: {result.get('documents')} documents, "
        f"{result.get('chunks')} chunks"
    )
    return IndexDecision(
        "Ready",
        (embedder, Cond("Built", True, VectorIndexReason.BUILT, message)),
        fields,
        Event("Normal", "Built", message),
    )


def _building(
    embedder: Cond,
    recorded: Mapping[str, Any],
    version: int,
    job_name: str,
    job: JobView,
    building: Mapping[str, Any],
) -> IndexDecision:
    """A build under way: Built stays True while an older version serves, else Unknown."""
    verb = "building" if recorded.get("version") is None else "rebuilding"
    message = f"{verb}: version {version} in RayJob {job_name} ({job.message})"
    return IndexDecision(
        "Building",
        (
            embedder,
            Cond(
                "Built",
                None if not recorded.get("version") else True,
                VectorIndexReason.BUILDING,
                message,
            ),
        ),
        building,
        Event("Normal", VectorIndexReason.BUILDING, message),
    )
