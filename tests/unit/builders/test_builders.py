"""Builders: golden manifests, the real KubeRay and Kubernetes schemas, and the worker contracts."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from tests.unit.builders.conftest import (
    READY_BASE,
    READY_EMBEDDER,
    assert_golden,
    kuberay_validator,
    load,
)

from drover.builders.errors import SpecError
from drover.builders.finetunejob import build_finetune_rayjob, build_output_model
from drover.builders.foundationmodel import (
    build_cache_pvc,
    build_fetch_rayjob,
    fetch_job_name,
)
from drover.builders.meta import SPEC_HASH, spec_hash, stamp
from drover.builders.placement import resolve_placement
from drover.builders.rayjob import worker_config_of
from drover.builders.vectorindex import build_index_rayjob, build_key


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


def test_fetch_rayjob_matches_golden_and_kuberay_schema(base_model, config) -> None:
    job = stamp(
        build_fetch_rayjob(base_model, image="drover/workers:test"), load("00-base-model.yaml")
    )
    assert_golden("fetch-rayjob", job)
    assert _errors(kuberay_validator("rayjobs"), job) == []
    for pod in _pods(job["spec"]["rayClusterSpec"]):
        kubernetes_validate.validate(pod, "1.30", strict=True)


def test_fetch_job_gets_the_source_and_cache_in_its_config(base_model) -> None:
    config = worker_config_of(build_fetch_rayjob(base_model, image="x"))
    assert config == {
        "source": {"uri": "hf://drover-local/tiny-llama@main"},
        "name": "tiny-llama",
        "cacheRoot": "/models/tiny-llama-cache",
        "pvcRoot": "/models",
    }


def test_fetch_config_is_accepted_by_the_fetch_worker(base_model) -> None:
    from drover_workers.fetch.config import FetchConfig

    FetchConfig.model_validate(worker_config_of(build_fetch_rayjob(base_model, image="x")))


def test_a_new_source_means_a_new_fetch_job(base_model) -> None:
    changed = base_model.model_copy(deep=True)
    changed.spec.source.uri = "hf://drover-local/tiny-llama@v2"
    assert fetch_job_name(changed) != fetch_job_name(base_model)


def test_cache_pvc_is_a_valid_claim_and_absent_for_an_existing_claim(base_model) -> None:
    pvc = stamp(build_cache_pvc(base_model), load("00-base-model.yaml"))
    kubernetes_validate.validate(pvc, "1.30", strict=True)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
    existing = base_model.model_copy(deep=True)
    existing.spec.cache.existing_claim = "shared-models"
    assert build_cache_pvc(existing) is None


def test_stamp_labels_owns_and_hashes_children(base_model) -> None:
    parent = load("00-base-model.yaml")
    child = stamp(build_fetch_rayjob(base_model, image="x"), parent)
    meta = child["metadata"]
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "drover",
        "drover.dev/foundationmodel": "tiny-llama",
    }
    assert meta["ownerReferences"][0]["uid"] == parent["metadata"]["uid"]
    assert meta["ownerReferences"][0]["controller"] is True
    assert meta["annotations"][SPEC_HASH] == spec_hash(child)
    again = stamp(build_fetch_rayjob(base_model, image="x"), parent)
    assert again["metadata"]["annotations"][SPEC_HASH] == meta["annotations"][SPEC_HASH]
    other = stamp(build_fetch_rayjob(base_model, image="y"), parent)
    assert other["metadata"]["annotations"][SPEC_HASH] != meta["annotations"][SPEC_HASH]


def test_gpu_class_places_workers_on_its_pool(config, finetune, base_model) -> None:
    from drover.api.common import AcceleratorRequest

    placement = resolve_placement(
        AcceleratorRequest.model_validate({"class": "nvidia-l4", "count": 2}),
        config.accelerator_classes,
        field="spec.resources.accelerator",
    )
    job = build_finetune_rayjob(finetune, base_model, READY_BASE, placement=placement, image="x")
    worker = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    pod = worker["template"]["spec"]
    assert worker["groupName"] == "nvidia-l4"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert _errors(kuberay_validator("rayjobs"), job) == []


def _gpu_finetune(config, finetune, base_model, workers: int) -> dict[str, Any]:
    from drover.api.common import AcceleratorRequest

    placement = resolve_placement(
        AcceleratorRequest.model_validate({"class": "nvidia-l4", "count": 2}),
        config.accelerator_classes,
        field="spec.resources.accelerator",
    )
    job = copy.deepcopy(finetune)
    job.spec.resources.workers = workers
    return build_finetune_rayjob(job, base_model, READY_BASE, placement=placement, image="x")


def test_a_one_worker_finetune_trains_in_a_driver_holding_the_pods_gpus(
    config, finetune, base_model
) -> None:
    # KubeRay v1.7.0 common/job.go BuildJobSubmitCommand passes entrypointNumCpus/Gpus to
    # `ray job submit`; without them the driver runs on the head (num-cpus 0, no GPU).
    job = _gpu_finetune(config, finetune, base_model, workers=1)
    spec = job["spec"]
    assert spec["entrypointNumGpus"] == 2
    assert spec["entrypointNumCpus"] == 2.0  # the worker pod's CPUs: its OMP threads follow
    assert worker_config_of(job)["gpusPerWorker"] == 2
    assert spec["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert _errors(kuberay_validator("rayjobs"), job) == []


def test_a_ray_train_finetune_gives_the_gpus_to_its_workers_not_the_driver(
    config, finetune, base_model
) -> None:
    from drover.api.common import AccessMode
    from drover_workers.finetune.config import FinetuneConfig
    from drover_workers.finetune.distributed import scaling_kwargs

    shared = base_model.model_copy(deep=True)  # several workers need a multi-node claim
    shared.spec.cache.access_mode = AccessMode.READ_WRITE_MANY
    job = _gpu_finetune(config, finetune, shared, workers=3)
    spec = job["spec"]
    assert "entrypointNumGpus" not in spec and spec["entrypointNumCpus"] == 1.0
    worker = FinetuneConfig.model_validate(worker_config_of(job))
    assert scaling_kwargs(worker) == {
        "num_workers": 3,
        "use_gpu": True,
        "resources_per_worker": {"GPU": 2},
    }


def test_every_rayjob_keeps_its_driver_off_the_head(base_model, index) -> None:
    fetch = build_fetch_rayjob(base_model, image="x")
    build = build_index_rayjob(index, READY_EMBEDDER, 1, image="x")
    assert fetch["spec"]["entrypointNumCpus"] == 1.0
    assert build["spec"]["entrypointNumCpus"] == 2.0
    assert "entrypointNumGpus" not in fetch["spec"] and "entrypointNumGpus" not in build["spec"]


def test_unknown_accelerator_class_names_the_field_and_the_known_classes(config) -> None:
    from drover.api.common import AcceleratorRequest

    with pytest.raises(SpecError) as err:
        resolve_placement(
            AcceleratorRequest.model_validate({"class": "tpu-v5"}),
            config.accelerator_classes,
            field="spec.accelerator",
        )
    assert err.value.reason == "UnknownAcceleratorClass"
    assert err.value.field == "spec.accelerator.class"
    assert "cpu, nvidia-l4" in err.value.message


def test_model_too_large_for_the_class_is_refused(config) -> None:
    from drover.api.common import AcceleratorRequest

    with pytest.raises(SpecError) as err:
        resolve_placement(
            AcceleratorRequest.model_validate({"class": "nvidia-l4", "count": 1}),
            config.accelerator_classes,
            field="spec.accelerator",
            parameter_count=70_000_000_000,
        )
    assert err.value.reason == "ModelTooLarge"


def test_finetune_rayjob_matches_golden_and_its_worker_config(finetune, base_model, config) -> None:
    placement = resolve_placement(None, config.accelerator_classes, field="f")
    job = stamp(
        build_finetune_rayjob(finetune, base_model, READY_BASE, placement=placement, image="x"),
        load("02-finetune.yaml"),
    )
    assert_golden("finetune-rayjob", job)
    assert _errors(kuberay_validator("rayjobs"), job) == []
    worker = worker_config_of(job)
    assert worker["baseModelPath"] == "/models/tiny-llama-cache/tiny-llama/abababababab"
    assert worker["outputDir"].startswith("/models/tiny-llama-cache/finetuned/support-lora-")
    from drover_workers.finetune.config import FinetuneConfig

    FinetuneConfig.model_validate(worker)


def test_checkpoint_steps_reach_the_worker_and_default_to_its_own(
    finetune, base_model, config
) -> None:
    from drover_workers.finetune.config import FinetuneConfig

    placement = resolve_placement(None, config.accelerator_classes, field="f")

    def worker_of(job: Any) -> dict[str, Any]:
        built = build_finetune_rayjob(job, base_model, READY_BASE, placement=placement, image="x")
        return worker_config_of(built)

    default = worker_of(finetune)
    assert "checkpointSteps" not in default["hyperparameters"]
    assert FinetuneConfig.model_validate(default).hyperparameters.checkpoint_steps == 50
    often = finetune.model_copy(deep=True)
    often.spec.hyperparameters.checkpoint_steps = 5
    worker = worker_of(often)
    assert worker["hyperparameters"]["checkpointSteps"] == 5
    assert FinetuneConfig.model_validate(worker).hyperparameters.checkpoint_steps == 5


def test_output_model_records_lineage_and_shares_the_base_claim(finetune, base_model) -> None:
    out = build_output_model(finetune, base_model, READY_BASE, {"datasetDigest": "sha256:11"})
    assert out["metadata"]["name"] == "tiny-llama-support"
    assert out["spec"]["source"]["uri"].startswith("pvc://tiny-llama-cache/finetuned/support-lora-")
    assert out["spec"]["cache"] == {"existingClaim": "tiny-llama-cache"}
    lineage = out["spec"]["lineage"]
    assert (lineage["baseModel"], lineage["fineTuneJob"], lineage["datasetDigest"]) == (
        "tiny-llama",
        "support-lora",
        "sha256:11",
    )
    assert "ownerReferences" not in out["metadata"]  # the model outlives the job
    from drover.api.foundationmodel import FoundationModel

    FoundationModel.model_validate(out)


def test_index_rayjob_and_build_key(index) -> None:
    job = stamp(build_index_rayjob(index, READY_EMBEDDER, 1, image="x"), load("03-index.yaml"))
    assert_golden("index-rayjob", job)
    assert _errors(kuberay_validator("rayjobs"), job) == []
    worker = worker_config_of(job)
    assert worker["embedderPath"] == "/models/minilm-cache/minilm/cdcdcdcdcdcd"
    assert worker["version"] == 1
    from drover_workers.index.config import IndexConfig

    IndexConfig.model_validate(worker)
    assert build_key(index, "sha256:1") != build_key(index, "sha256:2")
    rechunked = index.model_copy(deep=True)
    rechunked.spec.chunking.size = 256
    assert build_key(rechunked, "sha256:1") != build_key(index, "sha256:1")
