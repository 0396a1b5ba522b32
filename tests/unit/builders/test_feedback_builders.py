"""Builders of feedback: the router writes spec.feedback.storage (a claim mounted read-write on the
serving workers, the router placed on a pod that mounts it), and a FineTuneJob reads the same
URI (the claim mounted read-only where it trains)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from tests.unit.builders.conftest import READY_BASE, load
from tests.unit.builders.test_serving_builders import INDEX, _plans, _pods

from drover.api import InvalidResource, parse_resource
from drover.api.finetunejob import FineTuneJob
from drover.api.inferenceservice import InferenceService
from drover.builders.feedback import feedback_claims
from drover.builders.finetunejob import build_finetune_rayjob
from drover.builders.meta import stamp
from drover.builders.placement import resolve_placement
from drover.builders.raycluster import WorkerGroup
from drover.builders.rayjob import worker_config_of
from drover.builders.serving import build_rayservice, plan_worker_groups, serve_config_of
from drover.builders.serving_plans import needed_claims

STORAGE = "pvc://feedback-store/support-bot"


def _service(**feedback: Any) -> InferenceService:
    doc = load("04-service.yaml")
    doc["spec"]["feedback"] = feedback
    return InferenceService.model_validate(doc)


def _rayservice(svc: InferenceService, config: Any, **kw: Any) -> dict[str, Any]:
    placement = resolve_placement(None, config.accelerator_classes, field="f")
    return build_rayservice(svc, _plans(), INDEX, placement=placement, image="x", **kw)


def _claim_mounts(pod_spec: dict[str, Any]) -> dict[str, bool]:
    """claim -> readOnly of a pod template's claim volumes."""
    return {
        v["persistentVolumeClaim"]["claimName"]: v["persistentVolumeClaim"]["readOnly"]
        for v in pod_spec.get("volumes") or []
        if "persistentVolumeClaim" in v
    }


def test_the_router_writes_feedback_on_a_claim_its_pod_mounts_read_write(config) -> None:
    from drover_workers.serve.config import parse_router_args

    svc = _service(
        enabled=True,
        storage=STORAGE,
        redact={"builtin": ["email", "card"], "patterns": [{"name": "emp", "pattern": "E-\\d+"}]},
        remember=500,
    )
    rs = stamp(_rayservice(svc, config), load("04-service.yaml"))
    router_app = serve_config_of(rs)["applications"][0]
    args = parse_router_args(router_app["args"])
    assert args.feedback is not None
    assert args.feedback.path == "/models/feedback-store/support-bot"
    assert args.feedback.builtin_redactors == ["email", "card"]
    assert [(p.name, p.pattern) for p in args.feedback.redact] == [("emp", "E-\\d+")]
    assert args.feedback.remember == 500
    resources = router_app["deployments"][0]["ray_actor_options"]["resources"]
    assert set(resources) == {
        "drover-claim-feedback-store",
        "drover-claim-handbook-index",
        "drover-claim-minilm-cache",
    }
    cluster = rs["spec"]["rayClusterConfig"]
    (worker,) = cluster["workerGroupSpecs"]
    assert "drover-claim-feedback-store" in worker["resources"]
    assert _claim_mounts(worker["template"]["spec"]) == {
        "feedback-store": False,  # written by the router
        "handbook-index": True,
        "minilm-cache": True,
        "tiny-llama-cache": True,
    }
    assert _claim_mounts(cluster["headGroupSpec"]["template"]["spec"]) == {}
    for pod in _pods(cluster):
        kubernetes_validate.validate(pod, "1.30", strict=True)


def test_feedback_off_adds_no_claim_and_no_args(config) -> None:
    for svc in (_service(), _service(enabled=False, storage=STORAGE)):
        router_app = serve_config_of(_rayservice(svc, config))["applications"][0]
        assert "feedback" not in router_app["args"]
        assert feedback_claims(svc) == set()
        resources = router_app["deployments"][0]["ray_actor_options"]["resources"]
        assert "drover-claim-feedback-store" not in resources


def test_feedback_on_a_model_claim_mounts_that_claim_read_write(config) -> None:
    svc = _service(enabled=True, storage="pvc://tiny-llama-cache/feedback/support-bot")
    (worker,) = _rayservice(svc, config)["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert _claim_mounts(worker["template"]["spec"])["tiny-llama-cache"] is False


def test_turning_feedback_on_appends_a_worker_group_instead_of_a_new_cluster(config) -> None:
    """As the handler plans it (handlers/inferenceservice._ensure_rayservice): the running
    group stays, a group mounting the feedback claim too is appended (KubeRay updates the
    cluster in place when groups are only appended)."""
    svc = _service(enabled=True, storage=STORAGE)
    running = [WorkerGroup("cpu", tuple(sorted(needed_claims(_plans(), INDEX))))]
    needed = needed_claims(_plans(), INDEX) | feedback_claims(svc)
    groups = plan_worker_groups("cpu", running, needed, needed)
    assert groups[0] == running[0] and groups[1].claims == tuple(sorted(needed))
    rs = _rayservice(svc, config, groups=groups)
    first, added = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert "feedback-store" not in _claim_mounts(first["template"]["spec"])
    assert _claim_mounts(added["template"]["spec"])["feedback-store"] is False


def test_a_finetune_on_stored_feedback_mounts_the_feedback_claim_read_only(
    config, base_model
) -> None:
    from drover_workers.finetune.config import FinetuneConfig

    doc = load("02-finetune.yaml")
    doc["spec"]["dataset"] = {"uri": STORAGE, "format": "feedback"}
    job = FineTuneJob.model_validate(doc)
    placement = resolve_placement(None, config.accelerator_classes, field="f")
    rj = build_finetune_rayjob(job, base_model, READY_BASE, placement=placement, image="x")
    (worker,) = rj["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    mounts = _claim_mounts(worker["template"]["spec"])
    assert mounts["feedback-store"] is True
    assert mounts[READY_BASE["cache"]["claimName"]] is False  # the output is written there
    paths = [m["mountPath"] for m in worker["template"]["spec"]["containers"][0]["volumeMounts"]]
    assert "/models/feedback-store" in paths
    worker_config = FinetuneConfig.model_validate(worker_config_of(rj))
    assert worker_config.dataset.uri == STORAGE and worker_config.dataset.format == "feedback"
    assert (
        worker_config.pvc_root == "/models"
    )  # pvc://feedback-store/... is /models/feedback-store/...


def test_the_local_stack_maps_the_feedback_path_to_the_claims_directory(config) -> None:
    from drover_sandbox.rayexec.volumes import build_volume_map

    svc = _service(enabled=True, storage=STORAGE)
    rs = _rayservice(svc, config)
    volumes = build_volume_map(rs["spec"]["rayClusterConfig"], "default", "/data")
    path = serve_config_of(rs)["applications"][0]["args"]["feedback"]["path"]
    assert volumes.rewrite(path) == "/data/pvc/default/feedback-store/support-bot"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("(unclosed", "not a valid regular expression"), ("x*", "matches the empty string")],
)
def test_a_bad_redaction_pattern_is_refused_naming_the_field(pattern: str, message: str) -> None:
    doc = load("04-service.yaml")
    doc["spec"]["feedback"] = {
        "enabled": True,
        "storage": STORAGE,
        "redact": {"patterns": [{"name": "x", "pattern": pattern}]},
    }
    with pytest.raises(InvalidResource) as caught:
        parse_resource(doc)
    (error,) = caught.value.errors
    assert error.path == "spec.feedback.redact.patterns[0].pattern"
    assert message in error.message
