"""The index build: documents → chunks → embeddings (Ray tasks or in-process) → faiss → a new
version directory, written under a temporary name and renamed into place."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from drover_workers.common.digest import content_digest, read_manifest, sha256_file
from drover_workers.common.report import Reporter
from drover_workers.common.runner import WorkerError
from drover_workers.index.config import IndexConfig
from drover_workers.index.documents import Chunk, Document
from drover_workers.index.embed import Embedder, embed_texts
from drover_workers.index.store import versions


def next_version(output_root: Path, previous: int | None, exact: int | None = None) -> int:
    if exact is not None:
        return exact
    if previous is not None:
        return previous + 1
    found = versions(output_root)
    return (found[-1] if found else 0) + 1


def documents_digest(docs: list[Document]) -> str:
    import hashlib

    return content_digest({d.id: hashlib.sha256(d.text.encode()).hexdigest() for d in docs})


def embedder_digest(config: IndexConfig) -> str:
    if config.embedder_digest:
        return config.embedder_digest
    manifest = read_manifest(config.embedder_path)
    if manifest:
        return str(manifest["digest"])
    files = sorted(p for p in Path(config.embedder_path).rglob("*") if p.is_file())
    return content_digest(
        {p.relative_to(config.embedder_path).as_posix(): sha256_file(p) for p in files}
    )


def use_ray(config: IndexConfig) -> bool:
    if config.parallelism == "local":
        return False
    try:
        import ray
    except ImportError:
        if config.parallelism == "ray":
            raise WorkerError(
                "RayUnavailable", "parallelism: ray, but ray is not installed"
            ) from None
        return False
    if ray.is_initialized():
        return True
    if config.parallelism == "ray" or os.environ.get("RAY_ADDRESS"):
        try:
            ray.init(address=os.environ.get("RAY_ADDRESS", "auto"), log_to_driver=False)
            return True
        except (ConnectionError, RuntimeError) as exc:
            if config.parallelism == "ray":
                raise WorkerError("RayUnavailable", f"parallelism: ray: {exc}") from None
    return False


def embed_chunks(
    config: IndexConfig, embedder: Embedder, texts: list[str], reporter: Reporter
) -> tuple[np.ndarray, str]:
    """Embeddings for every chunk text, and how they were computed (`ray` or `local`)."""
    if use_ray(config) and len(texts) > config.batch_size:
        import ray

        remote = ray.remote(num_cpus=1)(embed_texts)
        shards = np.array_split(np.arange(len(texts)), min(config.ray_shards, len(texts)))
        refs = [
            remote.remote(config.embedder_path, [texts[i] for i in shard], config.batch_size)
            for shard in shards
            if len(shard)
        ]
        parts = []
        for n, ref in enumerate(refs, start=1):
            parts.append(ray.get(ref))
            reporter.progress(phase="embedding", shards=n, totalShards=len(refs))
        return np.concatenate(parts), "ray"
    parts = []
    for start in range(0, len(texts), config.batch_size):
        parts.append(embedder.embed(texts[start : start + config.batch_size]))
        done = min(start + config.batch_size, len(texts))
        reporter.progress(phase="embedding", chunks=done, totalChunks=len(texts))
    return np.concatenate(parts), "local"


def write_version(
    config: IndexConfig,
    version: int,
    index: Any,
    chunks: list[Chunk],
    manifest: dict[str, Any],
) -> Path:
    import faiss

    root = Path(config.output_root)
    final = root / f"v{version}"
    tmp = root / f".v{version}.building"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    faiss.write_index(index, str(tmp / "index.faiss"))
    with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as fh:
        for i, c in enumerate(chunks):
            row = {"id": i, "docId": c.doc_id, "source": c.source, "chunk": c.index, "text": c.text}
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, final)
    return final


def check_existing(final: Path, identity: dict[str, Any]) -> bool:
    """True when the version already holds this exact build (a retried job): reuse it."""
    existing = final / "manifest.json"
    if not existing.is_file():
        if final.exists():
            shutil.rmtree(final)  # a broken leftover
        return False
    old = json.loads(existing.read_text())
    old_identity = {k: old.get(k) for k in identity if k != "indexType"}
    old_identity["indexType"] = old.get("index", {}).get("type")
    if old_identity == identity:
        return True
    raise WorkerError(
        "VersionExists",
        f"{final} already holds a different build; set previousVersion to the latest version",
    )
