"""Drift and retraining against a real Prometheus: the router's prompt-length histogram (TSDB
blocks) shifts, the operator sets DriftDetected with an event and a metric, creates one
FineTuneJob from the service's template, and once it passes its evaluation gate rolls the new
LoRA adapter out as a canary — read from status, with spec.model and spec.adapter untouched.
"""

from __future__ import annotations

import urllib.request
from typing import Any

from tests.fixtures import prometheus as prometheus_fixtures
from tests.integration.conftest import wait_for
from tests.integration.promseries import Series
from tests.integration.serving_support import (
    DIGEST_A,
    DIGEST_B,
    create_service,
    patch_spec,
    ready_model,
    router_weights,
    serve_config,
    serve_ready,
)
from tests.integration.support import (
    events_for,
    finish_fetch,
    get,
    kuberay_job_status,
    line,
    rayjobs,
    status_of,
)

from drover.api.versions import version_id
from drover.k8s import metrics

prometheus = prometheus_fixtures.prometheus  # the session's block-fed Prometheus

SVC = "chat"
JOB = f"{SVC}-retrain-1"
TEMPLATE = {
    "baseModel": {"name": "tiny-llama"},
    "dataset": {"uri": "file:///data/support/train.jsonl", "format": "chat"},
    "method": "lora",
    "resources": {"workers": 1, "accelerator": {"class": "cpu"}},
    "evaluation": {
        "dataset": {"uri": "file:///data/support/eval.jsonl", "format": "chat"},
        "thresholds": {"maxLoss": 8.0},
    },
}
DRIFT = {"windowSeconds": 30, "minSamples": 50, "intervalSeconds": 1, "threshold": 0.2}
ROLLOUT = {
    "steps": [{"weight": 20, "pauseSeconds": 600}],
    "warmup": {"requests": 0},
    "analysis": {"intervalSeconds": 10, "metrics": [{"name": "errorRate", "max": 0.05}]},
}


def prompts(series: Series, ns: str, shares: dict[float, float], rate: float, **extra: Any) -> None:
    """Prompt lengths of the stable version: `rate` prompts/s, `shares` of them in each bucket
    (by upper bound), as the router's cumulative histogram; `rate` may be a function of time."""
    labels = {"service": SVC, "namespace": ns, "version": version_id(DIGEST_A), **extra}
    name = f"{metrics.PROMPT_LENGTH}_bucket"
    cumulative = 0.0
    for le in (16, 24, 32, 64, 128, 256, 384, 512):
        cumulative += shares.get(le, 0.0)
        share = cumulative
        series.counter(name, {**labels, "le": f"{le:g}"}, _scaled(rate, share))
    series.counter(name, {**labels, "le": "+Inf"}, _scaled(rate, 1.0))


def _scaled(rate: Any, share: float) -> Any:
    return (lambda t: rate(t) * share) if callable(rate) else rate * share


def drift_of(api: Any, ns: str) -> dict[str, Any]:
    return dict(status_of(api, "inferenceservices", ns, SVC).get("drift") or {})


def condition(api: Any, ns: str) -> dict[str, Any]:
    conds = status_of(api, "inferenceservices", ns, SVC).get("conditions") or []
    return next((c for c in conds if c["type"] == "DriftDetected"), {})


def operator_metric(port: int, name: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return "\n".join(line for line in text.splitlines() if line.startswith(name))


def train(api: Any, ns: str, dashboard: Any, result: dict[str, Any]) -> None:
    """Play the retraining FineTuneJob's RayJob to its end with the worker's `result`."""
    name = f"{JOB}-train"
    wait_for(
        "the training RayJob", lambda: any(j["metadata"]["name"] == name for j in rayjobs(api, ns))
    )
    dashboard.logs[f"{ns}-{name}"] = line("result", result)
    kuberay_job_status(api, ns, name, dashboard.address, deployment="Complete", job="SUCCEEDED")


def drifted(api: Any, ns: str, start_operator: Any, dashboard: Any, prometheus: Any) -> Any:
    """A served service whose reference window is captured, then prompts 10x longer."""
    # Short prompts (<= 24 tokens) at 5/s from 10 minutes ago onwards.
    before = Series()
    prompts(before, ns, {16: 0.5, 24: 0.5}, 5.0)
    prometheus.load(before.text())
    operator = start_operator(prometheus_url=prometheus.url)
    ready_model(api, ns, "tiny-llama", dashboard, DIGEST_A)
    create_service(
        api,
        ns,
        SVC,
        drift=DRIFT,
        retraining={"template": TEMPLATE, "cooldownSeconds": 3600},
        rollout=ROLLOUT,
    )
    serve_ready(api, ns, SVC, DIGEST_A)
    captured = wait_for(
        "the reference window",
        lambda: (d := drift_of(api, ns)).get("reference", {}).get("buckets") and d,
    )
    assert captured["reference"]["version"] == version_id(DIGEST_A)
    assert condition(api, ns)["reason"] == "NoDrift"  # the recent window is the reference's
    assert not any(j["metadata"]["name"].startswith(JOB) for j in rayjobs(api, ns))
    # From now on 50 prompts/s of 256-384 tokens join them (another router replica's series).
    after = Series()
    prompts(after, ns, {384: 1.0}, lambda t: 0.0 if t < 0 else 50.0, WorkerId="later")
    prometheus.load(after.text())
    return operator


def test_drift_creates_one_finetunejob_whose_passed_output_becomes_the_canary(
    k8s_api, namespace, start_operator, dashboard, prometheus
) -> None:
    operator = drifted(k8s_api, namespace, start_operator, dashboard, prometheus)
    detected = wait_for("DriftDetected", lambda: condition(k8s_api, namespace)["status"] == "True")
    cond = condition(k8s_api, namespace)
    assert cond["reason"] == "DriftDetected" and cond["message"].startswith("promptLength PSI ")
    drift = drift_of(k8s_api, namespace)
    assert detected and drift["detected"] and drift["psi"]["promptLength"] > 0.2
    events = wait_for("events", lambda: events_for(k8s_api, namespace, SVC))
    assert any(e.startswith("DriftDetected: version ") for e in events)
    port = operator.metrics_port
    assert f'service="{SVC}"' in operator_metric(port, "drover_drift_detected")
    assert "drover_drift_psi{" in operator_metric(port, "drover_drift_psi")

    # One FineTuneJob from the template, owned by the service, its output named after it.
    job = wait_for("the retraining job", lambda: get(k8s_api, "finetunejobs", namespace, JOB))
    assert job["spec"]["output"]["modelName"] == JOB
    assert job["spec"]["dataset"] == TEMPLATE["dataset"]
    assert job["metadata"]["ownerReferences"][0]["name"] == SVC
    retraining = status_of(k8s_api, "inferenceservices", namespace, SVC)["retraining"]
    assert retraining["count"] == 1 and retraining["current"]["trigger"] == "drift"
    assert any(e.startswith(f"RetrainingStarted: FineTuneJob {JOB}") for e in events_for(
        k8s_api, namespace, SVC
    ))  # fmt: skip

    # Its gate passes: the adapter is fetched into its own FoundationModel ...
    train(
        k8s_api,
        namespace,
        dashboard,
        {"passed": True, "digest": "sha256:77", "evaluation": {"loss": 1.9}},
    )
    fetch = wait_for(
        "the adapter's fetch",
        lambda: next(
            (
                j
                for j in rayjobs(k8s_api, namespace)
                if j["metadata"]["labels"].get("drover.dev/foundationmodel") == JOB
            ),
            None,
        ),
    )
    finish_fetch(k8s_api, namespace, fetch, dashboard, digest=DIGEST_B)
    # ... and becomes the canary on the base's engine, while the spec still names tiny-llama.
    status = wait_for(
        "the retrained canary",
        lambda: (s := status_of(k8s_api, "inferenceservices", namespace, SVC)).get("canary") and s,
    )
    assert status["canary"]["model"] == f"tiny-llama+{JOB}"
    assert status["canary"]["digest"] == f"{DIGEST_A}+{DIGEST_B}"
    assert status["stable"]["model"] == "tiny-llama"
    assert status["retraining"]["latest"]["model"] == JOB
    assert status["retraining"]["latest"]["adapterOf"] == "tiny-llama"
    assert "current" not in status["retraining"]
    spec = get(k8s_api, "inferenceservices", namespace, SVC)["spec"]
    assert spec["model"] == {"name": "tiny-llama"} and "adapter" not in spec
    canary = version_id(f"{DIGEST_A}+{DIGEST_B}")
    assert canary in router_weights(serve_config(k8s_api, namespace, SVC))
    # Still one job: the drift lasts, but one runs per trigger and the cooldown holds the next.
    names = [j["metadata"]["name"] for j in rayjobs(k8s_api, namespace)]
    assert names.count(f"{JOB}-train") == 1 and f"{SVC}-retrain-2-train" not in names


def test_a_retraining_that_fails_its_gate_rolls_nothing_out(
    k8s_api, namespace, start_operator, dashboard, prometheus
) -> None:
    drifted(k8s_api, namespace, start_operator, dashboard, prometheus)
    wait_for("the retraining job", lambda: get(k8s_api, "finetunejobs", namespace, JOB))
    train(
        k8s_api,
        namespace,
        dashboard,
        {"passed": False, "failedThresholds": ["maxLoss: 9.3 > 8.0"], "evaluation": {"loss": 9.3}},
    )
    retraining = wait_for(
        "the failed run in history",
        lambda: (
            (r := status_of(k8s_api, "inferenceservices", namespace, SVC)["retraining"]).get(
                "history"
            )
            and r
        ),
    )
    assert "Failed" in retraining["history"][0] and "9.3 > 8.0" in retraining["history"][0]
    assert "latest" not in retraining and "current" not in retraining
    status = status_of(k8s_api, "inferenceservices", namespace, SVC)
    assert not status.get("canary") and status["stable"]["model"] == "tiny-llama"
    assert any(e.startswith(f"RetrainingFailed: FineTuneJob {JOB}") for e in events_for(
        k8s_api, namespace, SVC
    ))  # fmt: skip
    # Drift and retraining turned off: the condition and status.drift go; the history stays.
    patch_spec(k8s_api, namespace, SVC, {"drift": None, "retraining": None})
    wait_for("DriftDetected withdrawn", lambda: condition(k8s_api, namespace) == {})
    status = status_of(k8s_api, "inferenceservices", namespace, SVC)
    assert "drift" not in status and status["retraining"]["history"]
