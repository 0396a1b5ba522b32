"""The chart's Argo CD health check, run by a real Lua 5.1 (Argo CD runs gopher-lua, Lua 5.1).

Argo CD calls a `resource.customizations.health.<group>_<Kind>` script with the live object as
the global `obj` and reads `status` (Healthy, Progressing, Degraded, Suspended, Missing, Unknown)
and `message` from the table it returns (argoproj/argo-cd docs/operator-manual/health.md; the
built-in checks in resource_customizations/*/health.lua, tested the same way by
health_test.yaml over testdata/ objects). Here the objects are what Drover's operator writes.
"""

from __future__ import annotations

import pytest
import yaml
from gitops_support import HEALTH_LUA, ROOT, Case, argocd_health, cases, resource

KINDS = ("FoundationModel", "FineTuneJob", "VectorIndex", "InferenceService")
ARGOCD_HEALTH = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_health_of_what_the_operator_writes(case: Case) -> None:
    health = argocd_health(case.obj)
    assert health["status"] in ARGOCD_HEALTH
    assert health["status"] == case.argocd, health
    assert health["message"], "Argo CD shows the message beside the status"


def test_degraded_message_says_what_failed() -> None:
    failed = next(c for c in cases() if c.name == "ft-training-failed")
    assert argocd_health(failed.obj)["message"] == "TrainingFailed: RayJob failed: OOM"


def test_rolled_back_names_the_failed_check() -> None:
    rolled_back = next(c for c in cases() if c.name == "is-rolled-back")
    assert "error rate 0.2 > 0.05" in argocd_health(rolled_back.obj)["message"]


def test_ready_condition_of_an_older_generation_is_progressing() -> None:
    ready = next(c for c in cases() if c.name == "fm-ready").obj
    ready["metadata"]["generation"] = 2
    ready["status"].pop("observedGeneration")  # only the condition's own observedGeneration
    health = argocd_health(ready)
    assert health == {
        "status": "Progressing",
        "message": "Waiting for the Drover operator to observe generation 2",
    }


def test_every_kind_without_status_is_progressing() -> None:
    for kind in KINDS:
        assert argocd_health(resource(kind, "x"))["status"] == "Progressing"


def test_argocd_cm_example_registers_the_chart_script_for_every_kind() -> None:
    """examples/gitops/argocd-cm-drover-health.yaml is what a user merges into argocd-cm; it
    must carry the chart's script byte for byte, under Argo CD's key format."""
    patch = yaml.safe_load(
        (ROOT / "examples" / "gitops" / "argocd-cm-drover-health.yaml").read_text()
    )
    assert patch["kind"] == "ConfigMap" and patch["metadata"]["name"] == "argocd-cm"
    keys = {f"resource.customizations.health.drover.dev_{kind}" for kind in KINDS}
    assert set(patch["data"]) == keys
    for key in keys:
        assert patch["data"][key] == HEALTH_LUA.read_text(), f"{key} differs from the chart's"
