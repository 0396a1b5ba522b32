"""Serving benchmark: continuous batching vs one-by-one, and the router's overhead over generate.

Starts its own local Ray head (loopback, free ports) in Serve's high-throughput mode, as Drover's
RayServices run (`SERVE_RUNTIME_ENV`; HAProxy itself is not started here: it would bind every
interface, so requests go to the router replica's own HTTP server, which is where HAProxy forwards
them), builds a tiny GPT-2, deploys the Drover Serve application twice side by side (maxNumSeqs B
and 1) through the dashboard's declarative API (as KubeRay does) and measures, interleaved so that
both see the same machine load:
  1. requests/s at concurrency C with `maxNumSeqs` B vs `maxNumSeqs` 1 (goal: >= 2x), for
     plain and for streamed completions;
  2. p50 latency of one request through HTTP + router + model replica vs `model.generate` in
     this process on the same model and prompt (goal: overhead <= 5 ms). Also shown: the same
     against the replica's own engine run in this process (faster than `model.generate`, so
     that difference is the plumbing alone), and the path through Serve's Python proxy.
Usage: python bench/serving.py [--concurrency 8] [--max-num-seqs 8] [--max-tokens 256] [--json]
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

from drover.local.components import LOCAL_SERVE_ENV as BENCH_ENV  # noqa: E402

PROMPT = "Refunds are issued within"


def _apps(model: str, max_num_seqs: int, max_tokens: int) -> list[dict[str, Any]]:
    """One service as the operator builds it: a router application and its version `v1`."""
    name = f"bench-b{max_num_seqs}"
    service = {"name": "bench", "namespace": "bench"}
    runtime = {"maxNumSeqs": max_num_seqs, "maxTokens": max_tokens, "maxQueuedRequests": 1024}
    return [
        {
            "name": name,
            "route_prefix": f"/b{max_num_seqs}",
            "import_path": "drover_workers.serve.app:build_router",
            "args": {"service": service, "runtime": runtime},
            "deployments": [{"name": "router", "user_config": {"versions": ["v1"]}}],
        },
        {
            "name": f"{name}-v1",
            "route_prefix": None,
            "import_path": "drover_workers.serve.app:build_model",
            "args": {
                "service": service,
                "version": {"name": "v1", "model": "tiny", "modelPath": model},
                "runtime": runtime,
            },
        },
    ]


def direct_ingress_port(app: str) -> int:
    """The port of the HTTP server the app's router replica runs itself (direct ingress)."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        if f"ServeReplica:{app}:router" not in " ".join(proc.info["cmdline"] or []):
            continue
        ports = [
            c.laddr.port
            for c in proc.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.ip == "127.0.0.1"
        ]
        if ports:
            return min(ports)
    raise RuntimeError(f"no direct-ingress HTTP server found for {app}'s router")


def deploy(
    head: RayHead, model: str, batch_sizes: list[int], max_tokens: int
) -> list[tuple[str, str]]:
    """Deploy one application per batch size side by side (so both are measured under the same
    machine load, interleaved); return their OpenAI base URLs (direct ingress, Serve's proxy)
    once they answer."""
    config = {
        "http_options": {"host": "127.0.0.1", "port": head.serve_port},
        "applications": [app for b in batch_sizes for app in _apps(model, b, max_tokens)],
    }
    req = urllib.request.Request(
        f"{head.dashboard_url}/api/serve/applications/",
        data=json.dumps(config).encode(),
        method="PUT",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=60).close()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            urls = []
            for b in batch_sizes:
                direct = f"http://127.0.0.1:{direct_ingress_port(f'bench-b{b}')}/b{b}"
                for base in (direct, f"{head.serve_url}/b{b}"):
                    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
                        assert json.loads(resp.read())["ready"] == ["v1"]
                urls.append((f"{direct}/v1", f"{head.serve_url}/b{b}/v1"))
            return urls
        except (OSError, AssertionError, RuntimeError):
            time.sleep(1)
    raise RuntimeError("the bench applications did not become ready within 300 s")


async def _load(
    base: str, concurrency: int, requests: int, max_tokens: int, stream: bool = False
) -> dict[str, float]:
    import httpx

    body = {
        "model": "bench",
        "prompt": PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    }
    latencies: list[float] = []
    left = requests

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            start = time.perf_counter()
            async with client.stream("POST", f"{base}/completions", json=body) as resp:
                resp.raise_for_status()
                text = (await resp.aread()).decode()
            if stream and not text.rstrip().endswith("data: [DONE]"):
                raise RuntimeError(f"a stream ended without [DONE]: {text[-200:]!r}")
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


def overhead(urls: tuple[str, str], model: str, max_tokens: int, n: int) -> dict[str, float]:
    """p50 ms of one request through HTTP + router + replica (direct ingress, and Serve's proxy),
    of the replica's engine in this process, and of `model.generate`, on the same model and
    prompt; interleaved so all see the same load."""
    import httpx

    from drover_workers.serve.engine import GenRequest, TextEngine

    engine = TextEngine(model)
    engine.warm_up()
    req = GenRequest(prompt=PROMPT, max_tokens=max_tokens, temperature=0)
    ids = engine.tokenizer(PROMPT, return_tensors="pt")
    body = {"model": "bench", "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0}
    pad = engine.tokenizer.pad_token_id

    def hf_generate() -> None:
        engine.model.generate(
            **ids, max_new_tokens=max_tokens, min_new_tokens=max_tokens, do_sample=False,
            pad_token_id=pad,
        )  # fmt: skip

    times: dict[str, list[float]] = {"direct": [], "proxy": [], "engine": [], "generate": []}
    with httpx.Client(timeout=60) as client:
        for url in urls:
            client.post(f"{url}/completions", json=body).raise_for_status()
        hf_generate()
        for _ in range(n):
            for key, url in zip(("direct", "proxy"), urls, strict=True):
                start = time.perf_counter()
                resp = client.post(f"{url}/completions", json=body)
                resp.raise_for_status()
                times[key].append(time.perf_counter() - start)
                assert resp.json()["usage"]["completion_tokens"] == max_tokens
            start = time.perf_counter()
            assert engine.generate_batch([req])[0].completion_tokens == max_tokens
            times["engine"].append(time.perf_counter() - start)
            start = time.perf_counter()
            hf_generate()
            times["generate"].append(time.perf_counter() - start)
    return {key: 1000 * statistics.median(values) for key, values in times.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="drover-bench-serving-"))
    model = str(build_tiny_gpt2(workdir / "tiny"))
    head = start_ray_head(Path(tempfile.mkdtemp(prefix="drover-ray-bench-", dir="/tmp")))
    kinds = ("batched", "one_by_one", "batched_stream", "one_by_one_stream")
    rounds: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    try:
        batched, single = deploy(head, model, [args.max_num_seqs, 1], args.max_tokens)
        per_round = max(args.concurrency, args.requests // args.rounds)
        for _ in range(args.rounds):  # interleaved: A B A B ..., same conditions for both
            for key in kinds:
                url = (batched if key.startswith("batched") else single)[0]
                load = _load(url, args.concurrency, per_round, args.max_tokens, "stream" in key)
                rounds[key].append(asyncio.run(load))
        p50 = overhead(single, model, args.overhead_tokens, args.overhead_requests)
    finally:
        head.stop()
    results: dict[str, Any] = {"config": vars(args), "environment": BENCH_ENV}
    for key, measured in rounds.items():
        results[key] = {
            "requests_per_s": statistics.median(r["requests_per_s"] for r in measured),
            "p50_ms": statistics.median(r["p50_ms"] for r in measured),
            "p95_ms": statistics.median(r["p95_ms"] for r in measured),
        }
    for suffix in ("", "_stream"):
        results[f"batching_speedup{suffix}"] = (
            results[f"batched{suffix}"]["requests_per_s"]
            / results[f"one_by_one{suffix}"]["requests_per_s"]
        )
    results["p50_ms"] = p50
    results["router_overhead_p50_ms"] = p50["direct"] - p50["generate"]
    results["router_overhead_vs_engine_p50_ms"] = p50["direct"] - p50["engine"]
    results["proxy_path_overhead_p50_ms"] = p50["proxy"] - p50["generate"]
    results["goals"] = {
        "batching_speedup>=2": results["batching_speedup"] >= 2.0,
        "stream_batching_speedup>=2": results["batching_speedup_stream"] >= 2.0,
        "router_overhead_p50<=5ms": results["router_overhead_p50_ms"] <= 5.0,
    }
    return results


def _row(label: str, value: float, base: float | None = None, ratio: float | None = None) -> None:
    cells = f"{value:>10.2f}" + (f"{base:>10.2f}" if base is not None else "")
    print(f"{label:<48}{cells}" + (f"{ratio:>7.2f}x" if ratio is not None else ""))


def print_table(r: dict[str, Any]) -> None:
    c = r["config"]
    print(
        f"Serving benchmark (tiny GPT-2, max_tokens {c['max_tokens']}, {c['requests']} requests "
        f"per configuration; Ray env {r['environment']})"
    )
    print(f"{'measure':<48}{'value':>10}{'baseline':>10}{'ratio':>8}")
    for suffix, what in (("", "completions"), ("_stream", "streamed")):
        b, s = r[f"batched{suffix}"], r[f"one_by_one{suffix}"]
        label = f"{what} req/s @ {c['concurrency']}, maxNumSeqs {c['max_num_seqs']} vs 1"
        _row(label, b["requests_per_s"], s["requests_per_s"], r[f"batching_speedup{suffix}"])
        _row("  p50 latency ms, batched vs one-by-one", b["p50_ms"], s["p50_ms"])
    p = r["p50_ms"]
    _row(
        f"p50 ms, {c['overhead_tokens']} tokens: router vs model.generate",
        p["direct"],
        p["generate"],
    )
    _row("  the replica's engine in-process", p["engine"])
    _row("  via Serve's proxy and the router", p["proxy"])
    _row("router overhead p50 ms (goal <= 5)", r["router_overhead_p50_ms"])
    _row("  over the replica's engine in-process", r["router_overhead_vs_engine_p50_ms"])
    _row("  via Serve's proxy (not the production path)", r["proxy_path_overhead_p50_ms"])
    for goal, ok in r["goals"].items():
        print(f"goal {goal}: {'met' if ok else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-num-seqs", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--requests", type=int, default=96, help="per configuration")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--overhead-requests", type=int, default=200)
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
