"""Serving benchmark: Drover's whole path against vLLM alone and against plain transformers.

One run, one model (a Llama-shaped ~85M-parameter model built from a config), the same requests,
three paths (bench/_serving_paths.py):
  (a) vLLM's AsyncLLM in this process, no Drover code: the limit;
  (b) Drover's whole path: HTTP -> router replica -> engine application -> vLLM, streamed, on a
      local Ray head in Serve's high-throughput mode (as RayServices run; HAProxy itself is not
      started here, it would bind every interface: requests go to the router replica's own HTTP
      server, which is where HAProxy forwards them);
  (c) plain transformers `generate` on padded batches: the naive baseline.
Workloads: uniform (64 in / 64 out), mixed (prompts 16-600, outputs 16-128) and shared (one
400-token system prompt + a 24-token question, 16 out); closed-loop concurrency 1, 8 and 32;
cells are interleaved path by path so every path sees the same machine load. Reported:
tokens/s, TTFT p50/p99 (to the first text a streaming client sees, for every path), inter-token
p50 (per request: time between its first and last text over its tokens), RSS per replica. Also:
(a) with prefix caching off on the shared workload, and a LoRA canary's replica count.

Goals: (b) >= 0.9x (a) tokens/s at concurrency 32; (b)'s p50 TTFT at most 10 ms above (a)'s at
concurrency 1; (b) >= 3x (c) tokens/s on the mixed workload; prefix caching at least halves p50
TTFT on the shared workload; a LoRA canary adds no replica.

Usage: python bench/serving.py [--requests 32] [--concurrency 1,8,32] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")  # stdout is for the table/JSON
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.fixtures.ray_cluster import RayHead, start_ray_head  # noqa: E402

from _serving_paths import (  # noqa: E402
    HttpPath,
    NaivePath,
    Request,
    Sample,
    VllmPath,
    build_bench_model,
    closed_loop,
    parameter_count,
    workload,
)
from drover_sandbox.components import LOCAL_SERVE_ENV as BENCH_ENV  # noqa: E402

APP, ENGINE, CANARY = "bench", "v1", "v2"
WORKLOADS = ("uniform", "mixed", "shared")
# One engine's settings for every path: 32 sequences a step, a 1 GiB KV cache (vLLM's CPU build
# sizes it from this, not from a share of RAM), prefix caching and chunked prefill on.
RUNTIME = {
    "maxNumSeqs": 32,
    "maxModelLen": 2048,
    "dtype": "bfloat16",
    "kvCacheMemoryBytes": 1 << 30,
    "maxTokens": 256,
}


def serve_config(head: RayHead, model: str, adapter: str, canary: bool) -> dict[str, Any]:
    """The router and the engine application, as the operator builds them; with `canary`, a LoRA
    version v2 at 10% on v1's engine (routes + the engine's adapters, both in place)."""
    service = {"name": APP, "namespace": "bench"}
    router_config: dict[str, Any] = {"versions": [ENGINE], "weights": {ENGINE: 100}}
    # The engine gets the machine's 2 CPUs, as the in-process engine has them: Ray sets a
    # replica's OMP_NUM_THREADS from the CPUs it reserves, so 0.5 CPU would mean one thread.
    engine: dict[str, Any] = {
        "name": "model",
        "num_replicas": 1,
        "max_ongoing_requests": 256,
        "ray_actor_options": {"num_cpus": 2},
    }
    if canary:
        route = {"engine": ENGINE, "adapterPath": adapter}
        router_config = {
            "versions": [ENGINE, CANARY],
            "weights": {ENGINE: 90, CANARY: 10},
            "routes": {CANARY: route},
        }
        engine["user_config"] = {"adapters": {CANARY: {"adapterPath": adapter}}}
    return {
        "http_options": {"host": "127.0.0.1", "port": head.serve_port},
        "applications": [
            {
                "name": APP,
                "route_prefix": f"/{APP}",
                "import_path": "drover_workers.serve.app:build_router",
                "args": {
                    "service": service,
                    "runtime": {"maxTokens": 256, "maxQueuedRequests": 1024},
                },
                "deployments": [
                    {
                        "name": "router",
                        "user_config": router_config,
                        "ray_actor_options": {"num_cpus": 0},
                    }
                ],
            },
            {
                "name": f"{APP}-{ENGINE}",
                "route_prefix": None,
                "import_path": "drover_workers.serve.app:build_model",
                "args": {
                    "service": service,
                    "version": {"name": ENGINE, "model": "bench", "modelPath": model},
                    "runtime": RUNTIME,
                },
                "deployments": [engine],
            },
        ],
    }


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def apply(head: RayHead, config: dict[str, Any], ready: list[str]) -> None:
    body = json.dumps(config).encode()
    req = urllib.request.Request(
        f"{head.dashboard_url}/api/serve/applications/",
        data=body,
        method="PUT",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=60).close()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if sorted(_get(f"{head.serve_url}/{APP}/healthz")["ready"]) == sorted(ready):
                return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the bench service did not become ready ({ready}) within 600 s")


def engine_replicas(head: RayHead) -> list[str]:
    apps = _get(f"{head.dashboard_url}/api/serve/applications/")["applications"]
    models = [a for name, a in apps.items() if name != APP]
    return [
        r["replica_id"]
        for a in models
        for d in a["deployments"].values()
        for r in d["replicas"]
        if r["state"] == "RUNNING"
    ]


def direct_ingress_url(head: RayHead) -> str:
    """The router replica's own HTTP server (what HAProxy forwards to), else Serve's proxy."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        if f"ServeReplica:{APP}:router" not in " ".join(proc.info["cmdline"] or []):
            continue
        ports = [
            c.laddr.port
            for c in proc.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.ip == "127.0.0.1"
        ]
        for port in sorted(ports):
            try:
                _get(f"http://127.0.0.1:{port}/{APP}/healthz")
                return f"http://127.0.0.1:{port}/{APP}/v1"
            except OSError:
                continue
    return f"{head.serve_url}/{APP}/v1"


def rss_mb(match: str) -> float:
    """RSS of the processes whose command line contains `match`, plus their children."""
    import psutil

    total = 0
    for proc in psutil.process_iter(["cmdline"]):
        if match in " ".join(proc.info["cmdline"] or []):
            for p in [proc, *proc.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    continue
    return total / 2**20


def own_vllm_mb() -> float:
    """RSS of this process's vLLM children (engine core, worker); the front end shares this
    process with the transformers baseline, so it is left out."""
    import psutil

    kids = psutil.Process().children(recursive=True)
    return sum(p.memory_info().rss for p in kids if "VLLM" in " ".join(p.cmdline())) / 2**20


def summary(samples: list[Sample], wall: float) -> dict[str, float]:
    ttft = sorted(s.ttft for s in samples)
    itl = sorted(s.itl for s in samples if s.tokens > 1) or [0.0]
    return {
        "tokens_per_s": sum(s.tokens for s in samples) / wall,
        "ttft_p50_ms": 1000 * statistics.median(ttft),
        "ttft_p99_ms": 1000 * ttft[min(len(ttft) - 1, int(0.99 * len(ttft)))],
        "itl_p50_ms": 1000 * statistics.median(itl),
        "requests": len(samples),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Everything in one event loop: an in-process AsyncLLM is bound to the loop it starts on."""
    work = Path(tempfile.mkdtemp(prefix="drover-bench-serving-"))
    model, adapter = build_bench_model(work)
    levels = [int(c) for c in args.concurrency.split(",")]
    loads = {k: workload(model, k, args.requests) for k in WORKLOADS}
    result: dict[str, Any] = {"parameters": parameter_count(model), "cells": []}
    head = start_ray_head(work / "ray", extra_env=BENCH_ENV)
    vllm = no_cache = None
    try:
        apply(head, serve_config(head, model, adapter, canary=False), [ENGINE])
        http = HttpPath(direct_ingress_url(head), APP)
        vllm, naive = VllmPath(model, RUNTIME), NaivePath(model)
        result["rss_mb"] = {
            "a_vllm_engine_processes": own_vllm_mb(),
            "b_drover_replica": rss_mb(f"ServeReplica:{APP}-{ENGINE}:model"),
            "b_router_replica": rss_mb(f"ServeReplica:{APP}:router"),
        }
        for kind in WORKLOADS:
            requests = loads[kind]
            for c in levels:
                cell: dict[str, Any] = {"workload": kind, "concurrency": c}
                warm = requests[: min(4, len(requests))]
                for name, path in (("a", vllm), ("b", http)):
                    await closed_loop(warm, min(c, 4), path.one)
                    cell[name] = summary(*await closed_loop(requests, c, path.one))
                cell["c"] = summary(*naive.run(requests, c))
                result["cells"].append(cell)
                print(f"  {kind} @ {c}: done", file=sys.stderr, flush=True)
        vllm.shutdown()
        vllm = None
        no_cache = VllmPath(model, RUNTIME, prefix_caching=False)
        shared: list[Request] = loads["shared"]
        cached = next(
            x for x in result["cells"] if x["workload"] == "shared" and x["concurrency"] == 1
        )
        await closed_loop(shared[:4], 1, no_cache.one)
        result["prefix_caching"] = {
            "on": cached["a"],
            "off": summary(*await closed_loop(shared, 1, no_cache.one)),
        }
        before = engine_replicas(head)
        apply(head, serve_config(head, model, adapter, canary=True), [ENGINE, CANARY])
        canary = HttpPath(direct_ingress_url(head), f"{APP}:{CANARY}")
        await closed_loop(shared[:4], 2, canary.one)
        result["lora_canary"] = {"replicas_before": before, "replicas_after": engine_replicas(head)}
    finally:
        for path in (vllm, no_cache):
            if path is not None:
                path.shutdown()
        head.stop()
    return result


def goals(r: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    """(what, measured, goal, met) for each goal the issue sets."""
    cells = {(c["workload"], c["concurrency"]): c for c in r["cells"]}
    out = []
    top = max(c for _, c in cells)
    for kind in WORKLOADS:
        if (kind, top) in cells:
            cell = cells[(kind, top)]
            ratio = cell["b"]["tokens_per_s"] / cell["a"]["tokens_per_s"]
            out.append((f"(b)/(a) tokens/s, {kind} @ {top}", ratio, ">= 0.9x", ratio >= 0.9))
    for kind in WORKLOADS:
        if (kind, 1) in cells:
            cell = cells[(kind, 1)]
            extra = cell["b"]["ttft_p50_ms"] - cell["a"]["ttft_p50_ms"]
            out.append((f"(b)-(a) p50 TTFT ms, {kind} @ 1", extra, "<= 10 ms", extra <= 10))
    for (kind, c), cell in sorted(cells.items()):
        if kind == "mixed":
            ratio = cell["b"]["tokens_per_s"] / cell["c"]["tokens_per_s"]
            out.append((f"(b)/(c) tokens/s, mixed @ {c}", ratio, ">= 3x", ratio >= 3))
    pc = r["prefix_caching"]
    ratio = pc["off"]["ttft_p50_ms"] / pc["on"]["ttft_p50_ms"]
    out.append(("p50 TTFT shared @ 1, caching off / on", ratio, ">= 2x", ratio >= 2))
    lora = r["lora_canary"]
    added = len(lora["replicas_after"]) - len(lora["replicas_before"])
    same = lora["replicas_after"] == lora["replicas_before"]
    out.append(("replicas a LoRA canary adds", added, "0, same replica ids", added == 0 and same))
    return out


def print_table(r: dict[str, Any]) -> None:
    print(f"model: Llama-shaped, {r['parameters'] / 1e6:.1f}M parameters, float32 on CPU")
    print("(a) vLLM in-process  (b) Drover: HTTP -> router -> engine app -> vLLM  (c) transformers")
    head = (
        f"{'workload':8} {'conc':>4} | {'tokens/s a / b / c':>22} | {'TTFT p50 ms a / b / c':>24}"
    )
    print(head + f" | {'TTFT p99 ms a / b':>18} | {'ITL p50 ms a / b / c':>21}")
    for cell in r["cells"]:
        a, b, c = cell["a"], cell["b"], cell["c"]
        print(
            f"{cell['workload']:8} {cell['concurrency']:>4} | "
            f"{a['tokens_per_s']:6.0f} / {b['tokens_per_s']:6.0f} / {c['tokens_per_s']:6.0f} | "
            f"{a['ttft_p50_ms']:7.0f} / {b['ttft_p50_ms']:6.0f} / {c['ttft_p50_ms']:7.0f} | "
            f"{a['ttft_p99_ms']:7.0f} / {b['ttft_p99_ms']:7.0f} | "
            f"{a['itl_p50_ms']:5.1f} / {b['itl_p50_ms']:5.1f} / {c['itl_p50_ms']:6.1f}"
        )
    print("RSS per replica (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in r["rss_mb"].items()))
    print("goals:")
    for what, value, goal, met in goals(r):
        print(f"  {'met ' if met else 'MISS'} {what}: {value:.2f} (goal {goal})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=32, help="requests per cell")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    result["goals"] = [{"what": w, "value": v, "goal": g, "met": m} for w, v, g, m in goals(result)]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
