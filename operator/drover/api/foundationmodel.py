"""API layer: FoundationModel, a base model's weights, where they come from and their cache.

The operator fetches the weights into a PersistentVolumeClaim with a RayJob and records a content
digest; FineTuneJobs, VectorIndexes and InferenceServices refer to it by name.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from drover.api.base import ApiModel, Rule, SecretKeyReference
from drover.api.common import (
    AcceleratorRequest,
    Lineage,
    ResourceBase,
    StatusBase,
    StorageSpec,
    VersionLabel,
    sub,
)
from drover.api.uris import URI_FORMS, SourceUri


class ModelTask(StrEnum):
    """What the model does: generate text (a causal LM) or embed text."""

    TEXT_GENERATION = "text-generation"
    EMBEDDING = "embedding"


class ModelSource(ApiModel):
    """Where the weights come from, and the Secret with credentials to read them."""

    __rules__ = (
        Rule(
            cel="!has(self.credentialsSecretRef) || self.uri.startsWith('hf://') "
            "|| self.uri.startsWith('s3://')",
            message="credentialsSecretRef applies only to hf:// and s3:// sources; remove it "
            "for pvc:// and file:// sources",
            check=lambda s: (
                s.credentials_secret_ref is None or s.uri.startswith(("hf://", "s3://"))
            ),
            field_path=".credentialsSecretRef",
        ),
    )

    uri: SourceUri = Field(
        description=f"Location of the weights in Hugging Face layout: {URI_FORMS}. "
        "An hf:// URI without @revision means @main."
    )
    credentials_secret_ref: SecretKeyReference | None = Field(
        default=None,
        description="Secret key holding the Hugging Face token or S3 credentials (never inline).",
    )


class FoundationModelSpec(ApiModel):
    """The desired state of a FoundationModel."""

    source: ModelSource = Field(description="Where the weights come from.")
    task: ModelTask = Field(
        default=ModelTask.TEXT_GENERATION,
        description="text-generation for causal language models, embedding for embedders.",
    )
    version: VersionLabel | None = Field(
        default=None,
        description="A version label shown in status and metrics (e.g. v2); informational.",
    )
    parameter_count: int | None = Field(
        default=None,
        ge=1,
        description="Number of parameters; lets the operator check it fits the accelerator's "
        "memory before scheduling.",
    )
    cache: StorageSpec = sub(StorageSpec, "The PersistentVolumeClaim that caches the weights.")
    accelerator: AcceleratorRequest | None = Field(
        default=None,
        description="Accelerator needed to serve this model; InferenceServices that name none use "
        "it. CPU when unset.",
    )
    lineage: Lineage | None = Field(
        default=None,
        description="Set by the FineTuneJob that produced this model: its base model and data.",
    )


class FoundationModelPhase(StrEnum):
    """Where a FoundationModel is in its life."""

    PENDING = "Pending"
    FETCHING = "Fetching"
    READY = "Ready"
    FAILED = "Failed"


class CacheStatus(ApiModel):
    """Where the cached weights are."""

    claim_name: str = Field(description="PersistentVolumeClaim holding the weights.")
    path: str = Field(description="Directory of this revision's weights inside the claim.")


class FoundationModelStatus(StatusBase):
    """The observed state of a FoundationModel."""

    ready_sub_conditions: ClassVar[tuple[str, ...]] = ("CacheReady", "Fetched")

    phase: FoundationModelPhase | None = Field(default=None, description="Summary phase.")
    digest: str | None = Field(
        default=None, description="Content digest of the cached weights (sha256:...)."
    )
    revision: str | None = Field(
        default=None, description="Resolved source revision (e.g. the hf commit) that was fetched."
    )
    cache: CacheStatus | None = Field(default=None, description="Where the weights are cached.")
    size_bytes: int | None = Field(default=None, ge=0, description="Bytes of cached weights.")
    context_length: int | None = Field(
        default=None,
        ge=1,
        description="Tokens of context the model was built for (its config's "
        "max_position_embeddings); an InferenceService's runtime.maxModelLen must fit in it.",
    )
    fetch_job: str | None = Field(
        default=None, description="Name of the RayJob that fetched (or is fetching) the weights."
    )
    source_key: str | None = Field(
        default=None,
        description="Hash of the source the cache holds; a different hash starts a new fetch.",
    )


class FoundationModel(ResourceBase):
    """A base model: its weights' source, a cache of them, and what it takes to serve it."""

    KIND: ClassVar[str] = "FoundationModel"

    kind: str = Field(default="FoundationModel", description="FoundationModel.")
    spec: FoundationModelSpec = Field(description="Desired state.")
    status: FoundationModelStatus | None = Field(default=None, description="Observed state.")
