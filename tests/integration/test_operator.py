"""The operator process against the local control plane: children, status, events, deletion,
restarts and peering. KubeRay's part is played by patching child status as KubeRay writes it.
"""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.integration.conftest import kubectl, wait_for
from tests.integration.support import (
    DIGEST,
    G,
    V,
    create,
    events_for,
    finish_fetch,
    get,
    kuberay_job_status,
    line,
    manifest,
    rayjobs,
    ready_model,
    service_without_retrieval,
    serving_status,
    status_of,
)


def test_foundationmodel_fetch_flow(k8s_api, namespace, start_operator, dashboard) -> None:
    start_operator()
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    job = wait_for("the fetch RayJob", lambda: (rayjobs(k8s_api, namespace) or [None])[0])
    labels = job["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/managed-by": "drover",
        "drover.dev/foundationmodel": "tiny-gpt2",
    }
    assert job["metadata"]["ownerReferences"][0]["kind"] == "FoundationModel"
    assert job["spec"]["entrypoint"] == "python -m drover_workers.fetch"
    claim = client.CoreV1Api(k8s_api).read_namespaced_persistent_volume_claim(
        "tiny-gpt2-cache", namespace
    )
    assert claim.metadata.owner_references[0].name == "tiny-gpt2"

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
            in str(status_of(k8s_api, "foundationmodels", namespace, "tiny-gpt2").get("conditions"))
        ),
    )

    finish_fetch(k8s_api, namespace, job, dashboard)
    status = wait_for(
        "Ready",
        lambda: (
            (s := status_of(k8s_api, "foundationmodels", namespace, "tiny-gpt2")).get("phase")
            == "Ready"
            and s
        ),
    )
    assert status["digest"] == DIGEST
    assert status["cache"] == {"claimName": "tiny-gpt2-cache", "path": f"tiny-gpt2/{DIGEST[7:19]}"}
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and status["observedGeneration"] == 1
    assert any(
        e.startswith("Fetched:")
        for e in wait_for("events", lambda: events_for(k8s_api, namespace, "tiny-gpt2"))
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
            (s := status_of(k8s_api, "foundationmodels", namespace, "tiny-gpt2")).get("phase")
            == "Failed"
            and s
        ),
    )
    fetched = next(c for c in status["conditions"] if c["type"] == "Fetched")
    assert fetched["reason"] == "FetchFailed" and "401" in fetched["message"]
    assert next(c for c in status["conditions"] if c["type"] == "Degraded")["status"] == "True"


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
    ready_model(k8s_api, namespace, "tiny-gpt2", dashboard)
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
        "name": "tiny-gpt2-support"
    }
    produced = get(k8s_api, "foundationmodels", namespace, "tiny-gpt2-support")
    assert produced["spec"]["lineage"]["baseModel"] == "tiny-gpt2"
    assert produced["spec"]["lineage"]["fineTuneJob"] == "support-lora"
    assert produced["spec"]["lineage"]["datasetDigest"] == "sha256:dd"
    assert produced["spec"]["source"]["uri"].startswith("pvc://tiny-gpt2-cache/finetuned/")


def test_evaluation_below_threshold_fails_the_job_and_produces_nothing(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    start_operator()
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    create(k8s_api, manifest("02-finetune.yaml", namespace))
    ready_model(k8s_api, namespace, "tiny-gpt2", dashboard)
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
        get(k8s_api, "foundationmodels", namespace, "tiny-gpt2-support")


def test_inferenceservice_becomes_a_rayservice_and_reports_its_url(
    k8s_api, kubeconfig, namespace, start_operator, dashboard
) -> None:
    start_operator()
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    create(k8s_api, service_without_retrieval(namespace))
    wait_for(
        "WaitingForModel",
        lambda: (
            status_of(k8s_api, "inferenceservices", namespace, "support-bot").get("phase")
            == "WaitingForModel"
        ),
    )
    ready_model(k8s_api, namespace, "tiny-gpt2", dashboard)
    rs = wait_for(
        "the RayService",
        lambda: get(k8s_api, "rayservices", namespace, "support-bot", "ray.io", "v1"),
    )
    config = yaml.safe_load(rs["spec"]["serveConfigV2"])
    router, *version_apps = config["applications"]
    assert router["name"] == "support-bot" and router["route_prefix"] == "/"
    versions = [a["name"].removeprefix("support-bot-") for a in version_apps]
    assert len(versions) == 1 and versions[0].startswith("v")
    assert [d["name"] for d in version_apps[0]["deployments"]] == ["model"]
    assert rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["groupName"] == "cpu"
    serving_status(k8s_api, namespace, "support-bot", versions)
    status = wait_for(
        "Ready",
        lambda: (
            (s := status_of(k8s_api, "inferenceservices", namespace, "support-bot")).get("phase")
            == "Ready"
            and s
        ),
    )
    assert status["url"] == f"http://127.0.0.1:8000/{namespace}/support-bot"
    assert status["stable"]["model"] == "tiny-gpt2" and status["stable"]["weight"] == 100
    assert status["stable"]["ready"] is True
    out = kubectl(kubeconfig, "get", "infsvc", "-n", namespace).stdout
    assert "support-bot" in out and "tiny-gpt2" in out


def test_unknown_accelerator_class_is_a_clear_condition(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    start_operator()
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    create(k8s_api, service_without_retrieval(namespace, accelerator={"class": "tpu-v9"}))
    ready_model(k8s_api, namespace, "tiny-gpt2", dashboard)
    status = wait_for(
        "Failed",
        lambda: (
            (s := status_of(k8s_api, "inferenceservices", namespace, "support-bot")).get("phase")
            == "Failed"
            and s
        ),
    )
    cond = next(c for c in status["conditions"] if c["type"] == "ModelReady")
    assert (
        cond["reason"] == "UnknownAcceleratorClass"
        and "tpu-v9" in cond["message"]
        and "cpu" in cond["message"]
    )
    assert any(
        "UnknownAcceleratorClass" in e
        for e in wait_for("event", lambda: events_for(k8s_api, namespace, "support-bot"))
    )


def test_deleting_a_model_in_use_waits_for_its_users(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    start_operator()
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    create(k8s_api, service_without_retrieval(namespace))
    ready_model(k8s_api, namespace, "tiny-gpt2", dashboard)
    wait_for(
        "the RayService",
        lambda: get(k8s_api, "rayservices", namespace, "support-bot", "ray.io", "v1"),
    )
    api = client.CustomObjectsApi(k8s_api)
    api.delete_namespaced_custom_object(G, V, namespace, "foundationmodels", "tiny-gpt2")
    held = wait_for(
        "InUse",
        lambda: next(
            (
                c
                for c in status_of(k8s_api, "foundationmodels", namespace, "tiny-gpt2").get(
                    "conditions", []
                )
                if c["type"] == "InUse"
            ),
            None,
        ),
    )
    assert "InferenceService/support-bot" in held["message"]
    assert get(k8s_api, "foundationmodels", namespace, "tiny-gpt2")["metadata"].get(
        "deletionTimestamp"
    )
    api.delete_namespaced_custom_object(G, V, namespace, "inferenceservices", "support-bot")

    def gone(plural: str, name: str, group: str = G, version: str = V) -> bool:
        try:
            get(k8s_api, plural, namespace, name, group, version)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for("the model to be deleted", lambda: gone("foundationmodels", "tiny-gpt2"), timeout=60)
    wait_for(
        "the RayService to be collected", lambda: gone("rayservices", "support-bot", "ray.io", "v1")
    )
    wait_for("the RayJobs to be collected", lambda: rayjobs(k8s_api, namespace) == [])


def test_restart_in_the_middle_creates_no_duplicates(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    first = start_operator()
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    create(k8s_api, manifest("02-finetune.yaml", namespace))
    wait_for("the fetch RayJob", lambda: rayjobs(k8s_api, namespace))
    first.kill()
    start_operator()
    ready_model(k8s_api, namespace, "tiny-gpt2", dashboard)
    wait_for(
        "the training RayJob",
        lambda: any(
            j["metadata"]["name"] == "support-lora-train" for j in rayjobs(k8s_api, namespace)
        ),
    )
    names = sorted(j["metadata"]["name"] for j in rayjobs(k8s_api, namespace))
    assert len(names) == len(set(names)) == 2
    claims = client.CoreV1Api(k8s_api).list_namespaced_persistent_volume_claim(namespace).items
    assert [c.metadata.name for c in claims] == ["tiny-gpt2-cache"]


def test_of_two_peered_operators_only_one_acts(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    # The chart creates the peering object; kopf waits for it to exist.
    client.CustomObjectsApi(k8s_api).create_namespaced_custom_object(
        "kopf.dev",
        "v1",
        namespace,
        "kopfpeerings",
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering",
            "metadata": {"name": f"peering-{namespace}", "namespace": namespace},
        },
    )
    high = start_operator(standalone=False, priority=200)
    low = start_operator(standalone=False, priority=100)

    def peers() -> int:
        peering = client.CustomObjectsApi(k8s_api).get_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", f"peering-{namespace}"
        )
        return len(peering.get("status") or {})

    wait_for("both operators to announce themselves", lambda: peers() == 2)
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    job = wait_for("the fetch RayJob", lambda: rayjobs(k8s_api, namespace))
    wait_for("a few poll rounds", lambda: high.log().count("Timer 'foundationmodel_poll'") >= 3)
    assert len(job) == 1
    assert "Handler 'foundationmodel_changed' succeeded" in high.log()
    assert "foundationmodel" not in low.log()  # the paused replica never touched the model


def test_serving_an_adapter_as_a_model_says_how_to_serve_it(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    start_operator()
    adapter = manifest("00-base-model.yaml", namespace)
    adapter["metadata"]["name"] = "support-adapter"
    adapter["metadata"]["labels"] = {"drover.dev/adapter-of": "tiny-gpt2"}
    create(k8s_api, adapter)
    create(k8s_api, service_without_retrieval(namespace, model={"name": "support-adapter"}))
    ready_model(k8s_api, namespace, "support-adapter", dashboard)
    status = wait_for(
        "the adapter condition",
        lambda: next(
            (
                c
                for c in status_of(k8s_api, "inferenceservices", namespace, "support-bot")[
                    "conditions"
                ]
                if c["reason"] == "ModelIsAdapter"
            ),
            None,
        ),
    )
    assert "spec.adapter.name: support-adapter" in status["message"]
