"""Builders layer: a FineTuneJob's RayJob and the FoundationModel it produces.

The job trains from the base model's cache and writes its output next to it on the same claim,
so the produced model (source `pvc://<claim>/finetuned/...`) shares storage with its base and a
canary of it needs no new volume on the serving cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drover.api.finetunejob import FineTuneJob
from drover.api.foundationmodel import FoundationModel
from drover.api.uris import parse_source_uri
from drover.builders.meta import MANAGED_BY, Manifest, kind_label, model_mount_path
from drover.builders.names import kuberay_name
from drover.builders.raycluster import (
    ContainerImage,
    Mount,
    Placement,
    build_ray_cluster_spec,
    secret_path,
)
from drover.builders.rayjob import build_rayjob
from drover.config import TrackingConfig

FINETUNE_MODULE = "drover_workers.finetune"
DRIVER_CPUS = 1.0  # a Ray Train driver only coordinates; it must still avoid the head


def training_job_name(job: FineTuneJob) -> str:
    return kuberay_name(job.name, "train")


def output_model_name(job: FineTuneJob) -> str:
    return job.spec.output.model_name or job.name


def output_relpath(job: FineTuneJob) -> str:
    uid = str(job.metadata.get("uid", ""))[:8] or "0"
    return f"finetuned/{job.name}-{uid}"


def _dataset(source: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"uri": source.uri, "format": source.format.value}
    if source.credentials_secret_ref is not None:
        ref = source.credentials_secret_ref
        out["tokenFile"] = secret_path(ref.name, ref.key)
    return out


def dataset_claims(job: FineTuneJob) -> list[str]:
    """The claims of the job's pvc:// datasets (training and evaluation), e.g. the feedback an
    InferenceService stores: mounted read-only where the job trains."""
    sources = [job.spec.dataset, job.spec.evaluation.dataset if job.spec.evaluation else None]
    uris = [s.uri for s in sources if s is not None and s.uri.startswith("pvc://")]
    return sorted({parse_source_uri(uri).authority for uri in uris})


def tracking_tags(
    job: FineTuneJob, base: FoundationModel, base_status: Mapping[str, Any]
) -> dict[str, str]:
    """The lineage the operator knows, as MLflow tags of the run and of the model version."""
    tags = {
        "drover.dev/finetunejob": f"{job.namespace or 'default'}/{job.name}",
        "drover.dev/base-model": base.name,
        "drover.dev/dataset": job.spec.dataset.uri,
        "drover.dev/method": job.spec.method.value,
    }
    if base_status.get("digest"):
        tags["drover.dev/base-digest"] = str(base_status["digest"])
    return tags


def _worker_tracking(
    job: FineTuneJob,
    base: FoundationModel,
    base_status: Mapping[str, Any],
    tracking: TrackingConfig,
) -> dict[str, Any]:
    return {
        "uri": tracking.mlflow_uri,
        "experiment": tracking.experiment,
        "runName": f"{job.namespace or 'default'}/{job.name}",
        "tags": tracking_tags(job, base, base_status),
    }


def build_finetune_config(
    job: FineTuneJob,
    base: FoundationModel,
    base_status: Mapping[str, Any],
    placement: Placement | None = None,
    tracking: TrackingConfig | None = None,
) -> dict[str, Any]:
    """The finetune worker's configuration (drover_workers.finetune.config)."""
    cache = base_status.get("cache") or {}
    claim = str(cache.get("claimName", ""))
    root = model_mount_path(claim)
    spec = job.spec
    hp = spec.hyperparameters
    config: dict[str, Any] = {
        "baseModelPath": f"{root}/{cache.get('path', '')}",
        "dataset": _dataset(spec.dataset),
        "method": spec.method.value,
        "hyperparameters": {
            "epochs": hp.epochs,
            "learningRate": hp.learning_rate,
            "batchSize": hp.batch_size,
            "maxSeqLength": hp.max_seq_length,
            "seed": hp.seed,
            "gradientAccumulationSteps": hp.gradient_accumulation_steps,
            **({"maxSteps": hp.max_steps} if hp.max_steps else {}),
            **({"checkpointSteps": hp.checkpoint_steps} if hp.checkpoint_steps else {}),
        },
        "outputDir": f"{root}/{output_relpath(job)}",
        "merge": spec.output.merge,
        "workers": spec.resources.workers,
        # Devices each training process gets (the class's count per pod): the worker trains on
        # them and refuses to fall back to the CPU when they are missing.
        "gpusPerWorker": placement.count if placement is not None else 0,
        "pvcRoot": "/models",
    }
    if spec.lora is not None or spec.method.value == "lora":
        lora = spec.lora
        config["lora"] = (
            {
                "rank": lora.rank,
                "alpha": lora.alpha,
                "dropout": lora.dropout,
                **({"targetModules": lora.target_modules} if lora.target_modules else {}),
            }
            if lora is not None
            else {}
        )
    if tracking is not None and tracking.mlflow_uri:
        config["tracking"] = _worker_tracking(job, base, base_status, tracking)
    if spec.evaluation is not None:
        ev = spec.evaluation
        config["evaluation"] = {
            "dataset": _dataset(ev.dataset),
            "metrics": [m.value for m in ev.metrics],
            "maxSamples": ev.max_samples,
            "thresholds": ev.thresholds.to_wire(),
        }
    return config


def build_finetune_rayjob(
    job: FineTuneJob,
    base: FoundationModel,
    base_status: Mapping[str, Any],
    *,
    placement: Placement,
    image: ContainerImage | str,
    env: Mapping[str, str] = {},
    tracking: TrackingConfig | None = None,
) -> Manifest:
    claim = str((base_status.get("cache") or {}).get("claimName", ""))
    secrets = [
        s.credentials_secret_ref.name
        for s in (job.spec.dataset, job.spec.evaluation.dataset if job.spec.evaluation else None)
        if s is not None and s.credentials_secret_ref is not None
    ]
    cluster = build_ray_cluster_spec(
        image=image,
        placement=placement,
        # The driver (one worker) or Ray Train's workers train there; nothing on the head.
        mounts=[
            Mount(
                claim,
                read_only=False,
                on_head=False,
                access_mode=None if base.spec.cache.existing_claim else base.spec.cache.access_mode,
                access_mode_field=f"FoundationModel {base.name}: spec.cache.accessMode",
            ),
            *(Mount(c, on_head=False) for c in dataset_claims(job) if c != claim),
        ],
        secrets=secrets,
        workers=job.spec.resources.workers,
        env=env,
    )
    # One worker: the driver trains, on that worker's devices. Several: Ray Train's workers train
    # (one per pod, each with the pod's devices; see the worker's scaling config) and the
    # driver only coordinates.
    single = job.spec.resources.workers == 1
    return build_rayjob(
        name=training_job_name(job),
        module=FINETUNE_MODULE,
        worker_config=build_finetune_config(job, base, base_status, placement, tracking),
        cluster_spec=cluster,
        backoff_limit=1,
        entrypoint_num_cpus=placement.cpus if single else DRIVER_CPUS,
        entrypoint_num_gpus=placement.count if single else 0,
    )


def build_output_model(
    job: FineTuneJob,
    base: FoundationModel,
    base_status: Mapping[str, Any],
    result: Mapping[str, Any],
) -> Manifest:
    """The FoundationModel the job produces, with its lineage; it outlives the job (no owner)."""
    claim = str((base_status.get("cache") or {}).get("claimName", ""))
    spec: dict[str, Any] = {
        # The worker saves the model under <outputDir>/model (checkpoints live beside it).
        "source": {"uri": f"pvc://{claim}/{output_relpath(job)}/model"},
        "task": base.spec.task.value,
        "cache": {"existingClaim": claim},
        "lineage": {
            "baseModel": base.name,
            "dataset": job.spec.dataset.uri,
            "fineTuneJob": job.name,
            "method": job.spec.method.value,
            **({"baseModelDigest": base_status["digest"]} if base_status.get("digest") else {}),
            **({"datasetDigest": result["datasetDigest"]} if result.get("datasetDigest") else {}),
        },
    }
    if job.spec.output.version:
        spec["version"] = job.spec.output.version
    if base.spec.accelerator is not None:
        spec["accelerator"] = base.spec.accelerator.to_wire()
    if base.spec.parameter_count:
        spec["parameterCount"] = base.spec.parameter_count
    labels = {
        MANAGED_BY: "drover",
        kind_label("FineTuneJob"): job.name,
        "drover.dev/base-model": base.name,
    }
    if job.spec.method.value == "lora" and not job.spec.output.merge:
        labels["drover.dev/adapter-of"] = base.name
    return {
        "apiVersion": "drover.dev/v1alpha1",
        "kind": "FoundationModel",
        "metadata": {"name": output_model_name(job), "namespace": job.namespace, "labels": labels},
        "spec": spec,
    }
