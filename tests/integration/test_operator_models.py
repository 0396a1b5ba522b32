"""The operator process against the local control plane: FoundationModel fetches and
FineTuneJobs, their children, status and events. KubeRay's part is played by patching child
status as KubeRay writes it.
"""

from __future__ import annotations

import datetime as dt

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.integration.conftest import wait_for
from tests.integration.support import (
    DIGEST,
    create,
    events_for,
    finish_fetch,
    get,
    kuberay_job_status,
    line,
    manifest,
    rayjobs,
    ready_model,
    status_of,
)


def test_foundationmodel_fetch_flow(k8s_api, namespace, start_operator, dashboard) -> None:
    start_operator()
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    job = wait_for("the fetch RayJob", lambda: (rayjobs(k8s_api, namespace) or [None])[0])
    labels = job["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/managed-by": "drover",
        "drover.dev/foundationmodel": "tiny-llama",
    }
    assert job["metadata"]["ownerReferences"][0]["kind"] == "FoundationModel"
    assert job["spec"]["entrypoint"] == "python -m drover_workers.fetch"
    claim = client.CoreV1Api(k8s_api).read_namespaced_persistent_volume_claim(
        "tiny-llama-cache", namespace
    )
    assert claim.metadata.owner_references[0].name == "tiny-llama"

    kuberay_job_status(
        k8s_api,
        namespace,
        job["metadata"]["name"],
        dashboard.address,
        deployment="Running",
        job="RUNNING",
    )
    dashboard.logs[f"{namespace}-{job['metadata']['name']}"] = (
        '::drover::progress {"bytes": 1000000, "totalBytes": 4000000}\n'
    )
    wait_for(
        "Fetching with progress",
        lambda: (
            "1.0/4.0 MB"
            in str(
                status_of(k8s_api, "foundationmodels", namespace, "tiny-llama").get("conditions")
            )
        ),
    )

    finish_fetch(k8s_api, namespace, job, dashboard)
    status = wait_for(
        "Ready",
        lambda: (
            (s := status_of(k8s_api, "foundationmodels", namespace, "tiny-llama")).get("phase")
            == "Ready"
            and s
        ),
    )
    assert status["digest"] == DIGEST
    assert status["cache"] == {
        "claimName": "tiny-llama-cache",
        "path": f"tiny-llama/{DIGEST[7:19]}",
    }
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and status["observedGeneration"] == 1
    assert any(
        e.startswith("Fetched:")
        for e in wait_for("events", lambda: events_for(k8s_api, namespace, "tiny-llama"))
    )


def test_failed_fetch_is_reported_with_the_reason(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    start_operator()
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    job = wait_for("the fetch RayJob", lambda: (rayjobs(k8s_api, namespace) or [None])[0])
    dashboard.logs[f"{namespace}-{job['metadata']['name']}"] = (
        '::drover::result {"error": "401 Unauthorized from the hub"}\n'
    )
    kuberay_job_status(
        k8s_api,
        namespace,
        job["metadata"]["name"],
        dashboard.address,
        deployment="Failed",
        job="FAILED",
    )
    status = wait_for(
        "Failed",
        lambda: (
            (s := status_of(k8s_api, "foundationmodels", namespace, "tiny-llama")).get("phase")
            == "Failed"
            and s
        ),
    )
    fetched = next(c for c in status["conditions"] if c["type"] == "Fetched")
    assert fetched["reason"] == "FetchFailed" and "401" in fetched["message"]
    assert next(c for c in status["conditions"] if c["type"] == "Degraded")["status"] == "True"


def test_a_result_the_operator_cannot_read_ends_in_a_clear_condition_and_a_rerun(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    # The job succeeded 10 minutes ago and its log is unreachable (the dashboard answers 404,
    # as when KubeRay deleted the cluster ttlSecondsAfterFinished after the job).
    start_operator()
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    job = wait_for("the fetch RayJob", lambda: (rayjobs(k8s_api, namespace) or [None])[0])
    name = job["metadata"]["name"]
    ended = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kuberay_job_status(
        k8s_api,
        namespace,
        name,
        dashboard.address,
        deployment="Complete",
        job="SUCCEEDED",
        end_time=ended,
    )

    def fetched() -> dict | None:
        status = status_of(k8s_api, "foundationmodels", namespace, "tiny-llama")
        cond = next((c for c in status.get("conditions", []) if c["type"] == "Fetched"), None)
        return cond if cond and cond["reason"] == "ResultUnavailable" else None

    cond = wait_for("Fetched=False ResultUnavailable", fetched)
    assert cond["status"] == "False"
    assert f"RayJob {name}" in cond["message"] and dashboard.address in cond["message"]
    status = status_of(k8s_api, "foundationmodels", namespace, "tiny-llama")
    assert next(c for c in status["conditions"] if c["type"] == "Degraded")["status"] == "True"
    wait_for(
        "a ResultUnavailable event",
        lambda: any(
            e.startswith("ResultUnavailable:") for e in events_for(k8s_api, namespace, "tiny-llama")
        ),
    )

    # The fix the message gives: delete the RayJob; the operator runs it again.
    uid = job["metadata"]["uid"]
    client.CustomObjectsApi(k8s_api).delete_namespaced_custom_object(
        "ray.io", "v1", namespace, "rayjobs", name
    )
    wait_for(
        "a new fetch RayJob",
        lambda: any(j["metadata"]["uid"] != uid for j in rayjobs(k8s_api, namespace)),
    )
    wait_for("Fetched no longer ResultUnavailable", lambda: fetched() is None)


def test_finetune_waits_for_its_base_model_then_trains_and_produces_a_model(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    start_operator()
    create(k8s_api, manifest("02-finetune.yaml", namespace))
    wait_for(
        "WaitingForBaseModel",
        lambda: (
            status_of(k8s_api, "finetunejobs", namespace, "support-lora").get("phase")
            == "WaitingForBaseModel"
        ),
    )
    assert rayjobs(k8s_api, namespace) == []
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    ready_model(k8s_api, namespace, "tiny-llama", dashboard)
    train = wait_for(
        "the training RayJob",
        lambda: next(
            (
                j
                for j in rayjobs(k8s_api, namespace)
                if j["metadata"]["name"] == "support-lora-train"
            ),
            None,
        ),
    )
    assert train["spec"]["entrypoint"] == "python -m drover_workers.finetune"
    job_id = f"{namespace}-support-lora-train"
    dashboard.logs[job_id] = '::drover::progress {"step": 10, "totalSteps": 20, "loss": 2.5}\n'
    kuberay_job_status(
        k8s_api,
        namespace,
        "support-lora-train",
        dashboard.address,
        deployment="Running",
        job="RUNNING",
    )
    wait_for(
        "progress 50%",
        lambda: (
            (
                status_of(k8s_api, "finetunejobs", namespace, "support-lora").get("progress") or {}
            ).get("percent")
            == 50
        ),
    )
    dashboard.logs[job_id] += line(
        "result",
        {
            "passed": True,
            "digest": "sha256:77",
            "datasetDigest": "sha256:dd",
            "evaluation": {"loss": 1.9, "perplexity": 6.7},
        },
    )
    kuberay_job_status(
        k8s_api,
        namespace,
        "support-lora-train",
        dashboard.address,
        deployment="Complete",
        job="SUCCEEDED",
    )
    status = wait_for(
        "Succeeded",
        lambda: (
            (s := status_of(k8s_api, "finetunejobs", namespace, "support-lora")).get("phase")
            == "Succeeded"
            and s
        ),
    )
    assert status["evaluation"]["loss"] == 1.9 and status["outputModel"] == {
        "name": "tiny-llama-support"
    }
    produced = get(k8s_api, "foundationmodels", namespace, "tiny-llama-support")
    assert produced["spec"]["lineage"]["baseModel"] == "tiny-llama"
    assert produced["spec"]["lineage"]["fineTuneJob"] == "support-lora"
    assert produced["spec"]["lineage"]["datasetDigest"] == "sha256:dd"
    assert produced["spec"]["source"]["uri"].startswith("pvc://tiny-llama-cache/finetuned/")


def test_evaluation_below_threshold_fails_the_job_and_produces_nothing(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    start_operator()
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    create(k8s_api, manifest("02-finetune.yaml", namespace))
    ready_model(k8s_api, namespace, "tiny-llama", dashboard)
    wait_for(
        "the training RayJob",
        lambda: any(
            j["metadata"]["name"] == "support-lora-train" for j in rayjobs(k8s_api, namespace)
        ),
    )
    dashboard.logs[f"{namespace}-support-lora-train"] = line(
        "result",
        {"passed": False, "failedThresholds": ["maxLoss: 9.3 > 8.0"], "evaluation": {"loss": 9.3}},
    )
    kuberay_job_status(
        k8s_api,
        namespace,
        "support-lora-train",
        dashboard.address,
        deployment="Complete",
        job="SUCCEEDED",
    )
    status = wait_for(
        "Failed",
        lambda: (
            (s := status_of(k8s_api, "finetunejobs", namespace, "support-lora")).get("phase")
            == "Failed"
            and s
        ),
    )
    evaluated = next(c for c in status["conditions"] if c["type"] == "Evaluated")
    assert evaluated["reason"] == "EvaluationBelowThreshold" and "9.3 > 8.0" in evaluated["message"]
    with pytest.raises(ApiException):
        get(k8s_api, "foundationmodels", namespace, "tiny-llama-support")
