"""Benchmark: recall@10 and queries/s of the index worker's approximate faiss indexes (IVF,
optionally HNSW) against exact flat search, measured in the same run on the same vectors.

Goal (issue 5): recall@10 >= 0.95 at >= 5x the queries/s of exact search, 100k vectors of 384
dimensions. Queries are searched one per call, as the serving router does for each request.
Vectors are clustered (unit-length points around random centres, with enough noise that the
clusters overlap), like sentence embeddings of a corpus with topics. For each index the
query-time knob is swept (IVF nprobe, HNSW efSearch) so the table shows the operating points.

Usage: python bench/index.py [--n 100000] [--index ivf|hnsw|both] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from drover_workers.index.faiss_index import build_index

GOAL_RECALL, GOAL_SPEEDUP = 0.95, 5.0
SWEEPS = {"ivf": ("nprobe", [8, 16, 32, 64]), "hnsw": ("efSearch", [32, 64, 128, 256])}


def clustered_vectors(n: int, dims: int, clusters: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.standard_normal((clusters, dims)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    points = centres[labels] + 2.0 * rng.standard_normal((n, dims)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points


def search_one_by_one(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Ids of every query, and queries/s with one query per search call."""
    ids = np.empty((len(queries), k), dtype=np.int64)
    start = time.perf_counter()
    for i in range(len(queries)):
        _, ids[i] = index.search(queries[i : i + 1], k)
    return ids, len(queries) / (time.perf_counter() - start)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def faiss_threads() -> int:
    import faiss

    return int(faiss.omp_get_max_threads())


def set_knob(index: Any, kind: str, value: int) -> None:
    if kind == "ivf":
        index.nprobe = value
    else:
        index.hnsw.efSearch = value


def run(n: int, dims: int, queries: int, k: int, kinds: list[str]) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    data = clustered_vectors(n + queries, dims, max(16, n // 100), rng)
    base, query = data[:n], data[n:]
    flat, _ = build_index(base, "flat", "cosine")
    truth, flat_qps = search_one_by_one(flat, query, k)
    start = time.perf_counter()
    flat.search(query, k)
    flat_batch_qps = len(query) / (time.perf_counter() - start)
    rows: list[dict[str, Any]] = [
        {"index": "flat", "params": {}, "buildSeconds": 0.0, "recallAt10": 1.0,
         "queriesPerSecond": round(flat_qps, 1), "speedup": 1.0}
    ]  # fmt: skip
    for kind in kinds:
        start = time.perf_counter()
        index, params = build_index(base, kind, "cosine")
        build = time.perf_counter() - start
        knob, values = SWEEPS[kind]
        for value in values:
            set_knob(index, kind, value)
            ids, qps = search_one_by_one(index, query, k)
            recall = recall_at_k(ids, truth)
            rows.append({
                "index": kind, "params": {**params, knob: value}, "buildSeconds": round(build, 2),
                "recallAt10": round(recall, 4), "queriesPerSecond": round(qps, 1),
                "speedup": round(qps / flat_qps, 2),
                "meetsGoal": recall >= GOAL_RECALL and qps / flat_qps >= GOAL_SPEEDUP,
            })  # fmt: skip
    return {
        "benchmark": "index",
        "vectors": n, "dimensions": dims, "queries": queries, "k": k,
        "goal": {"recallAt10": GOAL_RECALL, "speedup": GOAL_SPEEDUP},
        "baseline": "exact flat search, one query per call, in the same run",
        "threads": faiss_threads(),
        "flatBatchQueriesPerSecond": round(flat_batch_qps, 1),
        "goalMet": any(r.get("meetsGoal") for r in rows),
        "results": rows,
    }  # fmt: skip


def print_table(report: dict[str, Any]) -> None:
    print(
        f"index benchmark: {report['vectors']} vectors x {report['dimensions']} dims, "
        f"{report['queries']} queries one per call, k={report['k']}; baseline: exact flat search"
    )
    print(f"{'index':<6} {'recall@10':>9} {'q/s':>10} {'x flat':>7} {'build s':>8}  goal  params")
    for r in report["results"]:
        goal = "-" if r["index"] == "flat" else ("yes" if r["meetsGoal"] else "no")
        print(
            f"{r['index']:<6} {r['recallAt10']:>9.4f} {r['queriesPerSecond']:>10.1f} "
            f"{r['speedup']:>7.2f} {r['buildSeconds']:>8.2f}  {goal:<4}  {r['params']}"
        )
    print(
        f"(flat with all queries in one batched call: {report['flatBatchQueriesPerSecond']} q/s)\n"
        f"goal recall@10 >= {GOAL_RECALL} at >= {GOAL_SPEEDUP}x: "
        f"{'met' if report['goalMet'] else 'NOT met'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="vectors in the index")
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--index", choices=["ivf", "hnsw", "both"], default="ivf",
        help="ivf (default; builds in ~30 s here), hnsw (builds in minutes on 2 cores) or both",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=1,
        help="faiss OpenMP threads (default 1: a fair, steady comparison on a shared machine)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    kinds = ["ivf", "hnsw"] if args.index == "both" else [args.index]
    report = run(args.n, args.dims, args.queries, 10, kinds)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
