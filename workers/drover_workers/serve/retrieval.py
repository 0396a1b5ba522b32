"""Serve layer: retrieval-augmented prompts. Embeds the query, finds the top-k chunks of a
VectorIndex version and puts them in front of the prompt; the chunks' sources go in the answer.

A version written by the index worker (it has `manifest.json`) is read with
`drover_workers.index.store.IndexReader`; a bare directory of `index.faiss` and `chunks.jsonl`
(one {"text", "source"} a line, vectors normalised, inner product) is read with faiss directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drover_workers.index.embed import Embedder


class FaissIndex:
    """A faiss index plus its chunk texts, read from a VectorIndex version directory."""

    def __init__(self, path: str) -> None:
        import faiss

        root = Path(path)
        for name in ("index.faiss", "chunks.jsonl"):
            if not (root / name).is_file():
                raise FileNotFoundError(f"retrieval.indexPath {root}: {name} is missing")
        self.index = faiss.read_index(str(root / "index.faiss"))
        with open(root / "chunks.jsonl", encoding="utf-8") as fh:
            self.chunks = [json.loads(line) for line in fh if line.strip()]

    def search(self, vector: list[float], k: int) -> list[dict[str, Any]]:
        import numpy as np

        scores, ids = self.index.search(np.asarray([vector], dtype="float32"), k)
        hits = []
        for score, idx in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
            if idx >= 0:
                hits.append({**self.chunks[idx], "score": float(score)})
        return hits


class Retriever:
    """The index (and its embedder), held by the router replica."""

    def __init__(self, index_path: str, embedder_path: str, top_k: int) -> None:
        self.top_k = top_k
        self.reader: Any = None
        if (Path(index_path) / "manifest.json").is_file():
            # A version written by the index worker: its reader embeds with the same pooling.
            from drover_workers.index.store import IndexReader

            self.reader = IndexReader(index_path, embedder_path)
            self.reader.embed(["warm-up"])
        else:
            self.embedder = Embedder(embedder_path)
            self.index = FaissIndex(index_path)

    def search(self, query: str) -> list[dict[str, Any]]:
        if self.reader is not None:
            hits = self.reader.query([query], self.top_k)[0]
            return [_source(vars(hit)) for hit in hits]
        vectors = self.embedder.embed([query])
        return [_source(hit) for hit in self.index.search(vectors[0].tolist(), self.top_k)]

    def distance(self, sources: list[dict[str, Any]]) -> float | None:
        """Cosine distance of the query to its nearest chunk (the drift test's embedding
        signal): 1 - the top score (a cosine or inner-product index of unit vectors), or for an
        l2 index half its squared distance (the embedder normalises). None without a hit."""
        if not sources:
            return None
        score = float(sources[0]["score"])
        metric = self.reader.metric if self.reader is not None else "ip"
        return max(score / 2.0 if metric == "l2" else 1.0 - score, 0.0)


def _source(hit: dict[str, Any]) -> dict[str, Any]:
    meta = hit.get("metadata") or {}
    return {
        "source": hit.get("source") or meta.get("source") or hit.get("doc_id", ""),
        "text": hit.get("text", ""),
        "score": round(float(hit.get("score", 0.0)), 6),
    }


def query_of(request: dict[str, Any]) -> str:
    """What to search for: the prompt, or the last user message of a chat."""
    if request.get("messages"):
        users = [m["content"] for m in request["messages"] if m["role"] == "user"]
        return users[-1] if users else request["messages"][-1]["content"]
    return str(request.get("prompt", ""))


def augment(request: dict[str, Any], sources: list[dict[str, Any]]) -> dict[str, Any]:
    """The request with the retrieved chunks as context (a system message for chats)."""
    if not sources:
        return request
    context = "\n\n".join(f"[{i + 1}] ({s['source']}) {s['text']}" for i, s in enumerate(sources))
    note = f"Use the following context to answer.\n{context}"
    if request.get("messages"):
        return {**request, "messages": [{"role": "system", "content": note}, *request["messages"]]}
    return {**request, "prompt": f"{note}\n\n{request['prompt']}"}
