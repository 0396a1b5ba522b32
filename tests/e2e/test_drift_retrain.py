"""End to end on the local stack: drift → retrain → evaluation → canary, once.

The pipeline's service, with `spec.drift` and `spec.retraining` (the pipeline's own fine-tune as
the template), answers one kind of question until the operator has captured its reference
window; then the questions change. The router's histograms move (prompt length, and the cosine
distance of each prompt to its nearest handbook chunk), the operator sets DriftDetected, creates
one FineTuneJob from the template, the job trains for real and passes its evaluation gate, and
its LoRA adapter is rolled out as the service's canary — with spec.model and spec.adapter as the
user wrote them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.test_pipeline import PIPELINE, _needs_prometheus, kubectl

from drover_sandbox.demo import Load

# `stack` and `kube` come from tests/e2e/conftest.py: module-scoped, so this module has its own.
pytestmark = [pytest.mark.slow, pytest.mark.e2e]

NS, SVC = "default", "support-bot"
JOB = f"{SVC}-retrain-1"
RETRAINED = f"tiny-llama+{JOB}"  # a LoRA output is served on its base's engine
BEFORE = "How do I get a refund?"  # the handbook has the answer
AFTER = "Write a short poem about the colour of the sea at night."  # the handbook has nothing
DRIFT = {"windowSeconds": 20, "minSamples": 20, "intervalSeconds": 2, "threshold": 0.2}


def _manifests(tmp: Path) -> Path:
    """The pipeline without its fine-tune; the service retrains from that fine-tune's spec."""
    out = tmp / "pipeline"
    out.mkdir()
    template = yaml.safe_load((PIPELINE / "02-finetune.yaml").read_text())["spec"]
    template.pop("output")  # the operator names each retraining's output
    for name in ("00-base-model.yaml", "01-embedder.yaml", "03-index.yaml", "04-service.yaml"):
        doc = yaml.safe_load((PIPELINE / name).read_text())
        if doc["kind"] == "InferenceService":
            doc["spec"]["drift"] = DRIFT
            doc["spec"]["retraining"] = {"template": template, "cooldownSeconds": 3600}
        (out / name).write_text(yaml.safe_dump(doc))
    return out


def _status(walker: Any, kind: str = "InferenceService", name: str = SVC) -> dict[str, Any]:
    return (walker.get(kind, name) or {}).get("status") or {}


def _drift_condition(walker: Any) -> dict[str, Any]:
    conds = _status(walker).get("conditions") or []
    return next((c for c in conds if c["type"] == "DriftDetected"), {})


def _canary_live(walker: Any) -> bool:
    """The retrained version serves user requests as the canary, or its rollout ended."""
    status = _status(walker)
    canary = status.get("canary") or {}
    if canary.get("model") == RETRAINED and canary.get("weight", 0) > 0:
        return True
    records = (status.get("rollout") or {}).get("history") or []
    return any(r["to"]["model"] == RETRAINED for r in records)  # promoted or rolled back


def _referenced(walker: Any) -> bool:
    reference = (_status(walker).get("drift") or {}).get("reference") or {}
    return "promptLength" in (reference.get("buckets") or {})


def test_drift_retrains_and_the_passed_adapter_becomes_the_canary(
    stack: dict[str, Any], kube: Path, tmp_path: Path
) -> None:
    from drover_sandbox.walk import Walker, all_of, phase_is

    _needs_prometheus(stack)
    manifests = _manifests(tmp_path)
    print(kubectl(kube, "apply", "-f", str(manifests)))
    walker = Walker(NS)
    walker.until(
        "the service to be Ready",
        all_of(
            phase_is("VectorIndex", "handbook", "Ready"),
            phase_is("InferenceService", SVC, "Ready"),
        ),
        timeout=420,
    )
    url = f"{_status(walker)['url']}/v1"
    with Load(url, SVC, concurrency=2, limit=5000, timeout=60, prompt=BEFORE):
        walker.until("the reference window", lambda found: _referenced(walker), timeout=180)
    assert _drift_condition(walker).get("status") != "True"
    with Load(url, SVC, concurrency=2, limit=20000, timeout=60, prompt=AFTER) as load:
        walker.until(
            "DriftDetected", lambda found: _drift_condition(walker).get("status") == "True",
            timeout=180,
        )  # fmt: skip
        walker.until(
            "the retraining FineTuneJob to finish",
            phase_is("FineTuneJob", JOB, "Succeeded", "Failed"),
            timeout=420,
        )
        job = _status(walker, "FineTuneJob", JOB)
        assert job["phase"] == "Succeeded", job  # the pipeline's gate: maxLoss 8.0
        walker.until(
            "the retrained adapter to take canary traffic (or its rollout to end)",
            lambda found: _canary_live(walker),
            timeout=300,
        )
    status = _status(walker)
    print(f"drift: {status['drift']['message']}; rollout: {status['rollout'].get('reason')}")
    drift = status["drift"]
    assert drift["detected"] and max(drift["psi"].values()) > 0.2, drift
    assert status["retraining"]["latest"]["model"] == JOB
    assert status["retraining"]["count"] == 1  # one job for the one drift
    # The canary (or, once promoted, the stable) runs on the base's own engine application.
    served = status.get("canary") or status["stable"]
    assert served["application"] == status["stable"]["application"]
    assert RETRAINED in (served["model"], *(r["to"]["model"] for r in status["rollout"]["history"]))
    service = walker.get("InferenceService", SVC) or {}
    assert service["spec"]["model"] == {"name": "tiny-llama"} and "adapter" not in service["spec"]
    produced = walker.get("FoundationModel", JOB) or {}
    assert produced["spec"]["lineage"]["fineTuneJob"] == JOB
    events = kubectl(kube, "get", "events", "-n", NS, "-o", "yaml")
    for reason in ("DriftDetected", "RetrainingStarted", "RetrainingSucceeded"):
        assert f"reason: {reason}" in events, reason
    assert load.ok > 20
    kubectl(kube, "delete", "-f", str(manifests), "--wait=true", "--timeout=120s")
    kubectl(kube, "delete", "fmodel", JOB, "--wait=true", "--timeout=120s")
