"""API layer: VectorIndex, documents chunked, embedded by a FoundationModel and indexed.

Each build writes a new numbered version on a PersistentVolumeClaim; a change of the sources or
of the embedder's digest starts a rebuild.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from drover.api.base import ApiModel, LocalObjectReference, Rule, SecretKeyReference
from drover.api.common import (
    ResourceBase,
    StatusBase,
    StorageSpec,
    sub,
)
from drover.api.uris import URI_FORMS, RelativePath, SourceUri


class DocumentSource(ApiModel):
    """Where the documents are: a directory (prefix) or a single file."""

    uri: SourceUri = Field(description=f"Documents location: {URI_FORMS}.")
    include: list[RelativePath] = Field(
        default_factory=lambda: ["**/*.md", "**/*.txt"],
        max_length=32,
        description="Glob patterns of files to index, relative to uri (** matches any depth, "
        "including none; no '..' segment and no leading '/'). Plain text and Markdown are read "
        "as is; .jsonl files give one document per line from its text field.",
    )
    credentials_secret_ref: SecretKeyReference | None = Field(
        default=None,
        description="Secret key with the token or credentials for hf:// or s3:// (never inline).",
    )


class Chunking(ApiModel):
    """How documents are cut before embedding, in tokens of the embedder's tokenizer."""

    __rules__ = (
        Rule(
            cel="self.overlap < self.size",
            message="chunking.overlap must be smaller than chunking.size: lower overlap "
            "(a quarter of size or less is typical)",
            check=lambda c: c.overlap < c.size,
            field_path=".overlap",
        ),
    )

    size: int = Field(default=512, ge=16, le=8192, description="Tokens per chunk.")
    overlap: int = Field(
        default=64, ge=0, le=4096, description="Tokens shared by consecutive chunks."
    )


class IndexType(StrEnum):
    """FAISS index family."""

    FLAT = "flat"
    HNSW = "hnsw"
    IVF = "ivf"


class Metric(StrEnum):
    """Similarity metric."""

    COSINE = "cosine"
    L2 = "l2"
    IP = "ip"


class IndexSpec(ApiModel):
    """The index structure and its tuning knobs."""

    __rules__ = (
        Rule(
            cel="!has(self.hnswM) || self.type == 'hnsw'",
            message="index.hnswM applies only to type hnsw: remove it or set type: hnsw",
            check=lambda i: i.hnsw_m is None or i.type == IndexType.HNSW,
            field_path=".hnswM",
        ),
        Rule(
            cel="!has(self.ivfLists) || self.type == 'ivf'",
            message="index.ivfLists applies only to type ivf: remove it or set type: ivf",
            check=lambda i: i.ivf_lists is None or i.type == IndexType.IVF,
            field_path=".ivfLists",
        ),
    )

    type: IndexType = Field(
        default=IndexType.HNSW,
        description="flat: exact search; hnsw: fast approximate graph; ivf: clustered lists for "
        "large corpora.",
    )
    metric: Metric = Field(
        default=Metric.COSINE, description="cosine, l2 (Euclidean) or ip (inner product)."
    )
    hnsw_m: int | None = Field(
        default=None, alias="hnswM", ge=4, le=128, description="HNSW neighbours per node (32)."
    )
    ivf_lists: int | None = Field(
        default=None, ge=1, le=65536, description="IVF cluster count (about sqrt of chunks)."
    )


class VectorIndexSpec(ApiModel):
    """The desired state of a VectorIndex."""

    source: DocumentSource = Field(description="The documents to index.")
    embedding_model: LocalObjectReference = Field(
        description="FoundationModel with task embedding that embeds chunks and queries."
    )
    chunking: Chunking = sub(Chunking, "How documents are cut into chunks.")
    index: IndexSpec = sub(IndexSpec, "Index type and similarity metric.")
    storage: StorageSpec = sub(StorageSpec, "The PersistentVolumeClaim holding index versions.")
    keep_versions: int = Field(
        default=2, ge=1, le=10, description="Index versions kept on storage (older are removed)."
    )


class VectorIndexPhase(StrEnum):
    """Where a VectorIndex is in its life."""

    PENDING = "Pending"
    WAITING_FOR_EMBEDDING_MODEL = "WaitingForEmbeddingModel"
    BUILDING = "Building"
    READY = "Ready"
    FAILED = "Failed"


class VectorIndexStatus(StatusBase):
    """The observed state of a VectorIndex."""

    ready_sub_conditions: ClassVar[tuple[str, ...]] = ("EmbeddingModelReady", "Built")

    phase: VectorIndexPhase | None = Field(default=None, description="Summary phase.")
    version: int | None = Field(default=None, ge=0, description="Current ready index version.")
    building_version: int | None = Field(
        default=None, ge=0, description="Version being built, while a build runs."
    )
    documents: int | None = Field(default=None, ge=0, description="Documents indexed.")
    chunks: int | None = Field(default=None, ge=0, description="Chunks indexed.")
    dimensions: int | None = Field(default=None, ge=0, description="Embedding dimensions.")
    embedder_digest: str | None = Field(
        default=None, description="Digest of the embedding model the index was built with."
    )
    source_digest: str | None = Field(
        default=None, description="Digest of the documents the index was built from."
    )
    claim_name: str | None = Field(default=None, description="Claim holding the index.")
    path: str | None = Field(default=None, description="Directory of the current version.")
    build_job: str | None = Field(default=None, description="The RayJob of the last build.")
    build_key: str | None = Field(
        default=None,
        description="Hash of what the current version was built from (documents, chunking, index "
        "type, embedder digest); a different hash starts a rebuild.",
    )
    built_at: datetime | None = Field(default=None, description="When the version was built.")


class VectorIndex(ResourceBase):
    """Documents, chunked and embedded into a versioned index for retrieval."""

    KIND: ClassVar[str] = "VectorIndex"

    kind: str = Field(default="VectorIndex", description="VectorIndex.")
    spec: VectorIndexSpec = Field(description="Desired state.")
    status: VectorIndexStatus | None = Field(default=None, description="Observed state.")
