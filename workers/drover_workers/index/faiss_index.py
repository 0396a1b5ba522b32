"""faiss index construction and search parameters for the three index types and metrics.

Vectors are unit length, so `cosine` is inner product; `l2` uses squared L2 distances (lower is
closer); `ip` is raw inner product.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _metric(metric: str) -> int:
    import faiss

    return int(faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)


def default_nlist(n: int) -> int:
    """~4*sqrt(n) lists, but at least 39 training points per list (faiss's own minimum)."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def build_index(
    vectors: np.ndarray,
    index_type: str,
    metric: str,
    *,
    hnsw_m: int = 32,
    ef_construction: int = 200,
    ef_search: int = 128,
    nlist: int | None = None,
    nprobe: int = 16,
    seed: int = 0,
) -> tuple[Any, dict[str, Any]]:
    """The faiss index holding `vectors` and the search parameters to record in the manifest."""
    import faiss

    dims = vectors.shape[1]
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    params: dict[str, Any] = {}
    if index_type == "flat":
        index = faiss.IndexFlat(dims, _metric(metric))
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dims, hnsw_m, _metric(metric))
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
        params = {"M": hnsw_m, "efConstruction": ef_construction, "efSearch": ef_search}
    elif index_type == "ivf":
        lists = min(nlist or default_nlist(len(vectors)), max(1, len(vectors)))
        quantizer = faiss.IndexFlat(dims, _metric(metric))
        index = faiss.IndexIVFFlat(quantizer, dims, lists, _metric(metric))
        index.cp.seed = seed  # deterministic k-means
        index.train(vectors)
        index.nprobe = min(nprobe, lists)
        params = {"nlist": lists, "nprobe": index.nprobe}
    else:
        raise ValueError(f"index.type {index_type!r}: use flat, hnsw or ivf")
    index.add(vectors)
    return index, params


def apply_search_params(index: Any, index_type: str, params: dict[str, Any]) -> None:
    """Restore the query-time knobs a serialized index may not keep."""
    if index_type == "hnsw" and "efSearch" in params:
        index.hnsw.efSearch = int(params["efSearch"])
    elif index_type == "ivf" and "nprobe" in params:
        index.nprobe = int(params["nprobe"])
