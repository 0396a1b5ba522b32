"""Serving benchmark support: the model, the workloads and the three paths that run them.

- `build_bench_model`: a Llama-shaped ~85M-parameter model built from a config (random weights,
  the local BPE tokenizer) and a rank-8 LoRA adapter for it; nothing is downloaded.
- `workload`: uniform, mixed-length (prompts 16-600 tokens, outputs 16-128) and shared
  system-prompt requests, seeded.
- Paths, each `run(requests, concurrency) -> [Sample]` as closed-loop clients:
  `VllmPath` (vLLM's AsyncLLM in this process, no Drover code: the limit), `HttpPath` (Drover's
  whole path over HTTP: router -> engine application -> vLLM, streamed), `NaivePath` (plain
  transformers `generate` on padded batches: the naive baseline).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS_WORDS = [
    "refund",
    "order",
    "delivery",
    "parcel",
    "express",
    "standard",
    "tracking",
    "payment",
    "card",
    "settings",
    "security",
    "password",
    "reset",
    "account",
    "invoice",
    "discount",
    "warranty",
    "return",
    "label",
    "courier",
    "address",
    "weekday",
    "support",
    "ticket",
    "priority",
    "escalation",
    "manager",
    "team",
    "quota",
    "accelerator",
    "cluster",
    "model",
    "version",
]


@dataclass
class Request:
    prompt: str
    prompt_tokens: int
    max_tokens: int


@dataclass
class Sample:
    ttft: float  # seconds from send to the first generated text
    itl: float  # mean seconds between tokens after the first (0 for one token)
    tokens: int  # generated tokens
    end: float  # monotonic time the answer ended


def build_bench_model(root: Path) -> tuple[str, str]:
    """(model dir, LoRA adapter dir): a 12-layer Llama, hidden 768 (~85M parameters), saved in
    bfloat16, the dtype every path runs it in; the adapter is rank 8 on q_proj."""
    from peft import LoraConfig, get_peft_model
    from tests.fixtures.tiny_models import build_tiny_llama
    from transformers import AutoModelForCausalLM

    model_dir, adapter_dir = root / "bench-llama", root / "bench-lora"
    build_tiny_llama(model_dir, hidden=768, layers=12, heads=12, positions=2048, dtype="bfloat16")
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    lora = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj"]))
    lora.save_pretrained(str(adapter_dir))
    return str(model_dir), str(adapter_dir)


def parameter_count(model_dir: str) -> int:
    from safetensors import safe_open

    with safe_open(str(Path(model_dir) / "model.safetensors"), "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118


def _text(tokenizer: Any, rng: random.Random, tokens: int) -> str:
    """Words until the tokenizer counts `tokens` tokens (within one word)."""
    words: list[str] = []
    while len(tokenizer.encode(" ".join(words))) < tokens:
        words.extend(rng.choice(CORPUS_WORDS) for _ in range(max(1, (tokens - len(words)) // 3)))
    return " ".join(words)


def workload(model_dir: str, kind: str, n: int, seed: int = 0) -> list[Request]:
    """`n` requests of one kind: uniform (64 in, 64 out), mixed (16-600 in, 16-128 out) or
    shared (one 400-token system prompt + a 24-token question, 16 out)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    rng = random.Random(seed)
    shared = _text(tok, random.Random(99), 400)
    out = []
    for _ in range(n):
        if kind == "uniform":
            prompt, max_tokens = _text(tok, rng, 64), 64
        elif kind == "mixed":
            prompt, max_tokens = _text(tok, rng, rng.randint(16, 600)), rng.randint(16, 128)
        else:
            prompt, max_tokens = shared + " " + _text(tok, rng, 24), 16
        out.append(Request(prompt, len(tok.encode(prompt)), max_tokens))
    return out


async def closed_loop(
    requests: list[Request], concurrency: int, one: Any
) -> tuple[list[Sample], float]:
    """Run `one(request) -> Sample` with `concurrency` clients; (samples, wall seconds)."""
    queue = list(reversed(requests))
    samples: list[Sample] = []

    async def client() -> None:
        while queue:
            samples.append(await one(queue.pop()))

    start = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return samples, time.monotonic() - start


def _sample(sent: float, first: float | None, tokens: int) -> Sample:
    end = time.monotonic()
    first = first or end
    return Sample(first - sent, (end - first) / (tokens - 1) if tokens > 1 else 0.0, tokens, end)


class VllmPath:
    """vLLM's AsyncLLM in this process, the same engine arguments as Drover's, no Drover code."""

    def __init__(self, model_dir: str, runtime: dict[str, Any], prefix_caching: bool = True):
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        from drover_workers.serve.config import RuntimeSpec
        from drover_workers.serve.engine import cpu_defaults, engine_kwargs

        cpu_defaults()  # the same CPU threading as Drover's replicas
        spec = RuntimeSpec.model_validate({**runtime, "enablePrefixCaching": prefix_caching})
        kwargs = engine_kwargs(model_dir, spec, lora=False)
        self.llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**kwargs))

    async def one(self, req: Request) -> Sample:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(
            max_tokens=req.max_tokens, temperature=0, output_kind=RequestOutputKind.DELTA
        )
        sent, first, tokens = time.monotonic(), None, 0
        async for out in self.llm.generate(req.prompt, params, request_id=uuid.uuid4().hex):
            tokens += len(out.outputs[0].token_ids)
            if first is None and out.outputs[0].text:  # first text, as a streaming client sees
                first = time.monotonic()
        return _sample(sent, first, tokens)

    def shutdown(self) -> None:
        self.llm.shutdown()


class HttpPath:
    """Drover's whole path: HTTP -> router replica -> engine application -> vLLM, streamed."""

    def __init__(self, base_url: str, model: str) -> None:
        import httpx

        self.base_url, self.model = base_url, model
        self.client = httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=64))

    async def one(self, req: Request) -> Sample:
        body = {
            "model": self.model,
            "prompt": req.prompt,
            "max_tokens": req.max_tokens,
            "temperature": 0,
            "stream": True,
        }
        sent, first, tokens = time.monotonic(), None, 0
        async with self.client.stream("POST", f"{self.base_url}/completions", json=body) as r:
            r.raise_for_status()
            async for line in r.aiter_lines():
                if not line.startswith("data: {"):
                    continue
                chunk = json.loads(line[6:])
                if first is None and chunk["choices"][0].get("text"):
                    first = time.monotonic()
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
        return _sample(sent, first, tokens)


class NaivePath:
    """Plain transformers `generate`: a batch of up to `concurrency` waiting requests, padded on
    the left, runs until its longest answer ends; the next batch waits for it."""

    def __init__(self, model_dir: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
        self.tok.pad_token = self.tok.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).eval()

    def run(self, requests: list[Request], concurrency: int) -> tuple[list[Sample], float]:
        from transformers import StoppingCriteria

        class Clock(StoppingCriteria):
            """Records when each generation step ends; never stops generation."""

            def __init__(self) -> None:
                self.steps: list[float] = []

            def __call__(self, *_: Any, **__: Any) -> Any:
                self.steps.append(time.monotonic())
                return False

        samples: list[Sample] = []
        start = time.monotonic()
        for i in range(0, len(requests), concurrency):
            batch = requests[i : i + concurrency]
            clock = Clock()

            enc = self.tok([r.prompt for r in batch], return_tensors="pt", padding=True)
            sent = time.monotonic()
            with self.torch.inference_mode():
                self.model.generate(
                    **enc,
                    max_new_tokens=max(r.max_tokens for r in batch),
                    min_new_tokens=max(r.max_tokens for r in batch),
                    do_sample=False,
                    pad_token_id=self.tok.eos_token_id,
                    stopping_criteria=[clock],
                )
            end = time.monotonic()
            for r in batch:  # a row's answer is there when its own last step is
                mine = clock.steps[: r.max_tokens]
                itl = (mine[-1] - mine[0]) / (len(mine) - 1) if len(mine) > 1 else 0.0
                samples.append(Sample(mine[0] - sent, itl, r.max_tokens, end))
        return samples, time.monotonic() - start
