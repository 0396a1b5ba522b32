"""Several workers through Ray Train's TorchTrainer: each worker runs the same training loop on
its shard (DDP through `prepare_model`); rank 0 writes checkpoints and the output model into the
shared output directory. Workers write progress.json; the driver re-emits it as
`::drover::progress` lines (worker stdout reaches the job log with a prefix, so lines from
there would not parse)."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path
from typing import Any

from drover_workers.common.report import Reporter
from drover_workers.finetune.config import FinetuneConfig
from drover_workers.finetune.train import TrainStats


def _train_per_worker(loop_config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch

    from drover_workers.finetune.data import build_examples, read_rows
    from drover_workers.finetune.model import load_tokenizer, load_trainable, save_output
    from drover_workers.finetune.train import train_loop

    config = FinetuneConfig.model_validate(loop_config["config"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    tokenizer = load_tokenizer(config.base_model_path)
    rows = read_rows(Path(loop_config["trainPath"]), config.dataset.format)
    examples = build_examples(
        tokenizer, rows, config.dataset.format, config.hyperparameters.max_seq_length
    )
    # Ray Train hands each worker its own device (ray.train.torch.get_device: cuda:<its GPU>).
    device = ray.train.torch.get_device() if config.gpus_per_worker else "cpu"
    unwrapped = load_trainable(config, str(device))
    model = (
        ray.train.torch.prepare_model(unwrapped, move_to_device=False) if world > 1 else unwrapped
    )
    reporter = Reporter(config.output_dir if rank == 0 else None)
    reporter.emit = False
    stats = train_loop(
        model,
        unwrapped,
        examples,
        config.hyperparameters,
        Path(config.output_dir) / "checkpoints",
        reporter,
        tokenizer.pad_token_id,
        rank,
        world,
    )
    if rank == 0:
        save_output(config, unwrapped, tokenizer)
        # A file on the shared output volume, not ray.train.report: its metrics API differs
        # between Ray Train versions, the file does not.
        stats_path(config).write_text(json.dumps(dataclasses.asdict(stats)))


class _ProgressRelay:
    """Re-emits the workers' progress.json as ::drover::progress lines while training runs."""

    def __init__(self, reporter: Reporter, path: Path) -> None:
        self.reporter, self.path = reporter, path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._last = ""

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.relay()

    def relay(self) -> None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return
        if text != self._last:
            self._last = text
            self.reporter.progress(force=True, **json.loads(text))

    def __enter__(self) -> _ProgressRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.relay()  # the last state, written after the final poll


def run_ray_train(config: FinetuneConfig, train_path: Path, reporter: Reporter) -> TrainStats:
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address, log_to_driver=False) if address else ray.init(log_to_driver=False)
    trainer = TorchTrainer(
        _train_per_worker,
        train_loop_config={
            "config": config.model_dump(by_alias=True, mode="json"),
            "trainPath": str(train_path),
        },
        scaling_config=ScalingConfig(**scaling_kwargs(config)),
        run_config=RunConfig(
            name="drover-finetune", storage_path=str(Path(config.output_dir).resolve() / "ray")
        ),
    )
    stats_path(config).unlink(missing_ok=True)
    with _ProgressRelay(reporter, Path(config.output_dir) / "progress.json"):
        trainer.fit()
    return TrainStats(**json.loads(stats_path(config).read_text()))


def _evaluate_task(config_json: dict[str, Any], examples: list[Any]) -> dict[str, Any]:
    from drover_workers.common.device import torch_device
    from drover_workers.finetune.evaluate import evaluate
    from drover_workers.finetune.model import load_tokenizer, load_trained

    config = FinetuneConfig.model_validate(config_json)
    assert config.evaluation is not None
    model = load_trained(config, torch_device(config.gpus_per_worker))
    tokenizer = load_tokenizer(config.base_model_path)
    batch_size = config.hyperparameters.batch_size
    return evaluate(model, tokenizer, examples, config.evaluation, batch_size)


def evaluate_on_ray(config: FinetuneConfig, examples: list[Any]) -> dict[str, Any]:
    """Evaluate the saved output in a Ray task holding one worker's GPUs (the driver of a Ray
    Train job reserves none), on the CPU when the class has none."""
    import ray

    task = ray.remote(num_cpus=1, num_gpus=config.gpus_per_worker)(_evaluate_task)
    config_json = config.model_dump(by_alias=True, mode="json")
    result: dict[str, Any] = ray.get(task.remote(config_json, examples))
    return result


def scaling_kwargs(config: FinetuneConfig) -> dict[str, Any]:
    """Ray Train's ScalingConfig: one training process per worker pod, with the pod's GPUs."""
    kwargs: dict[str, Any] = {"num_workers": config.workers, "use_gpu": config.gpus_per_worker > 0}
    if config.gpus_per_worker:
        kwargs["resources_per_worker"] = {"GPU": config.gpus_per_worker}
    return kwargs


def stats_path(config: FinetuneConfig) -> Path:
    return Path(config.output_dir) / "train-stats.json"
