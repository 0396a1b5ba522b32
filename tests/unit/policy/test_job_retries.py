"""A failed attempt of a RayJob that KubeRay retries (`backoffLimit`) decides nothing: the worker's
error result of that attempt is read while the RayJob is Retrying (KubeRay keeps the old job id
until the next attempt starts), and failing the resource then would stop its polling for good
even though the next attempt may succeed (issue #16: a worker killed mid-run resumes)."""

from __future__ import annotations

import pytest
from tests.unit.policy.test_decisions import EMB, _fetch, _train

from drover.policy.indexing import decide_index
from drover.policy.jobs import JobState, JobView, classify_rayjob, failed_for_good

ERROR = {"error": "RuntimeError: a Ray Train worker died", "reason": "Error"}
RETRYING = classify_rayjob(
    {
        "metadata": {"name": "j"},
        "status": {"jobDeploymentStatus": "Retrying", "jobStatus": "FAILED", "failed": 1},
    }
)


@pytest.mark.parametrize(
    ("job", "final"),
    [
        (RETRYING, False),
        (JobView(JobState.PENDING, "New"), False),
        (JobView(JobState.FAILED, "Failed"), True),
        (JobView(JobState.SUCCEEDED, "Complete"), True),
    ],
)
def test_an_error_result_is_final_only_once_the_rayjob_ended(job: JobView, final: bool) -> None:
    assert failed_for_good(job, ERROR) is final


def test_a_retried_training_keeps_running() -> None:
    assert _train(RETRYING, result=ERROR).phase == "Running"
    assert _train(JobView(JobState.FAILED, "Failed"), result=ERROR).phase == "Failed"


def test_a_retried_fetch_keeps_fetching() -> None:
    assert _fetch(RETRYING, result=ERROR).phase != "Failed"
    assert _fetch(JobView(JobState.FAILED, "Failed"), result=ERROR).phase == "Failed"


def test_a_retried_index_build_keeps_building() -> None:
    def index(job: JobView) -> str:
        return decide_index(
            index_dir="idx",
            embedder=EMB,
            key="k",
            recorded={},
            job=job,
            job_name="b",
            result=ERROR,
            now_iso="t",
        ).phase

    assert index(RETRYING) != "Failed"
    assert index(JobView(JobState.FAILED, "Failed")) == "Failed"
