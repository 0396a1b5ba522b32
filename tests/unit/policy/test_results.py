"""Reading a finished job's result: the deadline after the RayJob's end, and what the resource says
when it passes (the log unreachable through the dashboard, or holding no result)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drover.api.reasons import JobReason
from drover.policy.conditions import Cond, get_condition, summarise
from drover.policy.fetching import decide_fetch
from drover.policy.indexing import decide_index
from drover.policy.jobs import JobState, JobView, classify_rayjob
from drover.policy.results import (
    RESULT_DEADLINE_SECONDS,
    newly_unavailable,
    result_deadline,
    result_unavailable,
)
from drover.policy.training import decide_training

END = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)
DASHBOARD = "tiny-llama-fetch-d5757cbb-x7k2p-head-svc.ml.svc.cluster.local:8265"

UNAVAILABLE = JobReason.RESULT_UNAVAILABLE


def rayjob(deployment: str = "Complete", job: str = "SUCCEEDED", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "tiny-llama-fetch-d5757cbb", "namespace": "ml"},
        "spec": {"shutdownAfterJobFinishes": True, "ttlSecondsAfterFinished": 60},
        "status": {
            "jobDeploymentStatus": deployment,
            "jobStatus": job,
            "jobId": "tiny-llama-fetch-d5757cbb-abcde",
            "dashboardURL": DASHBOARD,
            "endTime": "2026-11-22T08:00:00Z",
            **status,
        },
    }


def after(seconds: float) -> datetime:
    return END + timedelta(seconds=seconds)


def test_the_deadline_counts_from_the_rayjobs_end_time() -> None:
    assert result_deadline(rayjob()) == after(RESULT_DEADLINE_SECONDS)
    ray_only = rayjob(endTime=None, rayJobInfo={"endTime": "2026-11-22T08:00:00Z"})
    assert result_deadline(ray_only) == after(RESULT_DEADLINE_SECONDS)
    assert result_deadline(rayjob(endTime=None)) is None
    assert 60 < RESULT_DEADLINE_SECONDS <= 600  # past the cluster's TTL, not much longer


@pytest.mark.parametrize(
    ("obj", "log_read", "result", "seconds", "gives_up"),
    [
        (rayjob(), False, None, RESULT_DEADLINE_SECONDS - 1, False),
        (rayjob(), False, None, RESULT_DEADLINE_SECONDS, True),
        (rayjob(), True, None, RESULT_DEADLINE_SECONDS, True),
        (rayjob(), False, {"digest": "sha256:ab"}, 3600, False),
        (rayjob("Running", "RUNNING"), False, None, 3600, False),
        (rayjob("Failed", "FAILED"), False, None, 3600, False),
        (rayjob(endTime=None), False, None, 3600, False),  # nothing to count from
        (None, False, None, 3600, False),
    ],
)
def test_a_succeeded_jobs_result_is_given_up_on_only_after_the_deadline(
    obj, log_read: bool, result, seconds: float, gives_up: bool
) -> None:
    message = result_unavailable(obj, log_read=log_read, result=result, now=after(seconds))
    assert (message is not None) is gives_up


def test_the_message_names_the_rayjob_the_url_the_causes_and_the_fix() -> None:
    message = result_unavailable(rayjob(), log_read=False, result=None, now=after(3600))
    assert message is not None
    for part in (
        "RayJob tiny-llama-fetch-d5757cbb",
        f"http://{DASHBOARD}/api/jobs/tiny-llama-fetch-d5757cbb-abcde/logs",
        "NetworkPolicy",
        "port 8265",
        "authentication",
        "ttlSecondsAfterFinished: 60",
        "delete RayJob tiny-llama-fetch-d5757cbb to run it again",
    ):
        assert part in message, part


def test_a_log_read_without_a_result_line_says_so() -> None:
    message = result_unavailable(rayjob(), log_read=True, result=None, now=after(3600))
    assert message is not None and "no ::drover::result line" in message
    assert "NetworkPolicy" not in message


def _degraded(conds: tuple[Cond, ...], declared: tuple[str, ...]) -> dict[str, Any]:
    now = after(3600)
    summary = summarise(
        [
            {"type": c.type, "status": c.status_text, "reason": c.reason, "message": c.message}
            for c in conds
        ],
        declared,
        generation=1,
        now=now,
    )
    degraded = get_condition(summary, "Degraded")
    assert degraded is not None
    return degraded


MESSAGE = "RayJob x succeeded but its result could not be read"
SUCCEEDED = JobView(JobState.SUCCEEDED, "RayJob x succeeded")


def test_a_foundationmodel_whose_result_is_unavailable_says_so_and_keeps_polling() -> None:
    d = decide_fetch(
        model="m",
        source_key="k",
        job_name="x",
        claim="c",
        recorded={},
        job=SUCCEEDED,
        progress=None,
        result=None,
        result_unavailable=MESSAGE,
    )
    fetched = next(c for c in d.conditions if c.type == "Fetched")
    assert (fetched.status, fetched.reason, fetched.message) == (
        False,
        UNAVAILABLE,
        MESSAGE,
    )
    assert d.phase == "Fetching"  # the poll timer's phase: deleting the RayJob reruns it
    assert d.event is not None and (d.event.type, d.event.reason) == (
        "Warning",
        UNAVAILABLE,
    )
    assert _degraded(d.conditions, ("CacheReady", "Fetched"))["status"] == "True"


def test_a_finetune_whose_result_is_unavailable_says_so_and_keeps_polling() -> None:
    d = decide_training(
        base=Cond("BaseModelReady", True, "Ready", ""),
        job=SUCCEEDED,
        job_name="x",
        progress=None,
        result=None,
        output_model="out",
        now_iso="2026-11-22T09:00:00Z",
        result_unavailable=MESSAGE,
    )
    trained = next(c for c in d.conditions if c.type == "Trained")
    assert (trained.status, trained.reason) == (False, UNAVAILABLE)
    assert d.phase == "Evaluating" and not d.create_output
    assert d.event is not None and d.event.reason == UNAVAILABLE


def test_an_index_build_whose_result_is_unavailable_says_so_and_keeps_the_current_version() -> None:
    d = decide_index(
        index_dir="handbook",
        embedder=Cond("EmbeddingModelReady", True, "Ready", ""),
        key="new",
        recorded={"version": 1, "buildKey": "old", "path": "handbook/v1"},
        job=SUCCEEDED,
        job_name="x",
        result=None,
        now_iso="2026-11-22T09:00:00Z",
        result_unavailable=MESSAGE,
    )
    built = next(c for c in d.conditions if c.type == "Built")
    assert (built.status, built.reason) == (False, UNAVAILABLE)
    assert d.phase == "Building" and "version" not in d.fields


def test_without_a_verdict_a_succeeded_job_still_waits_for_its_result() -> None:
    d = decide_fetch(
        model="m",
        source_key="k",
        job_name="x",
        claim="c",
        recorded={},
        job=classify_rayjob(rayjob()),
        progress=None,
        result=None,
    )
    assert next(c for c in d.conditions if c.type == "Fetched").reason == "Fetching"


def test_the_warning_is_emitted_once() -> None:
    assert newly_unavailable(None, "Fetched")
    assert newly_unavailable([{"type": "Fetched", "reason": "Fetching"}], "Fetched")
    assert not newly_unavailable([{"type": "Fetched", "reason": UNAVAILABLE}], "Fetched")
