"""API layer: InferenceService, a FoundationModel served behind an OpenAI-compatible API.

It runs as one RayService (a router Serve application plus one application per live version), scales
by load (`autoscaling`) and rolls out a changed model behind a canary (`rollout`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from drover.api.autoscaling import AutoscalingSpec, AutoscalingStatus
from drover.api.base import ApiModel, LocalObjectReference, Rule, SecretKeyReference
from drover.api.common import AcceleratorRequest, Quantity, ResourceBase, StatusBase, sub
from drover.api.drift import DriftSpec, DriftStatus, RetrainingSpec, RetrainingStatus
from drover.api.feedback import FeedbackSpec
from drover.api.rollout import RolloutSpec, RolloutStatus, ServedVersion


class Dtype(StrEnum):
    """Numeric type the weights are loaded in."""

    AUTO = "auto"
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"


class Quantization(StrEnum):
    """A quantized checkpoint format vLLM loads (its `quantization` argument)."""

    AWQ = "awq"
    GPTQ = "gptq"
    FP8 = "fp8"


class ReplicaRouting(StrEnum):
    """How a request picks one of a version's replicas."""

    PREFIX_AWARE = "prefix-aware"
    POWER_OF_TWO_CHOICES = "power-of-two-choices"


class RuntimeSpec(ApiModel):
    """How each replica runs the model: the vLLM engine arguments it is started with.

    vLLM schedules continuously: a request joins the running batch at the next engine step, so
    there is no batch size or batch wait to tune, only how many sequences one step may hold.
    """

    __rules__ = (
        Rule(
            cel="self.maxConcurrentRequests >= self.maxNumSeqs",
            message="runtime.maxConcurrentRequests must be at least runtime.maxNumSeqs, or the "
            "engine never fills a step: raise maxConcurrentRequests or lower maxNumSeqs",
            check=lambda r: r.max_concurrent_requests >= r.max_num_seqs,
            field_path=".maxConcurrentRequests",
        ),
        Rule(
            cel="!has(self.maxModelLen) || self.maxTokens < self.maxModelLen",
            message="runtime.maxTokens must be below runtime.maxModelLen, or no prompt fits "
            "beside the generated tokens: lower maxTokens or raise maxModelLen",
            check=lambda r: r.max_model_len is None or r.max_tokens < r.max_model_len,
            field_path=".maxTokens",
        ),
    )

    max_num_seqs: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Sequences the engine runs in one step (vLLM max_num_seqs); more wait in the "
        "engine's queue until a sequence finishes.",
    )
    max_concurrent_requests: int = Field(
        default=32,
        ge=1,
        le=1024,
        description="Requests a replica accepts at once (running plus queued; Ray Serve "
        "max_ongoing_requests); more wait at the router.",
    )
    max_tokens: int = Field(
        default=512, ge=1, le=131072, description="Upper bound on tokens generated per request."
    )
    dtype: Dtype = Field(
        default=Dtype.AUTO,
        description="vLLM dtype: auto (vLLM picks from the checkpoint's dtype and the device), "
        "float32, float16 or bfloat16.",
    )
    max_model_len: int | None = Field(
        default=None,
        ge=16,
        le=1048576,
        description="Context length in tokens, prompt plus output (vLLM max_model_len); the "
        "model's own context length when unset.",
    )
    gpu_memory_utilization: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Share of each GPU's memory the engine may use for weights, activations and "
        "the KV cache (vLLM gpu_memory_utilization); vLLM's 0.9 when unset. Ignored when "
        "kvCacheMemory is set.",
    )
    kv_cache_memory: Quantity | None = Field(
        default=None,
        description="KV cache size per engine, a quantity such as 256Mi or 4Gi (vLLM "
        "kv_cache_memory_bytes). When set it wins over gpuMemoryUtilization, as in vLLM; on a "
        "CPU-only accelerator class it is what sizes the KV cache.",
    )
    quantization: Quantization | None = Field(
        default=None,
        description="Quantized checkpoint format (vLLM quantization): awq, gptq or fp8; the "
        "checkpoint's own (none) when unset. The accelerator class must support it.",
    )
    enable_prefix_caching: bool = Field(
        default=True,
        description="Reuse the KV cache of a shared prompt prefix across requests (vLLM "
        "enable_prefix_caching).",
    )
    enable_chunked_prefill: bool = Field(
        default=True,
        description="Split long prompts into chunks scheduled beside decode steps (vLLM "
        "enable_chunked_prefill).",
    )
    tensor_parallel_size: int = Field(
        default=1,
        ge=1,
        le=64,
        description="GPUs one engine splits each layer across (vLLM tensor_parallel_size); all "
        "on one node. tensorParallelSize x pipelineParallelSize must equal accelerator.count.",
    )
    pipeline_parallel_size: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Stages one engine splits its layers into (vLLM pipeline_parallel_size); "
        "stages may run on different nodes.",
    )
    max_lora_rank: Literal[8, 16, 32, 64, 128, 256] = Field(
        default=16,
        description="Largest LoRA adapter rank the engine accepts (vLLM max_lora_rank); an "
        "adapter version runs on its base model's engine, so set it to at least the adapter's "
        "rank.",
    )
    max_loras: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="LoRA adapters one engine step can mix (vLLM max_loras): a LoRA canary and "
        "its stable version need 2; the engine's default (2) when unset.",
    )

    replica_routing: ReplicaRouting = Field(
        default=ReplicaRouting.PREFIX_AWARE,
        description="How a request picks one of a version's replicas. prefix-aware: the "
        "replica whose KV cache most likely holds the prompt's prefix (system prompt, retrieved "
        "context, earlier turns), or the one that answered the client's session before "
        "(x-session-id header or the OpenAI user field), unless it is busier than the least "
        "loaded replica by more than 4 requests or its KV cache is over 90% full. "
        "power-of-two-choices: Ray Serve's default, the shorter queue of two random replicas. "
        "A change restarts the version's replicas and the router (Ray Serve counts a "
        "deployment's request router as part of its application's code).",
    )

    @property
    def engine_devices(self) -> int:
        """Devices one engine spans: tensorParallelSize x pipelineParallelSize."""
        return self.tensor_parallel_size * self.pipeline_parallel_size


class ReplicaBounds(ApiModel):
    """Bounds on the number of model replicas per live version."""

    __rules__ = (
        Rule(
            cel="self.min <= self.max",
            message="replicas.min must not exceed replicas.max: lower min or raise max",
            check=lambda r: r.min <= r.max,
            field_path=".min",
        ),
    )

    min: int = Field(
        default=1, ge=0, le=1000, description="Fewest replicas; 0 needs autoscaling.scaleToZero."
    )
    max: int = Field(default=1, ge=1, le=1000, description="Most replicas autoscaling may reach.")


class RetrievalSpec(ApiModel):
    """Retrieval-augmented generation: context from a VectorIndex added to each prompt."""

    vector_index: LocalObjectReference = Field(description="The VectorIndex to search.")
    top_k: int = Field(default=4, ge=1, le=50, description="Chunks added to each prompt.")
    min_score: float | None = Field(
        default=None, ge=-1.0, le=1.0, description="Drop chunks scoring below this similarity."
    )


class AuthSpec(ApiModel):
    """Client authentication of the OpenAI-compatible API."""

    api_key_secret_ref: SecretKeyReference = Field(
        description="Secret key holding the accepted API keys, one per line; clients send one as "
        "'Authorization: Bearer <key>'."
    )


class InferenceServiceSpec(ApiModel):
    """The desired state of an InferenceService."""

    __rules__ = (
        Rule(
            cel="self.replicas.min > 0 || (has(self.autoscaling) && "
            "self.autoscaling.scaleToZero.enabled)",
            message="replicas.min 0 needs autoscaling.scaleToZero.enabled: true (or set "
            "replicas.min to 1 or more)",
            check=lambda s: (
                s.replicas.min > 0
                or (s.autoscaling is not None and s.autoscaling.scale_to_zero.enabled)
            ),
            field_path=".replicas.min",
        ),
        Rule(
            cel="self.runtime.tensorParallelSize * self.runtime.pipelineParallelSize == 1 || "
            "(has(self.accelerator) && self.accelerator.count == "
            "self.runtime.tensorParallelSize * self.runtime.pipelineParallelSize)",
            message="runtime.tensorParallelSize x runtime.pipelineParallelSize must equal "
            "accelerator.count (one device per engine worker), and above 1 needs spec.accelerator "
            "set on the InferenceService (this check cannot see the model's accelerator): set "
            "accelerator.count to tensorParallelSize x pipelineParallelSize or lower "
            "tensorParallelSize",
            check=lambda s: (
                s.runtime.engine_devices == 1
                or (s.accelerator is not None and s.accelerator.count == s.runtime.engine_devices)
            ),
            field_path=".runtime.tensorParallelSize",
        ),
    )

    model: LocalObjectReference = Field(
        description="The FoundationModel to serve; changing it starts a rollout."
    )
    adapter: LocalObjectReference | None = Field(
        default=None,
        description="A FoundationModel holding LoRA adapter weights (a FineTuneJob output with "
        "merge: false) applied on top of model.",
    )
    runtime: RuntimeSpec = sub(RuntimeSpec, "How each replica runs the model: its vLLM engine.")
    replicas: ReplicaBounds = sub(ReplicaBounds, "Replica bounds per live version.")
    accelerator: AcceleratorRequest | None = Field(
        default=None,
        description="Accelerators per replica; the model's own accelerator, else CPU, when unset. "
        "A multi-GPU engine (runtime.tensorParallelSize x pipelineParallelSize > 1) needs it set, "
        "with count equal to that product.",
    )
    autoscaling: AutoscalingSpec | None = Field(
        default=None, description="Load-based autoscaling; replicas stay at min when unset."
    )
    rollout: RolloutSpec | None = Field(
        default=None,
        description="How a changed model is rolled out (canary steps and analysis); when unset "
        "the new version replaces the old once it is ready.",
    )
    retrieval: RetrievalSpec | None = Field(
        default=None, description="Add context retrieved from a VectorIndex to each prompt."
    )
    drift: DriftSpec | None = Field(
        default=None,
        description="Compare recent prompts with those the stable version first saw; "
        "DriftDetected when they differ. Off when unset.",
    )
    retraining: RetrainingSpec | None = Field(
        default=None,
        description="Create a FineTuneJob from a template on drift or a schedule and roll its "
        "result out as a canary. Off when unset.",
    )
    auth: AuthSpec | None = Field(
        default=None,
        description="Require an API key; the API is open inside the cluster when unset.",
    )
    feedback: FeedbackSpec | None = Field(
        default=None,
        description="User feedback on answers (POST /v1/feedback), stored redacted where a "
        "FineTuneJob reads it; off when unset.",
    )


class InferenceServicePhase(StrEnum):
    """Where an InferenceService is in its life."""

    PENDING = "Pending"
    WAITING_FOR_MODEL = "WaitingForModel"
    DEPLOYING = "Deploying"
    READY = "Ready"
    ROLLING_OUT = "RollingOut"
    DEGRADED = "Degraded"
    FAILED = "Failed"


class ReplicaStatus(ApiModel):
    """Replica counts across the live versions' Serve applications (a LoRA version shares its
    base's)."""

    desired: int = Field(default=0, ge=0, description="Replicas asked for.")
    current: int = Field(
        default=0, ge=0, description="Replicas ordered from Serve (num_replicas in serveConfigV2)."
    )
    ready: int | None = Field(
        default=None,
        ge=0,
        description="Replicas Serve reports healthy (Prometheus: "
        "ray_serve_deployment_replica_healthy); absent while unknown, e.g. before Prometheus "
        "scrapes the Ray pods.",
    )


class InferenceServiceStatus(StatusBase):
    """The observed state of an InferenceService."""

    ready_sub_conditions: ClassVar[tuple[str, ...]] = ("ModelReady", "ServingReady")

    phase: InferenceServicePhase | None = Field(default=None, description="Summary phase.")
    url: str | None = Field(
        default=None, description="Root URL of the OpenAI-compatible API (append /v1/...)."
    )
    stable: ServedVersion | None = Field(default=None, description="The stable version.")
    canary: ServedVersion | None = Field(
        default=None, description="The canary version, while a rollout runs."
    )
    replicas: ReplicaStatus | None = Field(default=None, description="Replica counts.")
    autoscaling: AutoscalingStatus | None = Field(
        default=None, description="The last scale decision and the autoscaler's memory."
    )
    rollout: RolloutStatus | None = Field(default=None, description="Rollout progress.")
    drift: DriftStatus | None = Field(default=None, description="The drift test's state.")
    retraining: RetrainingStatus | None = Field(default=None, description="Retraining runs.")
    ray_service_name: str | None = Field(default=None, description="The RayService serving it.")


class InferenceService(ResourceBase):
    """A FoundationModel served behind an OpenAI-compatible API, autoscaled and canaried."""

    KIND: ClassVar[str] = "InferenceService"

    kind: str = Field(default="InferenceService", description="InferenceService.")
    spec: InferenceServiceSpec = Field(description="Desired state.")
    status: InferenceServiceStatus | None = Field(default=None, description="Observed state.")
