"""The operator process against the local control plane: serving, deletion, restarts and
peering. KubeRay's part is played by patching child status as KubeRay writes it. (Models and
fine-tuning: test_operator_models.py.)
"""

from __future__ import annotations

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.integration.conftest import kubectl, wait_for
from tests.integration.support import (
    G,
    V,
    create,
    events_for,
    get,
    manifest,
    rayjobs,
    ready_model,
    service_without_retrieval,
    serving_status,
    status_of,
)


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
    ready_model(k8s_api, namespace, "tiny-llama", dashboard)
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
    assert status["stable"]["model"] == "tiny-llama" and status["stable"]["weight"] == 100
    assert status["stable"]["ready"] is True
    out = kubectl(kubeconfig, "get", "infsvc", "-n", namespace).stdout
    assert "support-bot" in out and "tiny-llama" in out


def test_unknown_accelerator_class_is_a_clear_condition(
    k8s_api, namespace, start_operator, dashboard
) -> None:
    start_operator()
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    create(k8s_api, service_without_retrieval(namespace, accelerator={"class": "tpu-v9"}))
    ready_model(k8s_api, namespace, "tiny-llama", dashboard)
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
    ready_model(k8s_api, namespace, "tiny-llama", dashboard)
    wait_for(
        "the RayService",
        lambda: get(k8s_api, "rayservices", namespace, "support-bot", "ray.io", "v1"),
    )
    api = client.CustomObjectsApi(k8s_api)
    api.delete_namespaced_custom_object(G, V, namespace, "foundationmodels", "tiny-llama")
    held = wait_for(
        "InUse",
        lambda: next(
            (
                c
                for c in status_of(k8s_api, "foundationmodels", namespace, "tiny-llama").get(
                    "conditions", []
                )
                if c["type"] == "InUse"
            ),
            None,
        ),
    )
    assert "InferenceService/support-bot" in held["message"]
    assert get(k8s_api, "foundationmodels", namespace, "tiny-llama")["metadata"].get(
        "deletionTimestamp"
    )
    api.delete_namespaced_custom_object(G, V, namespace, "inferenceservices", "support-bot")

    def gone(plural: str, name: str, group: str = G, version: str = V) -> bool:
        try:
            get(k8s_api, plural, namespace, name, group, version)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for("the model to be deleted", lambda: gone("foundationmodels", "tiny-llama"), timeout=60)
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
    ready_model(k8s_api, namespace, "tiny-llama", dashboard)
    wait_for(
        "the training RayJob",
        lambda: any(
            j["metadata"]["name"] == "support-lora-train" for j in rayjobs(k8s_api, namespace)
        ),
    )
    names = sorted(j["metadata"]["name"] for j in rayjobs(k8s_api, namespace))
    assert len(names) == len(set(names)) == 2
    claims = client.CoreV1Api(k8s_api).list_namespaced_persistent_volume_claim(namespace).items
    assert [c.metadata.name for c in claims] == ["tiny-llama-cache"]


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
    adapter["metadata"]["labels"] = {"drover.dev/adapter-of": "tiny-llama"}
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
