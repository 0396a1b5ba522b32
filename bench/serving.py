"""Serving benchmark: dynamic batching vs one-by-one, and the router's overhead over raw generate.

Starts its own local Ray head (loopback, free ports), builds a tiny GPT-2, deploys the Drover Serve
application twice side by side (max batch B and 1) through the dashboard's declarative API (as
KubeRay does) and measures, interleaved so that both see the same machine load:
  1. requests/s at concurrency C with `maxBatchSize` B vs `maxBatchSize` 1 (goal: >= 2x);
  2. p50 latency of one request through HTTP + router + model replica (batch 1, so no batch wait)
     vs `model.generate` in this process on the same model and prompt (goal: overhead <= 5 ms).
Usage: python bench/serving.py [--concurrency 8] [--max-batch-size 8] [--max-tokens 256] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.ray_cluster import RayHead, start_ray_head  # noqa: E402
from tests.fixtures.tiny_models import build_tiny_gpt2  # noqa: E402

PROMPT = "Refunds are issued within"


def _app(model: str, max_batch_size: int, max_tokens: int) -> dict[str, Any]:
    return {
        "name": f"bench-b{max_batch_size}",
        "route_prefix": f"/b{max_batch_size}",
        "import_path": "drover_workers.serve.app:build_app",
        "args": {
            "service": {"name": "bench", "namespace": "bench"},
            "versions": [{"name": "v1", "model": "tiny", "modelPath": model}],
            "runtime": {
                "maxBatchSize": max_batch_size,
                "maxTokens": max_tokens,
                "maxQueuedRequests": 1024,
            },
        },
    }


def deploy(head: RayHead, model: str, batch_sizes: list[int], max_tokens: int) -> list[str]:
    """Deploy one application per batch size side by side (so both are measured under the same
    machine load, interleaved); return their OpenAI base URLs once they answer."""
    config = {
        "http_options": {"host": "127.0.0.1", "port": head.serve_port},
        "applications": [_app(model, b, max_tokens) for b in batch_sizes],
    }
    req = urllib.request.Request(
        f"{head.dashboard_url}/api/serve/applications/",
        data=json.dumps(config).encode(),
        method="PUT",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=60).close()
    bases = [f"{head.serve_url}/b{b}" for b in batch_sizes]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            for base in bases:
                with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
                    assert json.loads(resp.read())["ready"] == ["v1"]
            return [f"{base}/v1" for base in bases]
        except (OSError, AssertionError):
            time.sleep(1)
    raise RuntimeError("the bench applications did not become ready within 300 s")


async def _load(base: str, concurrency: int, requests: int, max_tokens: int) -> dict[str, float]:
    import httpx

    body = {"model": "bench", "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0}
    latencies: list[float] = []
    left = requests

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            start = time.perf_counter()
            resp = await client.post(f"{base}/completions", json=body)
            resp.raise_for_status()
            latencies.append(time.perf_counter() - start)

    async with httpx.AsyncClient(timeout=120) as client:
        await client.post(f"{base}/completions", json=body)  # connection + replica warm
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * statistics.quantiles(latencies, n=20)[18],
    }


def overhead(base: str, model: str, max_tokens: int, n: int) -> tuple[float, float]:
    """p50 ms of one request through HTTP + router + replica, and of `model.generate` in this
    process on the same model and prompt; the two are interleaved so both see the same load."""
    import httpx

    from drover_workers.serve.engine import GenRequest, TextEngine

    engine = TextEngine(model)
    engine.warm_up()
    req = GenRequest(prompt=PROMPT, max_tokens=max_tokens, temperature=0)
    body = {"model": "bench", "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0}
    routed, raw = [], []
    with httpx.Client(timeout=60) as client:
        client.post(f"{base}/completions", json=body).raise_for_status()
        for _ in range(n):
            start = time.perf_counter()
            client.post(f"{base}/completions", json=body).raise_for_status()
            routed.append(time.perf_counter() - start)
            start = time.perf_counter()
            engine.generate_batch([req])
            raw.append(time.perf_counter() - start)
    return 1000 * statistics.median(routed), 1000 * statistics.median(raw)


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="drover-bench-serving-"))
    model = str(build_tiny_gpt2(workdir / "tiny"))
    head = start_ray_head(Path(tempfile.mkdtemp(prefix="drover-ray-bench-", dir="/tmp")))
    rounds: dict[str, list[dict[str, float]]] = {"batched": [], "one_by_one": []}
    try:
        batched_url, single_url = deploy(head, model, [args.max_batch_size, 1], args.max_tokens)
        per_round = max(args.concurrency, args.requests // args.rounds)
        for _ in range(args.rounds):  # interleaved: A B A B ..., same conditions for both
            for key, url in (("batched", batched_url), ("one_by_one", single_url)):
                load = _load(url, args.concurrency, per_round, args.max_tokens)
                rounds[key].append(asyncio.run(load))
        router_p50, raw_p50 = overhead(
            single_url, model, args.overhead_tokens, args.overhead_requests
        )
    finally:
        head.stop()
    results: dict[str, Any] = {"config": vars(args)}
    for key, measured in rounds.items():
        results[key] = {
            "requests_per_s": statistics.median(r["requests_per_s"] for r in measured),
            "p50_ms": statistics.median(r["p50_ms"] for r in measured),
            "p95_ms": statistics.median(r["p95_ms"] for r in measured),
        }
    results["batching_speedup"] = (
        results["batched"]["requests_per_s"] / results["one_by_one"]["requests_per_s"]
    )
    results["router_p50_ms"] = router_p50
    results["raw_generate_p50_ms"] = raw_p50
    results["router_overhead_p50_ms"] = router_p50 - raw_p50
    results["goals"] = {
        "batching_speedup>=2": results["batching_speedup"] >= 2.0,
        "router_overhead_p50<=5ms": results["router_overhead_p50_ms"] <= 5.0,
    }
    return results


def print_table(r: dict[str, Any]) -> None:
    c = r["config"]
    print(f"Serving benchmark (tiny GPT-2, max_tokens {c['max_tokens']}, {c['requests']} requests)")
    print(f"{'measure':<44}{'value':>12}{'baseline':>12}{'ratio':>8}")
    b, s = r["batched"], r["one_by_one"]
    label = f"req/s @ concurrency {c['concurrency']}, batch {c['max_batch_size']} vs 1"
    print(
        f"{label:<44}"
        f"{b['requests_per_s']:>12.1f}{s['requests_per_s']:>12.1f}{r['batching_speedup']:>7.2f}x"
    )
    print(f"{'p50 latency ms, batched vs one-by-one':<44}{b['p50_ms']:>12.1f}{s['p50_ms']:>12.1f}")
    print(
        f"{'p50 ms via router vs raw generate':<44}{r['router_p50_ms']:>12.2f}"
        f"{r['raw_generate_p50_ms']:>12.2f}"
    )
    print(f"{'router overhead p50 ms (goal <= 5)':<44}{r['router_overhead_p50_ms']:>12.2f}")
    for goal, ok in r["goals"].items():
        print(f"goal {goal}: {'met' if ok else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--requests", type=int, default=144, help="per configuration")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--overhead-requests", type=int, default=100)
    parser.add_argument("--overhead-tokens", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
