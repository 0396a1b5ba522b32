"""index worker configuration (pydantic): documents, embedder, chunking, index type, output."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from drover_workers.common.config import WorkerModel
from drover_workers.common.credentials import Credentials


class Chunking(WorkerModel):
    size: int = Field(256, ge=8, le=8192, description="chunk length in embedder tokens")
    overlap: int = Field(32, ge=0, description="tokens shared by consecutive chunks")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Chunking:
        if self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self


class IndexSpec(WorkerModel):
    type: Literal["flat", "hnsw", "ivf"] = "flat"
    metric: Literal["cosine", "l2", "ip"] = "cosine"
    hnsw_m: int = Field(32, alias="hnswM", ge=4, le=128, description="HNSW graph degree")
    ef_construction: int = Field(200, ge=8)
    ef_search: int = Field(128, ge=1)
    ivf_lists: int | None = Field(None, ge=1, description="IVF lists; default ~4*sqrt(n)")
    nprobe: int = Field(16, ge=1, description="IVF lists searched per query")


class Documents(WorkerModel):
    """The documents as a source object (the operator's shape of `documentsPath`)."""

    uri: str = Field(description="file://, pvc://, hf://datasets/..., s3:// or a plain path")
    include: list[str] | None = Field(None, description="glob patterns, e.g. ['**/*.md']")
    token_file: str | None = Field(None, description="a mounted Secret key holding a token")


class IndexConfig(WorkerModel):
    documents_path: str | None = Field(
        None, description="a directory of .txt/.md, a .jsonl of {id, text}, or a URI"
    )
    documents: Documents | None = Field(None, description="alternative to documentsPath")
    embedder_path: str = Field(description="the embedding model's cache path (HF format)")
    embedder_digest: str | None = Field(None, description="default: from drover-manifest.json")
    chunking: Chunking = Chunking()
    index: IndexSpec = IndexSpec()
    output_root: str = Field(description="versions are written as <outputRoot>/v<N>/")
    previous_version: int | None = Field(None, ge=0, description="N: this build writes v<N+1>")
    version: int | None = Field(None, ge=1, description="write exactly v<version>")
    batch_size: int = Field(32, ge=1, le=1024)
    parallelism: Literal["auto", "ray", "local"] = Field(
        "auto", description="auto: Ray tasks when a Ray cluster is reachable, else in-process"
    )
    ray_shards: int = Field(2, ge=1, le=256)
    credentials: Credentials | None = None
    hf_endpoint: str | None = None
    pvc_root: str | None = None

    @model_validator(mode="after")
    def _one_source_one_version(self) -> IndexConfig:
        if (self.documents_path is None) == (self.documents is None):
            raise ValueError("set exactly one of documentsPath or documents")
        if self.version is not None and self.previous_version is not None:
            raise ValueError("set at most one of version or previousVersion")
        return self

    @property
    def documents_uri(self) -> str:
        return self.documents.uri if self.documents else str(self.documents_path)
