"""Serve layer: the engines a model replica runs. Text generation is vLLM's AsyncLLM (V1); no Ray
Serve here, so the engine is tested and benchmarked in-process too.

`engine_kwargs` maps the version's `runtime` onto vLLM's engine arguments (pure; table-tested).
`VllmEngine` owns one AsyncLLM: it renders chats with the tokenizer's template, refuses prompts
that do not fit the context with a client error, applies a LoRA version's adapter per request
(so every LoRA version of a base shares the base's engine and replicas), and yields whole
answers or streamed pieces. Sentence embeddings use the index's `Embedder` (see README: why
not vLLM's pooling runner).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drover_workers.serve.config import RuntimeSpec

# A stream's pieces after its first go out at most this often (Ray Serve LLM batches streamed
# tokens the same way, at 50 ms): each piece is a message through the router and the client's
# connection, and one per token costs throughput under load.
STREAM_INTERVAL_SECONDS = 0.02


def lora_id(name: str) -> int:
    """vLLM's integer id of an adapter, the same in every replica (derived from its name)."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:7], 16) + 1


@dataclass
class GenRequest:
    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    seed: int | None = None
    n: int = 1
    logprobs: int | None = None  # top alternatives per token; None: no logprobs at all
    response_format: dict[str, Any] | None = None  # {"json": schema} or {"json_object": True}
    version: str | None = None  # the version asked for (an adapter's name on a shared engine)
    adapter: str | None = None  # its LoRA adapter directory, when it is a LoRA version


@dataclass
class GenResult:
    choices: list[dict[str, Any]]  # {"index", "text", "finish_reason", "logprobs"?}
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None  # a client error (400): e.g. the prompt is too long


def logprobs_of(out: Any, k: int) -> dict[str, Any]:
    """A choice's logprobs in a wire-neutral shape: tokens, their logprobs and, per token, the
    top `k` alternatives as (token, logprob), from vLLM's per-position {token id: Logprob}."""
    tokens, values, tops = [], [], []
    for token_id, position in zip(out.token_ids, out.logprobs or [], strict=False):
        chosen = position[token_id]
        tokens.append(chosen.decoded_token or "")
        values.append(float(chosen.logprob))
        ranked = sorted(position.values(), key=lambda lp: lp.rank or 0)
        tops.append([(lp.decoded_token or "", float(lp.logprob)) for lp in ranked if lp.rank][:k])
    return {"tokens": tokens, "logprobs": values, "top": tops}


class AdapterUnsupported(RuntimeError):
    """A LoRA version reached an engine that cannot apply adapters."""


class PromptTooLong(ValueError):
    """The prompt and max_tokens do not fit the model's context (a client error, 400)."""

    def __init__(self, message: str, prompt_tokens: int) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens


def engine_kwargs(model_path: str, runtime: RuntimeSpec, *, lora: bool) -> dict[str, Any]:
    """vLLM `AsyncEngineArgs` keyword arguments for one version's engine.

    Tensor or pipeline parallelism > 1 runs vLLM's workers as Ray actors in the replica's own
    placement group (the bundles the operator puts in the deployment's options), as Ray Serve LLM
    does; a single device keeps vLLM's default executor.
    """
    kwargs: dict[str, Any] = {
        "model": model_path,
        "dtype": runtime.dtype,
        "max_num_seqs": runtime.max_num_seqs,
        "enable_prefix_caching": runtime.enable_prefix_caching,
        "enable_chunked_prefill": runtime.enable_chunked_prefill,
        "tensor_parallel_size": runtime.tensor_parallel_size,
        "pipeline_parallel_size": runtime.pipeline_parallel_size,
        "disable_log_stats": False,  # the stat loggers feed the Prometheus metrics
    }
    optional = {
        "max_model_len": runtime.max_model_len,
        "quantization": runtime.quantization,
        "gpu_memory_utilization": runtime.gpu_memory_utilization,
        "kv_cache_memory_bytes": runtime.kv_cache_memory_bytes,
    }
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    if runtime.tensor_parallel_size * runtime.pipeline_parallel_size > 1:
        kwargs["distributed_executor_backend"] = "ray"
    if lora and runtime.max_loras > 0:
        kwargs.update(
            enable_lora=True, max_lora_rank=runtime.max_lora_rank, max_loras=runtime.max_loras
        )
    return kwargs


def supports_lora(model_path: str) -> bool:
    """Whether vLLM can apply LoRA adapters to this checkpoint's architecture (GPT-2 cannot)."""
    from vllm.model_executor.models import supports_lora as model_supports_lora
    from vllm.model_executor.models.registry import ModelRegistry

    config = json.loads((Path(model_path) / "config.json").read_text(encoding="utf-8"))
    for arch in config.get("architectures") or []:
        cls = ModelRegistry._try_load_model_cls(arch)  # vLLM's own lookup by architecture name
        if cls is not None:
            return bool(model_supports_lora(cls))
    return False


def cpu_defaults() -> None:
    """On CPU, vLLM pins its OpenMP threads to cores it picks per process ("auto"), so every
    replica on a node would pin the same cores; let the OS spread them unless told otherwise."""
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")


class VllmEngine:
    """One vLLM AsyncLLM for a version: its base weights, and its LoRA adapter if it has one."""

    def __init__(
        self,
        model_path: str,
        runtime: RuntimeSpec,
        *,
        name: str,
        stat_loggers: list[Any] | None = None,
    ) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.platforms import current_platform
        from vllm.v1.engine.async_llm import AsyncLLM

        if current_platform.is_cpu():
            cpu_defaults()
        self.lora = runtime.max_loras > 0 and supports_lora(model_path)
        kwargs = engine_kwargs(model_path, runtime, lora=self.lora)
        args = AsyncEngineArgs(**kwargs, served_model_name=[name])
        self.llm = AsyncLLM.from_engine_args(args, stat_loggers=stat_loggers)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = int(self.llm.model_config.max_model_len)

    # -- requests ------------------------------------------------------------------------------

    def render(self, req: GenRequest) -> str:
        """The prompt: the tokenizer's chat template when it has one, else a plain transcript."""
        if req.messages is None:
            return req.prompt or ""
        if getattr(self.tokenizer, "chat_template", None):
            return str(
                self.tokenizer.apply_chat_template(
                    req.messages, tokenize=False, add_generation_prompt=True
                )
            )
        lines = [f"{m['role']}: {m['content']}" for m in req.messages]
        return "\n".join([*lines, "assistant:"])

    def _prepare(self, req: GenRequest, streaming: bool) -> tuple[list[int], Any]:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        ids = self.tokenizer.encode(self.render(req)) or [self.tokenizer.eos_token_id]
        limit = self.max_model_len - req.max_tokens
        if len(ids) > limit:
            raise PromptTooLong(
                f"the prompt has {len(ids)} tokens; with max_tokens={req.max_tokens} this model "
                f"accepts at most {max(limit, 0)} prompt tokens: shorten it or lower max_tokens",
                len(ids),
            )
        from vllm.sampling_params import StructuredOutputsParams

        structured = req.response_format or None
        params = SamplingParams(
            n=req.n,
            max_tokens=req.max_tokens,
            temperature=req.temperature,
            top_p=req.top_p,
            stop=list(req.stop) or None,
            stop_token_ids=list(req.stop_token_ids) or None,
            seed=req.seed,
            logprobs=req.logprobs,
            structured_outputs=StructuredOutputsParams(**structured) if structured else None,
            output_kind=RequestOutputKind.DELTA if streaming else RequestOutputKind.FINAL_ONLY,
        )
        return ids, params

    def _lora_request(self, req: GenRequest) -> Any:
        if not req.adapter:
            return None
        if not self.lora:
            raise AdapterUnsupported(
                f"version {req.version} is a LoRA adapter, but this engine runs without LoRA "
                "(runtime.maxLoras is 0, or vLLM cannot apply LoRA to this architecture)"
            )
        from vllm.lora.request import LoRARequest

        name = req.version or req.adapter
        return LoRARequest(name, lora_id(name), req.adapter)

    def _generate(self, ids: list[int], params: Any, lora: Any) -> Any:
        return self.llm.generate(
            {"prompt_token_ids": ids}, params, request_id=uuid.uuid4().hex, lora_request=lora
        )

    async def unload_adapters(self, keep: set[str]) -> list[str]:
        """Unload the adapters whose names are not in `keep` (a rolled-back or retired version);
        returns their names. Loading needs no call: the first request of a version loads it."""
        if not self.lora:
            return []
        wanted = {lora_id(name) for name in keep}
        loaded = await self.llm.list_loras()
        gone = [i for i in loaded if i not in wanted]
        for i in gone:
            await self.llm.remove_lora(i)
        return [str(i) for i in gone]

    async def complete(self, req: GenRequest) -> GenResult:
        """The whole answer to one request (a GenResult with `error` for a client error)."""
        try:
            ids, params = self._prepare(req, streaming=False)
        except PromptTooLong as exc:
            return GenResult([], exc.prompt_tokens, 0, error=str(exc))
        final = None
        async for output in self._generate(ids, params, self._lora_request(req)):
            final = output  # FINAL_ONLY: vLLM yields once, when the request ends
        assert final is not None, "vLLM ended a request without output"
        choices = []
        for out in sorted(final.outputs, key=lambda o: o.index):
            choice = {"index": out.index, "text": out.text}
            choice["finish_reason"] = out.finish_reason or "stop"
            if req.logprobs is not None:
                choice["logprobs"] = logprobs_of(out, req.logprobs)
            choices.append(choice)
        generated = sum(len(out.token_ids) for out in final.outputs)
        return GenResult(choices, len(ids), generated)

    async def stream(
        self, req: GenRequest, interval: float = STREAM_INTERVAL_SECONDS
    ) -> AsyncIterator[dict[str, Any]]:
        """`{"choices": [{"index", "text", "logprobs"?}]}` pieces, then `{"choices": [{"index",
        "finish_reason"}], "usage"}` (or one `{"error"}`). The first piece goes at once; later
        ones gather for `interval` and go as one."""
        try:
            ids, params = self._prepare(req, streaming=True)
        except PromptTooLong as exc:
            yield {"error": str(exc)}
            return
        pending: dict[int, dict[str, Any]] = {}
        finished: dict[int, str] = {}
        generated, sent_at, first = 0, 0.0, True
        async for output in self._generate(ids, params, self._lora_request(req)):
            for out in output.outputs:
                generated += len(out.token_ids)
                piece = pending.setdefault(out.index, {"index": out.index, "text": ""})
                piece["text"] += out.text
                if req.logprobs is not None:
                    lp = logprobs_of(out, req.logprobs)
                    have = piece.setdefault("logprobs", {"tokens": [], "logprobs": [], "top": []})
                    for key in have:
                        have[key].extend(lp[key])
                if out.finish_reason:
                    finished[out.index] = out.finish_reason
            now = time.monotonic()
            if output.finished or first or now - sent_at >= interval:
                ready = [p for p in pending.values() if p["text"] or p.get("logprobs")]
                pending.clear()
                if ready:
                    yield {"choices": sorted(ready, key=lambda p: p["index"])}
                    first, sent_at = False, now
            if output.finished:
                ends = [
                    {"index": i, "finish_reason": finished.get(i, "stop")} for i in range(req.n)
                ]
                usage = {"prompt_tokens": len(ids), "completion_tokens": generated}
                yield {"choices": ends, "usage": usage}

    async def warm_up(self) -> float:
        """One short generation; returns its duration. The replica is ready only after it."""
        start = time.perf_counter()
        await self.complete(GenRequest(prompt="Hello", max_tokens=2, temperature=0))
        return time.perf_counter() - start

    @property
    def alive(self) -> bool:
        return not self.llm.errored

    def shutdown(self) -> None:
        self.llm.shutdown()
