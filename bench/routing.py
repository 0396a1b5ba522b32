"""Replica routing benchmark (#17): Ray Serve's default router against Drover's prefix-aware one.

One local Ray head, one service, one version on 3 vLLM replicas (0.5 CPU each; the bench
model of bench/serving.py, a Llama-shaped ~85M-parameter model, 512 MiB of KV cache per
replica). The same workload runs through both routers in alternating rounds (power of two
choices, prefix-aware, power of two, prefix-aware, ...); switching the router restarts only the
whole service (Ray Serve 2.60 hashes a declarative deployment's request_router_config into its
application's code version), so every round starts on fresh engines with empty caches; every
round also salts its prompts' first characters.

Workload of one round (seeded; each request streamed, 16 tokens out, temperature 0):
- RAG: 22 chats of [system: a shared ~80-token instruction + one of 8 retrieved documents of
  ~1000 tokens, user: a ~20-token question], as Drover's retrieval sends them; document 0 is hot
  (8 requests), the 7 others get 2 each; 4 closed-loop clients.
- Multi-turn chat: 6 conversations, each with its own ~500-token system prompt, 3 turns (each
  turn sends the earlier turns and answers, so its prompt extends the last one), the client's
  session in `x-session-id`; one closed-loop client per conversation.
So 14 distinct prefixes (8 documents, 6 conversations), 40 requests and 10 clients per round.

Reported per router: TTFT p50/p90 (first streamed text), requests/s over the round, the busiest
replica's share of requests over the mean share (vLLM's request counter per ReplicaId), and
vLLM's prefix-cache hit rate. Goals (#17): p50 and p90 TTFT at least 30% lower, throughput no
lower, busiest replica's share at most 1.5x the mean.

Usage: python bench/routing.py [--rounds 2] [--json]   (not a test; about 5-10 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")  # stdout is for the table/JSON
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.fixtures.ray_cluster import RayHead, start_ray_head  # noqa: E402

from _serving_paths import _text, build_bench_model  # noqa: E402
from drover.api.inferenceservice import ReplicaRouting  # noqa: E402
from drover.builders.serving import REQUEST_ROUTER_CLASSES, SERVE_RUNTIME_ENV  # noqa: E402

APP, ENGINE, REPLICAS = "bench", "v1", 3
ROUTERS = ("power-of-two-choices", "prefix-aware")
BENCH_ENV = {k: v for k, v in SERVE_RUNTIME_ENV.items() if k != "RAY_SERVE_ENABLE_HA_PROXY"}
RUNTIME = {
    "maxNumSeqs": 16,
    "maxModelLen": 2048,
    "dtype": "bfloat16",
    "kvCacheMemoryBytes": 512 << 20,
    "maxTokens": 64,
    "maxSurgePercent": 0,  # 3 old and 3 new engines would not fit this machine's memory
}
DOCS, DOC_TOKENS, HOT_DOC_REQUESTS, DOC_REQUESTS = 8, 1000, 8, 2
CHATS, CHAT_SYSTEM_TOKENS, TURNS = 6, 500, 3
RAG_CLIENTS, MAX_TOKENS = 4, 16


@dataclass
class Workload:
    instruction: str
    documents: list[str]
    questions: list[str]  # one per RAG request
    rag_docs: list[int]  # the document of each RAG request
    chat_systems: list[str]
    chat_turns: list[list[str]]  # per conversation, the user message of each turn


@dataclass
class Shot:
    ttft: float
    end: float
    tokens: int


@dataclass
class Round:
    router: str
    shots: list[Shot] = field(default_factory=list)
    wall: float = 0.0
    per_replica: dict[str, float] = field(default_factory=dict)
    prefix_hits: float = 0.0
    prefix_queries: float = 0.0


def build_workload(model_dir: str, seed: int = 0) -> Workload:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    rng = random.Random(seed)
    rag_docs = [0] * HOT_DOC_REQUESTS + [d for d in range(1, DOCS) for _ in range(DOC_REQUESTS)]
    rng.shuffle(rag_docs)
    return Workload(
        instruction=_text(tok, rng, 80),
        documents=[_text(tok, rng, DOC_TOKENS) for _ in range(DOCS)],
        questions=[_text(tok, rng, 20) for _ in rag_docs],
        rag_docs=rag_docs,
        chat_systems=[_text(tok, rng, CHAT_SYSTEM_TOKENS) for _ in range(CHATS)],
        chat_turns=[[_text(tok, rng, 20) for _ in range(TURNS)] for _ in range(CHATS)],
    )


def serve_config(head: RayHead, model: str, router: str) -> dict[str, Any]:
    """The router and one engine application with 3 replicas, `router` choosing among them
    (what the operator writes for spec.runtime.replicaRouting)."""
    service = {"name": APP, "namespace": "bench"}
    rrc: dict[str, Any] = {"request_router_class": REQUEST_ROUTER_CLASSES[ReplicaRouting(router)]}
    if router == "prefix-aware":
        rrc["request_router_kwargs"] = {"service": APP, "namespace": "bench", "version": ENGINE}
        rrc["request_routing_stats_period_s"] = 1.0
    router_runtime = {"maxTokens": 64, "maxQueuedRequests": 1024, "replicaRouting": router}
    engine = {
        "name": "model",
        "num_replicas": REPLICAS,
        "max_ongoing_requests": 32,
        "ray_actor_options": {"num_cpus": 0.5},
        "request_router_config": rrc,
    }
    return {
        "http_options": {"host": "127.0.0.1", "port": head.serve_port},
        "applications": [
            {
                "name": APP,
                "route_prefix": f"/{APP}",
                "import_path": "drover_workers.serve.app:build_router",
                "args": {"service": service, "runtime": router_runtime},
                "deployments": [
                    {
                        "name": "router",
                        "user_config": {"versions": [ENGINE], "weights": {ENGINE: 100}},
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


def running(head: RayHead, app: str, deployment: str) -> list[str]:
    apps = _get(f"{head.dashboard_url}/api/serve/applications/")["applications"]
    replicas = apps.get(app, {}).get("deployments", {}).get(deployment, {}).get("replicas", [])
    return sorted(r["replica_id"] for r in replicas if r["state"] == "RUNNING")


def apply(head: RayHead, config: dict[str, Any], old: list[str]) -> None:
    """PUT the config; wait until a new router replica (one that built its handles with this
    config's request router) and 3 new engines are the only replicas (`old`: the ones before)."""
    req = urllib.request.Request(
        f"{head.dashboard_url}/api/serve/applications/",
        data=json.dumps(config).encode(),
        method="PUT",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=60).close()
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        try:
            router = running(head, APP, "router")
            engines = running(head, f"{APP}-{ENGINE}", "model")
            ok = _get(f"{head.serve_url}/{APP}/healthz")["ready"] == [ENGINE]
            fresh = not set(router + engines) & set(old)
            if ok and fresh and len(engines) == REPLICAS and len(router) == 1:
                return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError("the bench service did not become ready within 900 s")


def engine_counters(head: RayHead) -> dict[str, dict[str, float]]:
    """vLLM's finished requests per replica and its prefix-cache hits and queries."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(head.metrics_url, timeout=30) as resp:
        text = resp.read().decode()
    out: dict[str, dict[str, float]] = {"requests": {}, "hits": {}, "queries": {}}
    names = {
        "ray_vllm_request_success_total": "requests",
        "ray_vllm_prefix_cache_hits_total": "hits",
        "ray_vllm_prefix_cache_queries_total": "queries",
    }
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = names.get(s.name)
            if key and s.labels.get("service") == APP:
                rid = s.labels.get("ReplicaId", "?")
                out[key][rid] = out[key].get(rid, 0.0) + float(s.value)
    return out


def _diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


async def stream_chat(
    client: Any, url: str, messages: list[dict], session: str
) -> tuple[Shot, str]:
    body = {
        "model": APP,
        "messages": messages,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": True,
    }
    headers = {"x-session-id": session} if session else {}
    sent, first, text, tokens = time.monotonic(), None, [], 0
    async with client.stream("POST", url, json=body, headers=headers) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            piece = (chunk["choices"][0].get("delta") or {}).get("content") or ""
            if piece and first is None:
                first = time.monotonic()
            text.append(piece)
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    end = time.monotonic()
    return Shot((first or end) - sent, end, tokens), "".join(text)


async def run_round(url: str, w: Workload, salt: str) -> tuple[list[Shot], float]:
    """One round: 6 conversation clients and 4 RAG clients at once; (shots, wall seconds)."""
    import httpx

    shots: list[Shot] = []
    rag = list(range(len(w.rag_docs)))
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=64)) as c:

        async def conversation(i: int) -> None:
            messages = [{"role": "system", "content": f"{salt} {w.chat_systems[i]}"}]
            for turn in w.chat_turns[i]:
                messages.append({"role": "user", "content": turn})
                shot, answer = await stream_chat(c, url, messages, f"{salt}-chat-{i}")
                shots.append(shot)
                messages.append({"role": "assistant", "content": answer})

        async def rag_client() -> None:
            while rag:
                j = rag.pop()
                doc = w.documents[w.rag_docs[j]]
                system = f"{salt} {w.instruction}\n\nContext:\n{doc}"
                messages = [
                    {"role": "system", "content": system},
                    {"role": "user", "content": w.questions[j]},
                ]
                shots.append((await stream_chat(c, url, messages, ""))[0])

        start = time.monotonic()
        await asyncio.gather(
            *(conversation(i) for i in range(CHATS)), *(rag_client() for _ in range(RAG_CLIENTS))
        )
    return shots, time.monotonic() - start


async def measured_round(head: RayHead, w: Workload, router: str, salt: str) -> Round:
    before = engine_counters(head)
    shots, wall = await run_round(f"{head.serve_url}/{APP}/v1/chat/completions", w, salt)
    deadline = time.monotonic() + 60  # Ray exports metrics every few seconds
    after = engine_counters(head)
    while time.monotonic() < deadline:
        if sum(_diff(after["requests"], before["requests"]).values()) >= len(shots):
            break
        await asyncio.sleep(2)
        after = engine_counters(head)
    return Round(
        router,
        shots,
        wall,
        _diff(after["requests"], before["requests"]),
        sum(_diff(after["hits"], before["hits"]).values()),
        sum(_diff(after["queries"], before["queries"]).values()),
    )


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _busiest(r: Round) -> tuple[list[float], float]:
    """A round's requests per replica (busiest first; every round has its own engines) and the
    busiest one's share over the mean share."""
    counts = (sorted(r.per_replica.values(), reverse=True) + [0.0] * REPLICAS)[:REPLICAS]
    mean = sum(counts) / REPLICAS
    return counts, (counts[0] / mean if mean else 0.0)


def summary(rounds: list[Round]) -> dict[str, Any]:
    ttft = [s.ttft for r in rounds for s in r.shots]
    wall = sum(r.wall for r in rounds)
    queries = sum(r.prefix_queries for r in rounds)
    return {
        "requests": len(ttft),
        "ttft_p50_ms": 1000 * statistics.median(ttft),
        "ttft_p90_ms": _p(ttft, 0.9),
        "requests_per_s": len(ttft) / wall,
        "tokens_per_s": sum(s.tokens for r in rounds for s in r.shots) / wall,
        "busiest_share_over_mean": max(_busiest(r)[1] for r in rounds),
        "replica_requests": [_busiest(r)[0] for r in rounds],
        "prefix_cache_hit_rate": sum(r.prefix_hits for r in rounds) / queries if queries else 0.0,
        "rounds": [
            {
                "ttft_p50_ms": 1000 * statistics.median([s.ttft for s in r.shots]),
                "ttft_p90_ms": _p([s.ttft for s in r.shots], 0.9),
                "wall_s": r.wall,
            }
            for r in rounds
        ],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="drover-bench-routing-"))
    model, _ = build_bench_model(work)
    w = build_workload(model)
    head = start_ray_head(work / "ray", extra_env=BENCH_ENV)
    rounds: list[Round] = []
    try:
        replicas: list[str] = []
        for i in range(args.rounds * len(ROUTERS)):
            name = ROUTERS[i % len(ROUTERS)]
            apply(head, serve_config(head, model, name), replicas)
            replicas = running(head, APP, "router") + running(head, f"{APP}-{ENGINE}", "model")
            rounds.append(await measured_round(head, w, name, f"[round {i}]"))
            print(f"  round {i} ({name}): {rounds[-1].wall:.1f} s", file=sys.stderr, flush=True)
    finally:
        head.stop()
    result: dict[str, Any] = {
        "workload": {
            "rag": {"documents": DOCS, "document_tokens": DOC_TOKENS, "requests": len(w.rag_docs)},
            "chat": {"conversations": CHATS, "system_tokens": CHAT_SYSTEM_TOKENS, "turns": TURNS},
            "distinct_prefixes": DOCS + CHATS,
            "clients": CHATS + RAG_CLIENTS,
            "max_tokens": MAX_TOKENS,
            "replicas": REPLICAS,
            "rounds_per_router": args.rounds,
        },
        "routers": {r: summary([x for x in rounds if x.router == r]) for r in ROUTERS},
    }
    return result


def goals(r: dict[str, Any]) -> list[tuple[str, float, str, bool]]:
    base, ours = r["routers"]["power-of-two-choices"], r["routers"]["prefix-aware"]
    out = []
    for q in ("p50", "p90"):
        cut = 1 - ours[f"ttft_{q}_ms"] / base[f"ttft_{q}_ms"]
        out.append((f"{q} TTFT lower by", cut, ">= 30%", cut >= 0.30))
    ratio = ours["requests_per_s"] / base["requests_per_s"]
    out.append(("throughput prefix-aware / default", ratio, ">= 1.0x", ratio >= 1.0))
    busiest = ours["busiest_share_over_mean"]
    out.append(("busiest replica share / mean (prefix-aware)", busiest, "<= 1.5x", busiest <= 1.5))
    return out


def print_table(r: dict[str, Any]) -> None:
    wl = r["workload"]
    print(
        f"3 replicas, {wl['distinct_prefixes']} distinct prefixes ({wl['rag']['documents']} "
        f"documents of ~{wl['rag']['document_tokens']} tokens, {wl['chat']['conversations']} "
        f"chats x {wl['chat']['turns']} turns), {wl['clients']} clients, "
        f"{wl['rounds_per_router']} rounds per router"
    )
    print(
        f"{'router':22} | {'TTFT p50 ms':>11} | {'TTFT p90 ms':>11} | {'req/s':>6} | "
        f"{'busiest/mean':>12} | {'per replica, by round':>21} | {'cache hits':>10}"
    )
    for name, s in r["routers"].items():
        per = " ".join("/".join(f"{n:.0f}" for n in c) for c in s["replica_requests"])
        print(
            f"{name:22} | {s['ttft_p50_ms']:11.0f} | {s['ttft_p90_ms']:11.0f} | "
            f"{s['requests_per_s']:6.2f} | {s['busiest_share_over_mean']:12.2f} | {per:>21} | "
            f"{s['prefix_cache_hit_rate']:10.0%}"
        )
    print("goals:")
    for what, value, goal, met in goals(r):
        shown = f"{value:.0%}" if "%" in goal else f"{value:.2f}"
        print(f"  {'met ' if met else 'MISS'} {what}: {shown} (goal {goal})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds per router (interleaved)")
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
