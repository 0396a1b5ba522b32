"""Argo CD's health script (the chart's, run by real Lua) and kstatus' rules over statuses the
running operator wrote: a FoundationModel fetching, fetched, failed, and edited while the
operator is down (its status then describes an older generation); an InferenceService whose
canary was rolled back (Argo CD: Degraded)."""

from __future__ import annotations

from kubernetes import client
from tests.fixtures import prometheus as prometheus_fixtures
from tests.integration.conftest import wait_for
from tests.integration.support import (
    create,
    finish_fetch,
    get,
    kuberay_job_status,
    manifest,
    rayjobs,
)
from tests.integration.test_rollout_prometheus import (
    ERRORS,
    LATENCY,
    SVC,
    rollout_spec,
    settled,
    start_canary,
)
from tests.unit.gitops.gitops_support import argocd_health, kstatus_compute

prometheus = prometheus_fixtures.prometheus  # the session's block-fed Prometheus


def model(api: client.ApiClient, namespace: str) -> dict:
    return get(api, "foundationmodels", namespace, "tiny-llama")


def phase_is(api: client.ApiClient, namespace: str, phase: str):
    return lambda: (obj := model(api, namespace)).get("status", {}).get("phase") == phase and obj


def test_a_fetch_as_argo_cd_and_kstatus_see_it(k8s_api, namespace, start_operator, dashboard):
    operator = start_operator()
    create(k8s_api, manifest("00-base-model.yaml", namespace))
    job = wait_for("the fetch RayJob", lambda: (rayjobs(k8s_api, namespace) or [None])[0])
    kuberay_job_status(
        k8s_api,
        namespace,
        job["metadata"]["name"],
        dashboard.address,
        deployment="Running",
        job="RUNNING",
    )
    fetching = wait_for("Fetching", phase_is(k8s_api, namespace, "Fetching"))
    assert argocd_health(fetching)["status"] == "Progressing"
    assert kstatus_compute(fetching)[0] == "InProgress"

    finish_fetch(k8s_api, namespace, job, dashboard)
    ready = wait_for("Ready", phase_is(k8s_api, namespace, "Ready"))
    assert argocd_health(ready)["status"] == "Healthy"
    assert kstatus_compute(ready) == ("Current", "Resource is current")

    # A spec change the operator has not seen yet (it is stopped): the Ready status is stale.
    operator.stop()
    client.CustomObjectsApi(k8s_api).patch_namespaced_custom_object(
        "drover.dev",
        "v1alpha1",
        namespace,
        "foundationmodels",
        "tiny-llama",
        {"spec": {"version": "v2"}},
    )
    edited = model(k8s_api, namespace)
    assert edited["metadata"]["generation"] == 2
    assert argocd_health(edited)["status"] == "Progressing"
    assert kstatus_compute(edited)[0] == "InProgress"


def test_a_failed_fetch_is_degraded_and_stalled(k8s_api, namespace, start_operator, dashboard):
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
    failed = wait_for("Failed", phase_is(k8s_api, namespace, "Failed"))
    health = argocd_health(failed)
    assert health["status"] == "Degraded"
    assert health["message"].startswith("FetchFailed: ") and "401" in health["message"]
    status, message = kstatus_compute(failed)
    assert status == "Failed" and "401" in message


def test_a_rolled_back_canary_is_degraded_for_argo_cd(
    k8s_api, namespace, start_operator, dashboard, prometheus
):
    spec = rollout_spec(ERRORS, LATENCY)
    start_canary(
        k8s_api, namespace, start_operator, dashboard, prometheus, spec, rate=5, error_rate=0.2
    )
    settled(k8s_api, namespace, "RolledBack")
    service = get(k8s_api, "inferenceservices", namespace, SVC)
    health = argocd_health(service)
    assert health["status"] == "Degraded", health
    assert health["message"].startswith("RolledBack: ") and "errorRate 0.2" in health["message"]
    # The stable version still serves: kstatus (Flux) sees a Current service.
    assert kstatus_compute(service)[0] == "Current"
