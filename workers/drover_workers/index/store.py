"""Reading a built index version: `IndexReader(path)` loads index.faiss, chunks.jsonl and
manifest.json; `search(query_vectors, k)` returns the nearest chunks; `embed(texts)` embeds
queries with the same embedder (used by the serving router for retrieval)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drover_workers.index.faiss_index import apply_search_params

VERSION_DIR = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class Hit:
    score: float  # similarity for cosine/ip (higher is closer), squared L2 for l2 (lower is closer)
    chunk_id: int
    doc_id: str
    source: str
    text: str


def versions(output_root: str | Path) -> list[int]:
    """The complete versions under an index root (those with a manifest), ascending."""
    root = Path(output_root)
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        m = VERSION_DIR.match(entry.name)
        if m and (entry / "manifest.json").is_file():
            found.append(int(m.group(1)))
    return sorted(found)


def latest_version_path(output_root: str | Path) -> Path | None:
    found = versions(output_root)
    return Path(output_root) / f"v{found[-1]}" if found else None


class IndexReader:
    """A read-only view of one index version; thread-safe for concurrent searches."""

    def __init__(self, path: str | Path, embedder_path: str | Path | None = None) -> None:
        import faiss

        self.path = Path(path)
        self.manifest: dict[str, Any] = json.loads((self.path / "manifest.json").read_text())
        self.index = faiss.read_index(str(self.path / "index.faiss"))
        apply_search_params(self.index, self.manifest["index"]["type"], self.manifest["index"])
        with open(self.path / "chunks.jsonl", encoding="utf-8") as fh:
            self.chunks = [json.loads(line) for line in fh if line.strip()]
        self.embedder_path = str(embedder_path or self.manifest["embedderPath"])
        self._embedder: Any = None

    @property
    def metric(self) -> str:
        return str(self.manifest["index"]["metric"])

    @property
    def dimensions(self) -> int:
        return int(self.manifest["dimensions"])

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._embedder is None:
            from drover_workers.index.embed import Embedder

            self._embedder = Embedder(self.embedder_path)
        result: np.ndarray = self._embedder.embed(texts)
        return result

    def search(self, query_vectors: np.ndarray, k: int) -> list[list[Hit]]:
        vectors = np.ascontiguousarray(np.atleast_2d(query_vectors), dtype=np.float32)
        if vectors.shape[1] != self.dimensions:
            raise ValueError(
                f"query has {vectors.shape[1]} dimensions, index has {self.dimensions}"
            )
        scores, ids = self.index.search(vectors, min(k, len(self.chunks)))
        out = []
        for row_scores, row_ids in zip(scores, ids, strict=True):
            hits = []
            for score, idx in zip(row_scores, row_ids, strict=True):
                if idx < 0:
                    continue
                chunk = self.chunks[idx]
                hits.append(
                    Hit(float(score), int(idx), chunk["docId"], chunk["source"], chunk["text"])
                )
            out.append(hits)
        return out

    def query(self, texts: list[str], k: int) -> list[list[Hit]]:
        return self.search(self.embed(texts), k)
