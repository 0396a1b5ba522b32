"""Builders on examples/cluster/ (the quick start on kind): every RayJob and the RayService the
chain creates, with the chart's default configuration, is valid for KubeRay v1.7.0 and core
Kubernetes, its worker configuration is accepted by the workers, and each Ray cluster fits the
laptop node README.md asks for. Nothing here runs the chain: no cluster is reachable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from tests.unit.api.api_support import load_crds, schema_errors
from tests.unit.builders.conftest import ROOT, kuberay_validator

from drover.api.common import quantity_bytes
from drover.api.finetunejob import FineTuneJob
from drover.api.foundationmodel import FoundationModel
from drover.api.inferenceservice import InferenceService
from drover.api.vectorindex import VectorIndex
from drover.builders.engine import check_context, resolve_engine_placement
from drover.builders.finetunejob import build_finetune_rayjob, build_output_model
from drover.builders.foundationmodel import build_cache_pvc, build_fetch_rayjob
from drover.builders.meta import stamp
from drover.builders.placement import resolve_placement
from drover.builders.rayjob import worker_config_of
from drover.builders.serving import build_rayservice, rayservice_name, serve_config_of
from drover.builders.serving_plans import IndexPlan, VersionPlan
from drover.builders.vectorindex import build_index_pvc, build_index_rayjob
from drover.config import OperatorConfig

CLUSTER = ROOT / "examples" / "cluster"
IMAGE = "ghcr.io/drover-dev/drover-workers:0.1.0-cpu"

# The node README.md's quick start asks for, less what runs beside Drover's Ray pods there:
# kind's control plane (about 1 CPU), the KubeRay and Drover operators.
NODE_CPUS, NODE_MEMORY = 6.0, quantity_bytes("14Gi")
RESERVED_CPUS, RESERVED_MEMORY = 1.5, quantity_bytes("2Gi")
# KubeRay v1.7.0 adds an autoscaler container to the head of a cluster with in-tree autoscaling
# (common/pod.go BuildAutoscalerContainer: 500m / 512Mi requested).
AUTOSCALER_CPUS, AUTOSCALER_MEMORY = 0.5, quantity_bytes("512Mi")

# FoundationModel statuses once fetched (the digests are made up; the layout is the fetch's).
QWEN = {
    "phase": "Ready",
    "digest": "sha256:" + "1a" * 32,
    "cache": {"claimName": "qwen-0-5b-cache", "path": "qwen-0-5b/1a1a1a1a1a1a"},
    "contextLength": 32768,
}
MINILM = {
    "phase": "Ready",
    "digest": "sha256:" + "3c" * 32,
    "cache": {"claimName": "minilm-l6-cache", "path": "minilm-l6/3c3c3c3c3c3c"},
}
ADAPTER_DIGEST = "sha256:" + "2b" * 32


def _doc(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((CLUSTER / name).read_text())
    doc["metadata"]["uid"] = "7f3e2d1c-0000-4000-8000-000000000000"
    return dict(doc)


def _errors(validator: Any, manifest: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]


def _pods(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, **g["template"]}
        for g in groups
    ]


def _requests(containers: list[dict[str, Any]]) -> tuple[float, int]:
    cpus, memory = 0.0, 0
    for container in containers:
        wanted = container["resources"]["requests"]
        text = str(wanted.get("cpu", "0"))
        cpus += float(text[:-1]) / 1000 if text.endswith("m") else float(text)
        memory += quantity_bytes(str(wanted.get("memory", "0")))
    return cpus, memory


def _cluster_requests(cluster: dict[str, Any], submitter: dict[str, Any] | None) -> tuple:
    """CPUs and bytes the Ray cluster's pods request at its starting size."""
    cpus, memory = _requests(cluster["headGroupSpec"]["template"]["spec"]["containers"])
    for group in cluster["workerGroupSpecs"]:
        c, m = _requests(group["template"]["spec"]["containers"])
        cpus, memory = cpus + c * group["replicas"], memory + m * group["replicas"]
    if submitter is not None:
        c, m = _requests(submitter["spec"]["containers"])
        cpus, memory = cpus + c, memory + m
    if cluster.get("enableInTreeAutoscaling"):
        cpus, memory = cpus + AUTOSCALER_CPUS, memory + AUTOSCALER_MEMORY
    return cpus, memory


def _assert_valid_rayjob(job: dict[str, Any]) -> None:
    assert _errors(kuberay_validator("rayjobs"), job) == []
    for pod in _pods(job["spec"]["rayClusterSpec"]):
        kubernetes_validate.validate(pod, "1.30", strict=True)
    cpus, memory = _cluster_requests(
        job["spec"]["rayClusterSpec"], job["spec"]["submitterPodTemplate"]
    )
    assert cpus <= NODE_CPUS - RESERVED_CPUS, job["metadata"]["name"]
    assert memory <= NODE_MEMORY - RESERVED_MEMORY, job["metadata"]["name"]


@pytest.fixture
def config() -> OperatorConfig:
    """What `helm install drover charts/drover` configures (tests/unit/chart checks that the
    chart's default config equals the model's defaults): the cpu class alone."""
    return OperatorConfig()


@pytest.mark.parametrize("name", ["00-base-model.yaml", "01-embedder.yaml"])
def test_cluster_models_fetch_into_valid_claims_with_valid_rayjobs(name: str) -> None:
    from drover_workers.fetch.config import FetchConfig

    parent = _doc(name)
    fm = FoundationModel.model_validate(parent)
    pvc = stamp(build_cache_pvc(fm) or {}, parent)
    kubernetes_validate.validate(pvc, "1.30", strict=True)
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]  # all kind's local-path offers
    assert "storageClassName" not in pvc["spec"]  # kind's default class, `standard`
    job = stamp(build_fetch_rayjob(fm, image=IMAGE), parent)
    _assert_valid_rayjob(job)
    config = FetchConfig.model_validate(worker_config_of(job))
    assert config.source.uri.startswith("hf://") and "drover-local" not in config.source.uri


def test_cluster_finetune_builds_on_the_chart_default_cpu_class(config) -> None:
    from drover_workers.finetune.config import FinetuneConfig

    parent = _doc("02-finetune.yaml")
    job = FineTuneJob.model_validate(parent)
    base = FoundationModel.model_validate(_doc("00-base-model.yaml"))
    placement = resolve_placement(
        job.spec.resources.accelerator,
        config.accelerator_classes,
        field="spec.resources.accelerator",
        parameter_count=base.spec.parameter_count,
    )
    # The base's claim is ReadWriteOnce: the builder accepts it for this one-worker job only.
    rayjob = stamp(build_finetune_rayjob(job, base, QWEN, placement=placement, image=IMAGE), parent)
    _assert_valid_rayjob(rayjob)
    worker = FinetuneConfig.model_validate(worker_config_of(rayjob))
    assert worker.base_model_path == "/models/qwen-0-5b-cache/qwen-0-5b/1a1a1a1a1a1a"
    assert (worker.method, worker.dataset.format, worker.gpus_per_worker) == ("lora", "text", 0)
    assert worker.evaluation is not None and worker.evaluation.dataset is not None
    assert worker.evaluation.dataset.uri.endswith("/openassistant_best_replies_eval.jsonl")
    assert worker.evaluation.max_samples == 32  # bounds the loss too: minutes, not hours


def test_cluster_finetune_output_is_an_adapter_model_fetched_from_the_base_claim() -> None:
    job = FineTuneJob.model_validate(_doc("02-finetune.yaml"))
    base = FoundationModel.model_validate(_doc("00-base-model.yaml"))
    out = build_output_model(job, base, QWEN, {"datasetDigest": "sha256:99"})
    assert out["metadata"]["name"] == "qwen-0-5b-guanaco"
    assert out["metadata"]["labels"]["drover.dev/adapter-of"] == "qwen-0-5b"
    assert schema_errors(out, load_crds()["FoundationModel"]) == []
    adapter = FoundationModel.model_validate(out)
    assert build_cache_pvc(adapter) is None  # it lives on the base's claim
    fetch = build_fetch_rayjob(adapter, image=IMAGE)
    fetch["metadata"]["namespace"] = "default"
    _assert_valid_rayjob(fetch)


def test_cluster_index_builds_from_the_hub_with_the_embedder() -> None:
    from drover_workers.index.config import IndexConfig

    parent = _doc("03-index.yaml")
    vi = VectorIndex.model_validate(parent)
    pvc = stamp(build_index_pvc(vi) or {}, parent)
    kubernetes_validate.validate(pvc, "1.30", strict=True)
    job = stamp(build_index_rayjob(vi, MINILM, 1, image=IMAGE), parent)
    _assert_valid_rayjob(job)
    worker = IndexConfig.model_validate(worker_config_of(job))
    assert worker.embedder_path == "/models/minilm-l6-cache/minilm-l6/3c3c3c3c3c3c"


def _service_parts(config: OperatorConfig) -> tuple[InferenceService, dict[str, Any]]:
    parent = _doc("04-service.yaml")
    svc = InferenceService.model_validate(parent)
    assert svc.spec.adapter is not None
    check_context(svc.spec.runtime, QWEN["contextLength"])
    placement = resolve_engine_placement(
        svc.spec.runtime,
        svc.spec.accelerator,
        config.accelerator_classes,
        field="spec.accelerator",
        parameter_count=494032768,
    )
    lora = VersionPlan(
        model=f"{svc.spec.model.name}+{svc.spec.adapter.name}",
        digest=QWEN["digest"],
        claim="qwen-0-5b-cache",
        path="qwen-0-5b/1a1a1a1a1a1a",
        adapter_claim="qwen-0-5b-cache",
        adapter_path="qwen-0-5b-guanaco/2b2b2b2b2b2b",
        adapter_digest=ADAPTER_DIGEST,
        replicas=svc.spec.replicas.min,
    )
    index = IndexPlan(
        claim="qwen-model-card-index",
        path="qwen-model-card/v1",
        embedder_claim="minilm-l6-cache",
        embedder_path="minilm-l6/3c3c3c3c3c3c",
    )
    rs = build_rayservice(
        svc,
        [lora],
        index,
        placement=placement,
        image=IMAGE,
        route_prefix=config.serving.route_prefix,
        replica_cpus=config.serving.replica_cpus,
    )
    return svc, stamp(rs, parent)


def test_cluster_service_is_a_valid_rayservice_that_fits_the_laptop_node(config) -> None:
    _, rs = _service_parts(config)
    assert _errors(kuberay_validator("rayservices"), rs) == []
    cluster = rs["spec"]["rayClusterConfig"]
    for pod in _pods(cluster):
        kubernetes_validate.validate(pod, "1.30", strict=True)
    cpus, memory = _cluster_requests(cluster, None)
    assert cpus <= NODE_CPUS - RESERVED_CPUS
    assert memory <= NODE_MEMORY - RESERVED_MEMORY


def test_cluster_service_serves_the_adapter_on_the_base_engine_with_retrieval(config) -> None:
    from drover_workers.serve.config import (
        parse_model_args,
        parse_model_user_config,
        parse_router_args,
        parse_router_user_config,
    )

    _, rs = _service_parts(config)
    router_app, engine_app = serve_config_of(rs)["applications"]
    router = parse_router_args(router_app["args"])
    assert router.retrieval is not None
    assert router_app["route_prefix"] == "/"  # the API answers under /v1 on the serve Service
    (version,) = parse_router_user_config(router_app["deployments"][0]["user_config"]).versions
    model = parse_model_args(engine_app["args"])
    assert model.version.model_path == "/models/qwen-0-5b-cache/qwen-0-5b/1a1a1a1a1a1a"
    adapters = parse_model_user_config(engine_app["deployments"][0]["user_config"]).adapters
    adapter = adapters[version].adapter_path
    assert adapter == "/models/qwen-0-5b-cache/qwen-0-5b-guanaco/2b2b2b2b2b2b"
    assert engine_app["deployments"][0]["num_replicas"] == 1


def test_readme_quick_start_reaches_the_service_the_builders_name(config) -> None:
    from drover_workers.serve.config import parse_router_args

    # README.md port-forwards KubeRay's serve Service of the RayService and asks the router for
    # the model it answers to: the InferenceService's own name.
    svc, rs = _service_parts(config)
    readme = (ROOT / "README.md").read_text()
    assert rayservice_name(svc) == rs["metadata"]["name"] == "qwen-chat"
    assert f"svc/{rs['metadata']['name']}-serve-svc 8000:8000" in readme
    router_app = serve_config_of(rs)["applications"][0]
    assert parse_router_args(router_app["args"]).service.name == svc.name
    assert f'"model": "{svc.name}"' in readme
    assert "kubectl apply -f examples/cluster/" in readme


def test_cluster_chain_files_are_the_ones_checked_here() -> None:
    names = sorted(p.name for p in Path(CLUSTER).glob("*.yaml"))
    assert names == [
        "00-base-model.yaml",
        "01-embedder.yaml",
        "02-finetune.yaml",
        "03-index.yaml",
        "04-service.yaml",
    ]
