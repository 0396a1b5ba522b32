"""API layer: FineTuneJob, a fine-tune of a FoundationModel on a dataset.

It runs as a RayJob (Ray Train, torch, transformers, peft); when its evaluation passes it
produces a new FoundationModel carrying its lineage.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from drover.api.base import ApiModel, LocalObjectReference, Rule
from drover.api.common import (
    AcceleratorRequest,
    DatasetSource,
    DnsLabel,
    Lineage,
    ResourceBase,
    StatusBase,
    VersionLabel,
    sub,
)


class FineTuneMethod(StrEnum):
    """How the weights are trained."""

    LORA = "lora"
    FULL = "full"
    CONTINUED_PRETRAINING = "continued-pretraining"


class LoraConfig(ApiModel):
    """Low-rank adapter settings (method lora)."""

    rank: int = Field(default=16, ge=1, le=512, description="Rank r of the adapter matrices.")
    alpha: int = Field(default=32, ge=1, le=1024, description="Scaling alpha (often 2 x rank).")
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="Dropout on adapter inputs.")
    target_modules: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Module names to adapt (e.g. q_proj, v_proj); empty means the model "
        "family's usual attention projections.",
    )


class Hyperparameters(ApiModel):
    """Training hyper-parameters; the defaults suit a small LoRA run."""

    epochs: int = Field(default=1, ge=1, le=100, description="Passes over the dataset.")
    max_steps: int | None = Field(
        default=None, ge=1, description="Stop after this many optimizer steps (overrides epochs)."
    )
    learning_rate: float = Field(
        default=2.0e-4, gt=0.0, le=1.0, description="Peak learning rate of the optimizer."
    )
    batch_size: int = Field(default=8, ge=1, le=1024, description="Examples per step per worker.")
    gradient_accumulation_steps: int = Field(
        default=1, ge=1, le=1024, description="Micro-batches accumulated before each step."
    )
    max_seq_length: int = Field(
        default=1024, ge=16, le=131072, description="Examples are truncated to this many tokens."
    )
    warmup_ratio: float = Field(
        default=0.03, ge=0.0, le=0.5, description="Fraction of steps spent warming up the rate."
    )
    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0, description="AdamW weight decay.")
    seed: int = Field(default=42, ge=0, description="Random seed, for reproducible runs.")
    checkpoint_steps: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Save a checkpoint every N optimizer steps (default 50, and at the end); "
        "when the training RayJob is retried (a worker or node lost) it resumes from the latest.",
    )


class TrainingResources(ApiModel):
    """Ray Train workers and what each one gets."""

    workers: int = Field(default=1, ge=1, le=64, description="Number of Ray Train workers.")
    accelerator: AcceleratorRequest | None = Field(
        default=None, description="Accelerators per worker; CPU-only workers when unset."
    )


class EvalMetric(StrEnum):
    """Metrics computed on the evaluation set."""

    LOSS = "loss"
    PERPLEXITY = "perplexity"
    BLEU = "bleu"
    ROUGE_L = "rougeL"


class Thresholds(ApiModel):
    """Pass thresholds; the job fails with EvaluationBelowThreshold when one is missed."""

    max_loss: float | None = Field(default=None, gt=0.0, description="Highest acceptable loss.")
    max_perplexity: float | None = Field(
        default=None, ge=1.0, description="Highest acceptable perplexity (perplexity is >= 1)."
    )
    min_rouge_l: float | None = Field(
        default=None, alias="minRougeL", ge=0.0, le=1.0, description="Lowest ROUGE-L F1 (0-1)."
    )
    min_bleu: float | None = Field(
        default=None, ge=0.0, le=100.0, description="Lowest corpus BLEU (0-100, sacrebleu scale)."
    )


def _needs(field: str, metric: str) -> Rule:
    return Rule(
        cel=f"!has(self.thresholds.{field}) || '{metric}' in self.metrics",
        message=f"thresholds.{field} needs metric {metric}: add {metric} to evaluation.metrics "
        f"or remove the threshold",
        check=lambda e: getattr(e.thresholds, _SNAKE[field]) is None or metric in e.metrics,
        field_path=f".thresholds.{field}",
    )


_SNAKE = {
    "maxLoss": "max_loss",
    "maxPerplexity": "max_perplexity",
    "minRougeL": "min_rouge_l",
    "minBleu": "min_bleu",
}


class Evaluation(ApiModel):
    """Held-out evaluation after training, with pass thresholds."""

    __rules__ = (
        _needs("maxLoss", "loss"),
        _needs("maxPerplexity", "perplexity"),
        _needs("minRougeL", "rougeL"),
        _needs("minBleu", "bleu"),
    )

    dataset: DatasetSource = Field(description="Held-out evaluation dataset.")
    metrics: list[EvalMetric] = Field(
        default_factory=lambda: [EvalMetric.LOSS, EvalMetric.PERPLEXITY],
        min_length=1,
        max_length=4,
        description="Metrics to compute: loss, perplexity, bleu, rougeL.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    max_samples: int = Field(
        default=200, ge=1, le=100000, description="Evaluate on at most this many examples."
    )
    thresholds: Thresholds = sub(Thresholds, "Pass thresholds; none means always pass.")


class OutputSpec(ApiModel):
    """The FoundationModel the job produces."""

    model_name: DnsLabel | None = Field(
        default=None,
        description="Name of the FoundationModel to create; the job's name when unset.",
    )
    version: VersionLabel | None = Field(
        default=None,
        description="Version label of the produced model (e.g. v2).",
    )
    merge: bool = Field(
        default=False,
        description="For lora: merge the adapter into the base weights (true) or keep it as a "
        "separate adapter (false).",
    )


class FineTuneJobSpec(ApiModel):
    """The desired state of a FineTuneJob."""

    __rules__ = (
        Rule(
            cel="!has(self.lora) || self.method == 'lora'",
            message="lora applies only to method lora: remove spec.lora or set method: lora",
            check=lambda s: s.lora is None or s.method == FineTuneMethod.LORA,
            field_path=".lora",
        ),
        Rule(
            cel="!self.output.merge || self.method == 'lora'",
            message="output.merge applies only to method lora (other methods already produce "
            "whole weights): remove output.merge",
            check=lambda s: not s.output.merge or s.method == FineTuneMethod.LORA,
            field_path=".output.merge",
        ),
        Rule(
            cel="self.method != 'continued-pretraining' || self.dataset.format == 'text'",
            message="method continued-pretraining trains on raw text: set dataset.format: text",
            check=lambda s: (
                s.method != FineTuneMethod.CONTINUED_PRETRAINING or s.dataset.format == "text"
            ),
            field_path=".dataset.format",
        ),
    )

    base_model: LocalObjectReference = Field(
        description="The FoundationModel to start from (same namespace)."
    )
    dataset: DatasetSource = Field(description="Training dataset.")
    method: FineTuneMethod = Field(
        default=FineTuneMethod.LORA,
        description="lora trains a small adapter; full trains all weights; continued-pretraining "
        "trains all weights on raw text.",
    )
    lora: LoraConfig | None = Field(
        default=None, description="Adapter settings for method lora; defaults apply when unset."
    )
    hyperparameters: Hyperparameters = sub(Hyperparameters, "Training hyper-parameters.")
    resources: TrainingResources = sub(TrainingResources, "Workers and their accelerators.")
    evaluation: Evaluation | None = Field(
        default=None, description="Evaluation after training; the job passes without one."
    )
    output: OutputSpec = sub(OutputSpec, "The FoundationModel the job produces.")


class FineTuneJobPhase(StrEnum):
    """Where a FineTuneJob is in its life."""

    PENDING = "Pending"
    WAITING_FOR_BASE_MODEL = "WaitingForBaseModel"
    RUNNING = "Running"
    EVALUATING = "Evaluating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class Progress(ApiModel):
    """Training progress as last reported by the workers."""

    step: int = Field(default=0, ge=0, description="Optimizer steps done.")
    total_steps: int | None = Field(default=None, ge=0, description="Steps the run will take.")
    percent: int = Field(default=0, ge=0, le=100, description="step / totalSteps, in percent.")
    epoch: float | None = Field(default=None, ge=0.0, description="Fractional epoch reached.")
    loss: float | None = Field(default=None, description="Last training loss.")
    tokens_per_second: float | None = Field(default=None, ge=0.0, description="Throughput.")
    updated_at: datetime | None = Field(default=None, description="When this was reported.")


class EvaluationResult(ApiModel):
    """Metrics measured on the evaluation set and the verdict."""

    loss: float | None = Field(default=None, description="Mean loss.")
    perplexity: float | None = Field(default=None, description="exp(loss).")
    rouge_l: float | None = Field(default=None, alias="rougeL", description="ROUGE-L F1 (0-1).")
    bleu: float | None = Field(default=None, description="Corpus BLEU (0-100).")
    samples: int | None = Field(default=None, ge=0, description="Examples evaluated.")
    passed: bool | None = Field(default=None, description="Whether every threshold was met.")
    failed_thresholds: list[str] = Field(
        default_factory=list,
        description="Thresholds missed, e.g. 'minRougeL: 0.21 < 0.35'.",
    )


class TrackingStatus(ApiModel):
    """Where the fine-tune is recorded in MLflow (when the operator configuration names a
    tracking server)."""

    run_id: str | None = Field(default=None, description="The MLflow run of this fine-tune.")
    experiment_id: str | None = Field(default=None, description="The run's MLflow experiment.")
    registered_model: str | None = Field(
        default=None, description="The registered model (<namespace>.<base model>) of the output."
    )
    model_version: str | None = Field(
        default=None, description="The output's version of that registered model."
    )


class FineTuneJobStatus(StatusBase):
    """The observed state of a FineTuneJob."""

    ready_sub_conditions: ClassVar[tuple[str, ...]] = ("BaseModelReady", "Trained", "Evaluated")

    phase: FineTuneJobPhase | None = Field(default=None, description="Summary phase.")
    progress: Progress | None = Field(default=None, description="Training progress.")
    evaluation: EvaluationResult | None = Field(default=None, description="Evaluation results.")
    output_model: LocalObjectReference | None = Field(
        default=None, description="The FoundationModel this job produced."
    )
    output_digest: str | None = Field(default=None, description="Digest of the produced weights.")
    lineage: Lineage | None = Field(default=None, description="Base model and data used.")
    ray_job_name: str | None = Field(default=None, description="The RayJob running the training.")
    start_time: datetime | None = Field(default=None, description="When training started.")
    completion_time: datetime | None = Field(default=None, description="When the job finished.")
    tracking: TrackingStatus | None = Field(
        default=None, description="The MLflow run and registered model version, when tracked."
    )


class FineTuneJob(ResourceBase):
    """A fine-tune of a FoundationModel that produces a new FoundationModel version."""

    KIND: ClassVar[str] = "FineTuneJob"

    kind: str = Field(default="FineTuneJob", description="FineTuneJob.")
    spec: FineTuneJobSpec = Field(description="Desired state.")
    status: FineTuneJobStatus | None = Field(default=None, description="Observed state.")
