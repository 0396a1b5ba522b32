"""index worker entrypoint: read documents, chunk, embed, build faiss, write v<N+1>."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from drover_workers.common.credentials import Credentials, read_token
from drover_workers.common.report import Reporter
from drover_workers.common.runner import WorkerError, run_worker
from drover_workers.common.sources import materialize
from drover_workers.index.build import (
    check_existing,
    documents_digest,
    embed_chunks,
    embedder_digest,
    next_version,
    write_version,
)
from drover_workers.index.config import IndexConfig
from drover_workers.index.documents import Document, chunk_document, read_documents
from drover_workers.index.embed import Embedder
from drover_workers.index.faiss_index import build_index


def _read_documents(config: IndexConfig) -> list[Document]:
    """The documents the spec names, fetched into a scratch directory and read from there."""
    with tempfile.TemporaryDirectory(prefix="drover-docs-") as work:
        try:
            token = read_token(config.credentials)
            if config.documents and config.documents.token_file:
                token = read_token(Credentials(token_file=config.documents.token_file))
            docs_path = materialize(
                config.documents_uri,
                Path(work),
                token=token,
                endpoint=config.hf_endpoint,
                pvc_root_dir=config.pvc_root,
            )
            return read_documents(docs_path, config.documents.include if config.documents else None)
        except (FileNotFoundError, ValueError) as exc:
            raise WorkerError("DocumentsNotFound", f"documentsPath: {exc}") from None


def build(config: IndexConfig, reporter: Reporter) -> dict[str, Any]:
    root = Path(config.output_root)
    version = next_version(root, config.previous_version, config.version)
    reporter.progress(force=True, phase="reading", version=version)
    docs = _read_documents(config)
    if not docs:
        raise WorkerError("NoDocuments", f"documents {config.documents_uri}: no .txt/.md/.jsonl")
    if not (Path(config.embedder_path) / "config.json").is_file():
        raise WorkerError(
            "EmbedderNotFound", f"embedderPath {config.embedder_path}: no config.json"
        )
    embedder = Embedder(config.embedder_path, config.batch_size)
    size, overlap, warnings = effective_chunking(config, embedder.max_length)
    reporter.progress(force=True, phase="chunking", documents=len(docs))
    chunks = [c for d in docs for c in chunk_document(d, embedder.tokenizer, size, overlap)]
    if not chunks:
        raise WorkerError("NoDocuments", "every document is empty")
    manifest: dict[str, Any] = {
        "version": version,
        "documents": len(docs),
        "chunks": len(chunks),
        "dimensions": embedder.dimensions,
        "embedderPath": str(config.embedder_path),
        "embedderDigest": embedder_digest(config),
        "documentsDigest": documents_digest(docs),
        "chunking": {**config.chunking.model_dump(by_alias=True), "effectiveSize": size},
    }
    final = root / f"v{version}"
    spec = config.index
    identity = {k: manifest[k] for k in ("documentsDigest", "embedderDigest", "chunking")}
    if check_existing(final, {**identity, "indexType": spec.type}):
        old = json.loads((final / "manifest.json").read_text())
        return {**_result(old, final), "reused": True}
    vectors, mode = embed_chunks(config, embedder, [c.text for c in chunks], reporter)
    reporter.progress(force=True, phase="indexing", chunks=len(chunks))
    index, params = build_index(
        vectors,
        spec.type,
        spec.metric,
        hnsw_m=spec.hnsw_m,
        ef_construction=spec.ef_construction,
        ef_search=spec.ef_search,
        nlist=spec.ivf_lists,
        nprobe=spec.nprobe,
    )
    manifest["index"] = {"type": spec.type, "metric": spec.metric, **params}
    manifest["embeddedWith"] = mode
    path = write_version(config, version, index, chunks, manifest)
    return {**_result(manifest, path), "warnings": warnings}


def effective_chunking(config: IndexConfig, max_length: int) -> tuple[int, int, list[str]]:
    """Chunk size and overlap that fit the embedder (2 tokens go to [CLS]/[SEP]-style marks)."""
    limit = max_length - 2
    size, overlap = config.chunking.size, config.chunking.overlap
    if size <= limit:
        return size, overlap, []
    new_overlap = min(overlap, limit // 4)
    return (
        limit,
        new_overlap,
        [
            f"chunking.size {size} exceeds the embedder's limit of {limit} tokens; "
            f"chunks of {limit} tokens (overlap {new_overlap}) were used"
        ],
    )


def _result(manifest: dict[str, Any], path: Path) -> dict[str, Any]:
    keys = ("version", "documents", "chunks", "dimensions", "embedderDigest", "documentsDigest")
    return {**{k: manifest[k] for k in keys}, "path": str(path), "index": manifest["index"]}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return run_worker(IndexConfig, build, lambda c: c.output_root, argv)


if __name__ == "__main__":
    sys.exit(main())
