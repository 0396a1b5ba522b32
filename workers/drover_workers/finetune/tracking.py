"""finetune worker: an MLflow run per fine-tune, when the operator names a tracking server.

Parameters (method, hyper-parameters, LoRA shape, data), the loss at every step the trainer
reports, the evaluation and the lineage tags the operator passes (base model and digest, the
FineTuneJob) plus what only the worker knows (the dataset's and the output's digests). Through
mlflow's own client (mlflow-skinny in the workers image). A tracking server that fails never
fails the fine-tune: the run is best-effort bookkeeping, the job's result is the record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic import Field

from drover_workers.common.config import WorkerModel
from drover_workers.common.report import Reporter

log = logging.getLogger(__name__)


class Tracking(WorkerModel):
    uri: str = Field(description="the MLflow tracking server, e.g. http://mlflow.mlflow:5000")
    experiment: str = Field("drover", description="experiment of the runs (created if absent)")
    run_name: str = Field(description="the run's name: <namespace>/<FineTuneJob>")
    tags: dict[str, str] = Field(default_factory=dict, description="lineage tags to set")


def flatten(prefix: str, value: Any) -> dict[str, str]:
    """Nested config as MLflow params: `hyperparameters.learningRate` -> "0.0002"."""
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    if value is None:
        return {}
    return {prefix: str(value)[:6000]}  # MLflow's limit on a param value


class TrackedRun:
    """One MLflow run; every call swallows the server's errors after logging them once."""

    def __init__(self, spec: Tracking) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=spec.uri)
        experiment = self.client.get_experiment_by_name(spec.experiment)
        exp_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(spec.experiment)
        )
        run = self.client.create_run(exp_id, run_name=spec.run_name, tags=spec.tags)
        self.run_id: str = run.info.run_id
        self.experiment_id: str = exp_id
        self._failed = False

    def _safely(self, what: str, call: Any) -> None:
        try:
            call()
        except Exception as exc:  # the server's trouble is not the fine-tune's
            if not self._failed:
                log.warning("MLflow %s failed (later failures not logged): %s", what, exc)
            self._failed = True

    def params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        batch = [Param(k, v) for k, v in sorted(params.items())]
        for start in range(0, len(batch), 100):  # the server takes 100 params a batch
            chunk = batch[start : start + 100]
            self._safely("log params", lambda c=chunk: self.client.log_batch(self.run_id, params=c))

    def metrics(self, values: Mapping[str, float], step: int = 0) -> None:
        for key, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self._safely(
                    "log metric",
                    lambda k=key, v=value: self.client.log_metric(
                        self.run_id, k, float(v), step=step
                    ),
                )

    def tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._safely("set tag", lambda k=key, v=value: self.client.set_tag(self.run_id, k, v))

    def end(self, status: str) -> None:
        self._safely("end run", lambda: self.client.set_terminated(self.run_id, status=status))


class TrackingReporter(Reporter):
    """The job's reporter, also logging each step's loss (and learning rate) to the run."""

    def __init__(self, inner: Reporter, run: TrackedRun) -> None:
        super().__init__(inner.output_dir, inner.min_interval)
        self.emit = inner.emit
        self.run = run

    def progress(self, force: bool = False, **fields: Any) -> None:
        step = fields.get("step")
        if isinstance(step, int) and "loss" in fields:
            values = {k: fields[k] for k in ("loss", "learningRate") if k in fields}
            self.run.metrics(values, step=step)
        super().progress(force=force, **fields)


@contextmanager
def tracked(
    spec: Tracking | None, reporter: Reporter
) -> Iterator[tuple[TrackedRun | None, Reporter]]:
    """The run (None without tracking or when the server cannot start one) and the reporter to
    use; the run ends FINISHED, or FAILED when the body raises."""
    if spec is None:
        yield None, reporter
        return
    try:
        run = TrackedRun(spec)
    except Exception as exc:  # no server, no experiment: train anyway, say so
        log.warning("MLflow tracking at %s unavailable, training untracked: %s", spec.uri, exc)
        yield None, reporter
        return
    try:
        yield run, TrackingReporter(reporter, run)
    except BaseException:
        run.end("FAILED")
        raise
    run.end("FINISHED")
