"""The operator's pure decisions: conditions, job states, fetch, train, index, serve, usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drover.policy.conditions import Cond, get_condition, set_condition, summarise
from drover.policy.dependencies import decide_model_ready
from drover.policy.fetching import decide_fetch
from drover.policy.indexing import decide_index
from drover.policy.jobs import JobState, JobView, classify_rayjob
from drover.policy.reports import parse_worker_log
from drover.policy.serving import decide_serving, deployment_statuses, version_statuses
from drover.policy.training import decide_training
from drover.policy.usage import users_of_model

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
READY = Cond("BaseModelReady", True, "ModelReady", "ok")


# --- conditions --------------------------------------------------------------------------------


def test_last_transition_time_changes_only_when_status_flips() -> None:
    first = set_condition([], Cond("Fetched", None, "Fetching", "1 MB"), generation=1, now=T0)
    same = set_condition(first, Cond("Fetched", None, "Fetching", "2 MB"), generation=1, now=T1)
    assert same[0]["lastTransitionTime"] == "2026-11-22T12:00:00Z"
    assert same[0]["message"] == "2 MB"
    flipped = set_condition(same, Cond("Fetched", True, "Cached", ""), generation=2, now=T1)
    assert flipped[0]["lastTransitionTime"] == "2026-11-22T12:05:00Z"
    assert flipped[0]["observedGeneration"] == 2


def test_ready_is_true_only_when_every_declared_condition_is() -> None:
    conds = set_condition([], Cond("CacheReady", True, "ClaimBound"), generation=1, now=T0)
    partial = summarise(conds, ("CacheReady", "Fetched"), generation=1, now=T0)
    ready = get_condition(partial, "Ready")
    assert ready is not None and ready["status"] == "Unknown" and "Fetched" in ready["message"]
    conds = set_condition(conds, Cond("Fetched", True, "Cached"), generation=1, now=T0)
    full = summarise(conds, ("CacheReady", "Fetched"), generation=1, now=T0)
    assert get_condition(full, "Ready")["status"] == "True"  # type: ignore[index]
    assert get_condition(full, "Progressing")["status"] == "False"  # type: ignore[index]


def test_a_failure_needing_a_person_is_degraded_not_progressing() -> None:
    conds = set_condition(
        [], Cond("Trained", False, "EvaluationBelowThreshold", "loss 9 > 8"), generation=1, now=T0
    )
    out = summarise(conds, ("Trained",), generation=1, now=T0)
    assert get_condition(out, "Ready")["reason"] == "EvaluationBelowThreshold"  # type: ignore[index]
    assert get_condition(out, "Degraded")["status"] == "True"  # type: ignore[index]
    assert get_condition(out, "Progressing")["status"] == "False"  # type: ignore[index]


# --- RayJob states -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deployment", "job", "state"),
    [
        ("", "", JobState.PENDING),
        ("Initializing", "", JobState.PENDING),
        ("Running", "PENDING", JobState.RUNNING),
        ("Running", "RUNNING", JobState.RUNNING),
        ("Retrying", "FAILED", JobState.RUNNING),
        ("Complete", "SUCCEEDED", JobState.SUCCEEDED),
        ("Complete", "STOPPED", JobState.FAILED),
        ("Failed", "FAILED", JobState.FAILED),
        ("ValidationFailed", "", JobState.FAILED),
        ("Suspended", "", JobState.PENDING),
    ],
)
def test_rayjob_states_fold_kuberay_fields(deployment: str, job: str, state: JobState) -> None:
    rayjob = {
        "metadata": {"name": "j"},
        "status": {"jobDeploymentStatus": deployment, "jobStatus": job},
    }
    assert classify_rayjob(rayjob).state is state


def test_missing_rayjob_is_missing() -> None:
    assert classify_rayjob(None).state is JobState.MISSING


# --- worker reports ----------------------------------------------------------------------------


def test_worker_log_gives_the_last_progress_and_the_result() -> None:
    log = "\n".join(
        [
            "starting",
            '::drover::progress {"step": 1, "totalSteps": 10}',
            "noise ::drover::progress {bad json",
            '2026 INFO ::drover::progress {"step": 5, "totalSteps": 10, "loss": 1.5}',
            '::drover::progress {"phase": "evaluating"}',
            '::drover::result {"digest": "sha256:aa", "sizeBytes": 10}',
        ]
    )
    report = parse_worker_log(log)
    assert report.progress == {"step": 5, "totalSteps": 10, "loss": 1.5, "phase": "evaluating"}
    assert report.result == {"digest": "sha256:aa", "sizeBytes": 10}
    assert len(report.malformed) == 1


# --- fetch -------------------------------------------------------------------------------------


def _fetch(job: JobView, result=None, progress=None, recorded=None):
    return decide_fetch(
        model="m",
        source_key="k1",
        job_name="m-fetch-k1",
        claim="m-cache",
        recorded=recorded or {},
        job=job,
        progress=progress,
        result=result,
    )


def test_fetch_success_records_digest_and_cache() -> None:
    d = _fetch(
        JobView(JobState.SUCCEEDED, "ok"),
        {"digest": "sha256:ff", "path": "m/ffff", "sizeBytes": 5_000_000},
    )
    assert d.phase == "Ready"
    assert d.fields["cache"] == {"claimName": "m-cache", "path": "m/ff"}
    assert d.event is not None and d.event.reason == "Fetched"


def test_fetch_waits_for_the_result_after_the_job_succeeded() -> None:
    d = _fetch(JobView(JobState.SUCCEEDED, "RayJob m succeeded"))
    assert d.phase == "Fetching" and not d.done


def test_fetch_failure_says_what_to_check() -> None:
    d = _fetch(JobView(JobState.FAILED, "RayJob failed"), {"error": "401 Unauthorized"})
    assert d.phase == "Failed"
    fetched = next(c for c in d.conditions if c.type == "Fetched")
    assert (
        fetched.reason == "FetchFailed"
        and "401" in fetched.message
        and "credentials" in fetched.message
    )


def test_fetch_progress_is_shown_in_megabytes() -> None:
    d = _fetch(
        JobView(JobState.RUNNING, "running"), progress={"bytes": 2_000_000, "totalBytes": 4_000_000}
    )
    assert "2.0/4.0 MB" in next(c for c in d.conditions if c.type == "Fetched").message


def test_a_fetched_source_is_not_fetched_again() -> None:
    d = _fetch(
        JobView(JobState.MISSING, ""),
        recorded={"sourceKey": "k1", "digest": "sha256:ff", "sizeBytes": 1},
    )
    assert d.phase == "Ready" and d.done and d.event is None


# --- training ----------------------------------------------------------------------------------


def test_model_dependency_reasons() -> None:
    assert decide_model_ready("X", "spec.m", "m", None).reason == "ModelNotFound"
    assert (
        decide_model_ready("X", "spec.m", "m", {"status": {"phase": "Fetching"}}).reason
        == "WaitingForModel"
    )
    assert (
        decide_model_ready("X", "spec.m", "m", {"status": {"phase": "Failed"}}).reason
        == "DependencyFailed"
    )
    assert (
        decide_model_ready("X", "spec.m", "m", {"status": {"phase": "Ready", "digest": "d"}}).status
        is True
    )


def _train(job: JobView, result=None, progress=None, base=READY):
    return decide_training(
        base=base,
        job=job,
        job_name="t-train",
        progress=progress,
        result=result,
        output_model="out",
        now_iso="2026-11-22T12:00:00Z",
    )


def test_training_waits_for_the_base_model() -> None:
    waiting = Cond("BaseModelReady", False, "WaitingForModel", "waiting")
    assert _train(JobView(JobState.MISSING, ""), base=waiting).phase == "WaitingForBaseModel"


def test_training_progress_reaches_status() -> None:
    d = _train(
        JobView(JobState.RUNNING, "r"), progress={"step": 5, "totalSteps": 20, "loss": 2.34567}
    )
    assert d.phase == "Running"
    assert d.fields["progress"]["percent"] == 25 and d.fields["progress"]["loss"] == 2.3457


def test_evaluation_below_threshold_fails_with_the_numbers() -> None:
    result = {
        "passed": False,
        "failedThresholds": ["maxLoss: 9.1 > 8.0"],
        "evaluation": {"loss": 9.1},
    }
    d = _train(JobView(JobState.SUCCEEDED, "ok"), result)
    assert d.phase == "Failed" and not d.create_output
    evaluated = next(c for c in d.conditions if c.type == "Evaluated")
    assert evaluated.reason == "EvaluationBelowThreshold" and "9.1 > 8.0" in evaluated.message


def test_passing_evaluation_creates_the_output_model() -> None:
    d = _train(
        JobView(JobState.SUCCEEDED, "ok"),
        {"passed": True, "evaluation": {"loss": 1.2, "perplexity": 3.3}, "digest": "sha256:9"},
    )
    assert d.phase == "Succeeded" and d.create_output
    assert d.fields["outputModel"] == {"name": "out"} and d.fields["evaluation"]["loss"] == 1.2


# --- indexing ----------------------------------------------------------------------------------

EMB = Cond("EmbeddingModelReady", True, "ModelReady", "ok")


def test_a_changed_build_key_rebuilds_while_the_old_version_serves() -> None:
    recorded = {"version": 3, "buildKey": "old"}
    d = decide_index(
        index_dir="idx",
        embedder=EMB,
        key="new",
        recorded=recorded,
        job=JobView(JobState.RUNNING, "r"),
        job_name="b",
        result=None,
        now_iso="t",
    )
    assert d.phase == "Building" and d.fields["buildingVersion"] == 4
    assert next(c for c in d.conditions if c.type == "Built").status is True  # v3 still serves


def test_a_finished_build_becomes_the_current_version() -> None:
    result = {
        "version": 4,
        "documents": 3,
        "chunks": 12,
        "dimensions": 384,
        "embedderDigest": "sha256:e",
    }
    d = decide_index(
        index_dir="idx",
        embedder=EMB,
        key="new",
        recorded={"version": 3, "buildKey": "old"},
        job=JobView(JobState.SUCCEEDED, "ok"),
        job_name="b",
        result=result,
        now_iso="t",
    )
    assert d.phase == "Ready" and d.fields["version"] == 4 and d.fields["buildKey"] == "new"
    assert d.fields["path"] == "idx/v4"


def test_an_index_with_a_current_key_does_nothing() -> None:
    d = decide_index(
        index_dir="idx",
        embedder=EMB,
        key="k",
        recorded={"version": 2, "buildKey": "k"},
        job=JobView(JobState.MISSING, ""),
        job_name="",
        result=None,
        now_iso="t",
    )
    assert d.phase == "Ready" and d.event is None


# --- serving -----------------------------------------------------------------------------------


def _rayservice(
    app_status: str, deployment_status: str, ready: bool, router_status: str = "RUNNING"
) -> dict:
    """KubeRay's status of a service `svc`: router application `svc`, stable `svc-v1`, and a
    canary `svc-v2` that is still starting."""
    return {
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "activeServiceStatus": {
                "applicationStatuses": {
                    "svc": {
                        "status": router_status,
                        "serveDeploymentStatuses": {"router": {"status": "HEALTHY"}},
                    },
                    "svc-v1": {
                        "status": app_status,
                        "serveDeploymentStatuses": {"model": {"status": deployment_status}},
                    },
                    "svc-v2": {
                        "status": "DEPLOYING",
                        "serveDeploymentStatuses": {"model": {"status": "UPDATING"}},
                    },
                }
            },
        }
    }


def test_serving_ready_needs_the_router_and_the_stable_version_app_healthy() -> None:
    assert decide_serving(_rayservice("RUNNING", "HEALTHY", True), "svc", "svc-v1").status is True
    assert (
        decide_serving(_rayservice("DEPLOYING", "UPDATING", False), "svc", "svc-v1").status is None
    )
    failed = decide_serving(_rayservice("DEPLOY_FAILED", "UNHEALTHY", False), "svc", "svc-v1")
    assert failed.status is False and failed.reason == "ServingFailed"
    assert "svc-v1" in failed.message
    router_failed = decide_serving(
        _rayservice("RUNNING", "HEALTHY", True, router_status="DEPLOY_FAILED"), "svc", "svc-v1"
    )
    assert router_failed.status is False and "svc is DEPLOY_FAILED" in router_failed.message


def test_a_starting_canary_does_not_make_serving_unready() -> None:
    assert decide_serving(_rayservice("RUNNING", "HEALTHY", True), "svc", "svc-v1").status is True
    assert decide_serving(_rayservice("RUNNING", "HEALTHY", True), "svc", "svc-v2").status is None


def test_version_statuses_read_each_version_application() -> None:
    rs = _rayservice("RUNNING", "HEALTHY", True)
    assert version_statuses(rs, "svc") == {"v1": "HEALTHY", "v2": "UPDATING"}
    assert deployment_statuses(rs, "svc") == {"router": "HEALTHY"}
    assert version_statuses(None, "svc") == {}


# --- usage -------------------------------------------------------------------------------------


def test_a_model_in_use_names_its_users() -> None:
    users = users_of_model(
        "base",
        finetunejobs=[
            {"metadata": {"name": "ft"}, "spec": {"baseModel": {"name": "base"}}},
            {
                "metadata": {"name": "done"},
                "spec": {"baseModel": {"name": "base"}},
                "status": {"phase": "Succeeded"},
            },
        ],
        vectorindexes=[{"metadata": {"name": "vi"}, "spec": {"embeddingModel": {"name": "other"}}}],
        inferenceservices=[
            {
                "metadata": {"name": "svc"},
                "spec": {"model": {"name": "new"}},
                "status": {"stable": {"model": "base"}},
            },
            {
                "metadata": {"name": "gone", "deletionTimestamp": "x"},
                "spec": {"model": {"name": "base"}},
            },
        ],
    )
    assert users == ["FineTuneJob/ft", "InferenceService/svc"]


def test_status_blocks_lose_the_fields_they_no_longer_have() -> None:
    from drover.handlers.common import merge_patch

    old = {"phase": "Step", "step": 2, "target": {"model": "a", "digest": "d"}, "history": [1]}
    new = {"phase": "Deploying", "target": {"model": "b"}, "history": [1, 2]}
    assert merge_patch(old, new) == {
        "phase": "Deploying",
        "target": {"model": "b", "digest": None},
        "history": [1, 2],
        "step": None,
    }
    assert merge_patch(None, new) == new
