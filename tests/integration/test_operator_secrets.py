"""A FoundationModel whose credentialsSecretRef names a Secret that does not exist.

With the chart's rbac.readSecrets on (DROVER_READ_SECRETS), the operator says so in a False
condition naming the Secret and the fix, creates no job, and goes on once the Secret exists. With
it off, the operator never reads Secrets: the job is created with the Secret's volume optional,
so the worker's failure names the Secret (tests/workers/test_worker_credentials.py).
"""

from __future__ import annotations

import pytest
from kubernetes import client
from tests.integration.conftest import wait_for
from tests.integration.support import create, events_for, rayjobs, status_of

SECRET, KEY = "hf-token", "token"


def _gated_model(namespace: str) -> dict:
    return {
        "apiVersion": "drover.dev/v1alpha1",
        "kind": "FoundationModel",
        "metadata": {"name": "gated", "namespace": namespace},
        "spec": {
            "source": {
                "uri": "hf://meta-llama/Llama-3.2-1B@main",
                "credentialsSecretRef": {"name": SECRET, "key": KEY},
            }
        },
    }


def _fetched(k8s_api, namespace: str) -> dict:
    conds = status_of(k8s_api, "foundationmodels", namespace, "gated").get("conditions") or []
    return next((c for c in conds if c["type"] == "Fetched"), {})


def test_missing_credentials_secret_is_a_condition_naming_it_when_secrets_are_readable(
    k8s_api, namespace, start_operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DROVER_READ_SECRETS", "true")
    start_operator()
    create(k8s_api, _gated_model(namespace))
    cond = wait_for(
        "Fetched=False SecretNotFound",
        lambda: (c := _fetched(k8s_api, namespace)).get("reason") == "SecretNotFound" and c,
    )
    assert cond["status"] == "False"
    assert f"Secret {SECRET} does not exist" in cond["message"]
    assert "spec.source.credentialsSecretRef" in cond["message"]
    status = status_of(k8s_api, "foundationmodels", namespace, "gated")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and SECRET in ready["message"]
    assert rayjobs(k8s_api, namespace) == []
    assert any("SecretNotFound" in e for e in events_for(k8s_api, namespace, "gated"))

    client.CoreV1Api(k8s_api).create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=SECRET), string_data={KEY: "x"}),
    )
    wait_for("the fetch RayJob once the Secret exists", lambda: rayjobs(k8s_api, namespace))
    wait_for(
        "Fetched no longer SecretNotFound",
        lambda: _fetched(k8s_api, namespace).get("reason") != "SecretNotFound",
    )


def test_without_secret_access_the_job_starts_with_the_secret_optional(
    k8s_api, namespace, start_operator
) -> None:
    start_operator()
    create(k8s_api, _gated_model(namespace))
    (job,) = wait_for("the fetch RayJob", lambda: rayjobs(k8s_api, namespace))
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    volume = next(v for v in head["volumes"] if "secret" in v)
    assert volume["secret"] == {"secretName": SECRET, "optional": True}
    assert _fetched(k8s_api, namespace).get("reason") != "SecretNotFound"
