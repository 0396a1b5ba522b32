"""finetune worker entrypoint: read data, train (in-process or Ray Train), save the output in
Hugging Face format with a manifest, evaluate on the held-out set, report."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from drover_workers.common.credentials import Credentials, read_token
from drover_workers.common.device import torch_device
from drover_workers.common.report import Reporter
from drover_workers.common.runner import WorkerError, run_worker
from drover_workers.common.sources import materialize
from drover_workers.finetune.config import DatasetRef, FinetuneConfig
from drover_workers.finetune.data import DataError, Example, build_examples, read_rows
from drover_workers.finetune.evaluate import evaluate
from drover_workers.finetune.feedback import snapshot
from drover_workers.finetune.model import (
    is_adapter_output,
    load_tokenizer,
    load_trainable,
    save_output,
    write_output_manifest,
)
from drover_workers.finetune.tracking import TrackedRun, flatten, tracked
from drover_workers.finetune.train import TrainStats, train_loop


def _data_path(config: FinetuneConfig, ref: DatasetRef, field: str, work: Path) -> Path:
    try:
        token = read_token(config.credentials)
        if ref.token_file:
            token = read_token(Credentials(token_file=ref.token_file))
        path = materialize(
            ref.uri or ref.path or "",
            work,
            token=token,
            endpoint=config.hf_endpoint,
            pvc_root_dir=config.pvc_root,
        )
        # The router may be appending: train on (and digest) a snapshot of complete lines.
        return (
            snapshot(path, work / f"{field}.feedback.jsonl") if ref.format == "feedback" else path
        )
    except (FileNotFoundError, ValueError) as exc:
        raise WorkerError("DatasetNotFound", f"{field}: {exc}") from None


def _examples(
    tokenizer: Any, path: Path, ref: DatasetRef, max_len: int, field: str
) -> list[Example]:
    try:
        examples = build_examples(tokenizer, read_rows(path, ref.format), ref.format, max_len)
    except DataError as exc:
        raise WorkerError("InvalidDataset", f"{field}: {exc}") from None
    if not examples:
        raise WorkerError("InvalidDataset", f"{field}: no usable examples in {path}")
    return examples


def _use_ray(config: FinetuneConfig) -> bool:
    return config.distributed == "ray" or (config.distributed == "auto" and config.workers > 1)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def finetune(config: FinetuneConfig, reporter: Reporter) -> dict[str, Any]:
    """The fine-tune, as an MLflow run when the config names a tracking server."""
    with tracked(config.tracking, reporter) as (run, job_reporter):
        result = _finetune(config, job_reporter, run)
        if run is not None:
            _record_outcome(run, result)
            result["tracking"] = {"runId": run.run_id, "experimentId": run.experiment_id}
    return result


def _record_outcome(run: TrackedRun, result: dict[str, Any]) -> None:
    evaluation = result.get("evaluation") or {}
    run.metrics({f"eval.{k}": v for k, v in evaluation.items() if k != "passed"})
    run.metrics({"finalLoss": result.get("finalLoss"), "steps": result.get("steps")})
    run.tags(
        {
            "drover.dev/dataset-digest": str(result.get("datasetDigest", "")),
            "drover.dev/output-digest": str(result.get("digest", "")),
            "drover.dev/evaluation-passed": str(result.get("passed")),
        }
    )


def _finetune(config: FinetuneConfig, reporter: Reporter, run: TrackedRun | None) -> dict[str, Any]:
    if not (Path(config.base_model_path) / "config.json").is_file():
        raise WorkerError(
            "BaseModelNotFound", f"baseModelPath {config.base_model_path}: no config.json"
        )
    hp = config.hyperparameters
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    reporter.progress(force=True, phase="preparing", method=config.method)
    tokenizer = load_tokenizer(config.base_model_path)
    work = out / ".data"
    train_path = _data_path(config, config.dataset, "dataset", work)
    dataset_digest = _file_digest(train_path)
    if run is not None:
        run.params(
            flatten("", config.model_dump(by_alias=True, exclude={"tracking", "credentials"}))
        )
    train = _examples(tokenizer, train_path, config.dataset, hp.max_seq_length, "dataset")
    if _use_ray(config):
        from drover_workers.finetune.distributed import run_ray_train

        stats: TrainStats = run_ray_train(config, train_path, reporter)
        model = None  # evaluated in a Ray task on the workers' devices, not in the driver
    else:
        device = torch_device(config.gpus_per_worker)
        model = load_trainable(config, device)
        stats = train_loop(
            model, model, train, hp, out / "checkpoints", reporter, tokenizer.pad_token_id
        )
        save_output(config, model, tokenizer)
    result: dict[str, Any] = {
        "method": config.method,
        "datasetDigest": dataset_digest,
        **stats.as_result(),
    }
    result.update(_evaluate(config, tokenizer, model, work, reporter))
    reporter.progress(force=True, phase="finalizing")
    manifest = write_output_manifest(
        config,
        {
            "training": {k: result[k] for k in ("steps", "initialLoss", "finalLoss")},
            "evaluation": result.get("evaluation"),
        },
    )
    return {
        **result,
        "digest": manifest["digest"],
        "path": str(out / "model"),
        "sizeBytes": manifest["sizeBytes"],
        "adapter": is_adapter_output(config),
        "baseModelPath": config.base_model_path,
    }


def _evaluate(
    config: FinetuneConfig, tokenizer: Any, model: Any, work: Path, reporter: Reporter
) -> dict[str, Any]:
    """The held-out evaluation and the gate's verdict (passed when there is none); `model` None
    means Ray Train trained it, so it is evaluated in a Ray task on the workers' devices."""
    ev = config.evaluation
    if ev is None or ev.dataset is None:
        return {"passed": True, "failedThresholds": []}
    reporter.progress(force=True, phase="evaluating")
    field = "evaluation.dataset"
    max_len = config.hyperparameters.max_seq_length
    eval_path = _data_path(config, ev.dataset, field, work)
    held_out = _examples(tokenizer, eval_path, ev.dataset, max_len, field)
    if model is None:
        from drover_workers.finetune.distributed import evaluate_on_ray

        metrics = evaluate_on_ray(config, held_out)
    else:
        metrics = evaluate(model, tokenizer, held_out, ev, config.hyperparameters.batch_size)
    return {
        "evaluation": metrics,
        "passed": metrics["passed"],
        "failedThresholds": metrics["failedThresholds"],
    }


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return run_worker(FinetuneConfig, finetune, lambda c: c.output_dir, argv)


if __name__ == "__main__":
    sys.exit(main())
