"""finetune worker configuration (pydantic): base model, data, method, hyper-parameters,
evaluation and output."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from drover_workers.common.config import WorkerModel
from drover_workers.common.credentials import Credentials
from drover_workers.finetune.tracking import Tracking

Metric = Literal["loss", "perplexity", "bleu", "rougeL"]


class DatasetRef(WorkerModel):
    path: str | None = Field(None, description="a local file (jsonl, or .txt for text)")
    uri: str | None = Field(
        None, description="file://, pvc://, hf://datasets/org/name@rev/file, s3://"
    )
    format: Literal["chat", "prompt-completion", "text", "feedback"] = "chat"
    token_file: str | None = Field(None, description="a mounted Secret key holding a token")

    @model_validator(mode="after")
    def _one_location(self) -> DatasetRef:
        if (self.path is None) == (self.uri is None):
            raise ValueError("set exactly one of path or uri")
        return self


class LoraSpec(WorkerModel):
    rank: int = Field(8, ge=1, le=1024)
    alpha: float = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | None = Field(
        None, description="module names to adapt; default: peft's choice for the architecture"
    )


class Hyperparameters(WorkerModel):
    epochs: int = Field(1, ge=1, le=1000)
    learning_rate: float = Field(2e-4, gt=0, lt=1)
    batch_size: int = Field(8, ge=1, le=4096)
    max_seq_length: int = Field(512, ge=8, le=131072)
    seed: int = 42
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024)
    warmup_steps: int = Field(0, ge=0)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps")
    weight_decay: float = Field(0.0, ge=0)
    checkpoint_steps: int = Field(50, ge=1, description="checkpoint every N optimizer steps")


class Thresholds(WorkerModel):
    max_loss: float | None = None
    max_perplexity: float | None = None
    min_rouge_l: float | None = Field(None, alias="minRougeL")
    min_bleu: float | None = None


class Evaluation(WorkerModel):
    dataset: DatasetRef | None = Field(None, description="default: none (no evaluation)")
    metrics: list[Metric] = ["loss", "perplexity", "bleu", "rougeL"]
    thresholds: Thresholds = Thresholds()
    max_new_tokens: int = Field(64, ge=1, le=4096)
    max_samples: int = Field(64, ge=1, description="held-out examples evaluated at most")


class FinetuneConfig(WorkerModel):
    base_model_path: str = Field(description="the base model's cache path (HF format)")
    adapter: str | None = Field(None, description="a LoRA adapter to merge into the base first")
    dataset: DatasetRef
    method: Literal["lora", "full", "continued-pretraining"] = "lora"
    lora: LoraSpec = LoraSpec()
    hyperparameters: Hyperparameters = Hyperparameters()
    evaluation: Evaluation | None = None
    output_dir: str = Field(description="checkpoints/, model/, progress.json, result.json")
    merge: bool = Field(False, description="lora: save merged weights instead of the adapter")
    workers: int = Field(1, ge=1, le=512)
    gpus_per_worker: int = Field(
        0, ge=0, le=64, description="GPUs each training process trains on; 0: the CPU"
    )
    distributed: Literal["auto", "ray", "none"] = Field(
        "auto", description="auto: Ray Train's TorchTrainer when workers > 1"
    )
    credentials: Credentials | None = None
    hf_endpoint: str | None = None
    pvc_root: str | None = None
    tracking: Tracking | None = Field(None, description="an MLflow run of this fine-tune")

    @model_validator(mode="after")
    def _text_for_pretraining(self) -> FinetuneConfig:
        if self.method == "continued-pretraining" and self.dataset.format != "text":
            raise ValueError("method continued-pretraining needs dataset.format: text")
        return self
