"""API layer: InferenceService, a FoundationModel served behind an OpenAI-compatible API.

It runs as one RayService (a router Serve application plus one application per live version), scales
by load (`autoscaling`) and rolls out a changed model behind a canary (`rollout`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from drover.api.autoscaling import AutoscalingSpec, AutoscalingStatus
from drover.api.base import ApiModel, LocalObjectReference, Rule, SecretKeyReference
from drover.api.common import AcceleratorRequest, ResourceBase, StatusBase, sub
from drover.api.rollout import RolloutSpec, RolloutStatus, ServedVersion


class Dtype(StrEnum):
    """Numeric type the weights are loaded in."""

    AUTO = "auto"
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"


class RuntimeSpec(ApiModel):
    """How each replica runs the model."""

    __rules__ = (
        Rule(
            cel="self.maxConcurrentRequests >= self.maxBatchSize",
            message="runtime.maxConcurrentRequests must be at least runtime.maxBatchSize, or "
            "batches never fill: raise maxConcurrentRequests or lower maxBatchSize",
            check=lambda r: r.max_concurrent_requests >= r.max_batch_size,
            field_path=".maxConcurrentRequests",
        ),
    )

    max_batch_size: int = Field(
        default=8, ge=1, le=256, description="Requests batched into one forward pass."
    )
    batch_wait_timeout_ms: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="How long an idle replica waits for more requests before its first step, in "
        "milliseconds. Requests that come later join the running batch at its next step, so the "
        "default 0 costs at most one extra prefill pass and never delays a lone request.",
    )
    max_concurrent_requests: int = Field(
        default=32,
        ge=1,
        le=1024,
        description="Requests a replica accepts at once (running plus queued); more wait at the "
        "router.",
    )
    max_tokens: int = Field(
        default=512, ge=1, le=131072, description="Upper bound on tokens generated per request."
    )
    dtype: Dtype = Field(
        default=Dtype.AUTO,
        description="auto (the checkpoint's own, float32 on CPU), float32, float16 or bfloat16.",
    )


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
    )

    model: LocalObjectReference = Field(
        description="The FoundationModel to serve; changing it starts a rollout."
    )
    adapter: LocalObjectReference | None = Field(
        default=None,
        description="A FoundationModel holding LoRA adapter weights (a FineTuneJob output with "
        "merge: false) applied on top of model.",
    )
    runtime: RuntimeSpec = sub(RuntimeSpec, "How each replica runs the model.")
    replicas: ReplicaBounds = sub(ReplicaBounds, "Replica bounds per live version.")
    accelerator: AcceleratorRequest | None = Field(
        default=None,
        description="Accelerators per replica; the model's own accelerator, else CPU, when unset.",
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
    auth: AuthSpec | None = Field(
        default=None,
        description="Require an API key; the API is open inside the cluster when unset.",
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
    """Replica counts across all live versions."""

    desired: int = Field(default=0, ge=0, description="Replicas asked for.")
    current: int = Field(default=0, ge=0, description="Replicas that exist.")
    ready: int = Field(default=0, ge=0, description="Replicas ready to serve.")


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
    ray_service_name: str | None = Field(default=None, description="The RayService serving it.")


class InferenceService(ResourceBase):
    """A FoundationModel served behind an OpenAI-compatible API, autoscaled and canaried."""

    KIND: ClassVar[str] = "InferenceService"

    kind: str = Field(default="InferenceService", description="InferenceService.")
    spec: InferenceServiceSpec = Field(description="Desired state.")
    status: InferenceServiceStatus | None = Field(default=None, description="Observed state.")
