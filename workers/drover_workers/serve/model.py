"""Serve layer: the model deployment (`model` in application `<svc>-<version>`), one per version.

A replica starts one vLLM engine (engine.py) for the version's weights (its LoRA adapter applied
per request on the base weights), runs a warm-up generation in its constructor so Serve marks it
RUNNING (and the router routes to it) only once it can answer, and applies the fault-injection
settings from its `user_config` (`{"faults": {...}}`; off unless set). vLLM batches every request
of the replica, streamed or not, step by step (continuous batching).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

from ray import serve

from drover_workers.index.embed import Embedder
from drover_workers.serve.config import (
    FaultSpec,
    ModelUserConfig,
    RuntimeSpec,
    parse_model_user_config,
)
from drover_workers.serve.engine import GenRequest, VllmEngine
from drover_workers.serve.metrics import ModelMetrics

log = logging.getLogger("ray.serve")


class InjectedFault(RuntimeError):
    """A failure caused on purpose by the fault-injection setting."""


@serve.deployment(ray_actor_options={"num_cpus": 0.5}, health_check_period_s=5)
class ModelServer:
    """Generation (or embedding) for one version; called only by the router through handles."""

    async def __init__(self, spec: dict[str, Any]) -> None:
        self.version: str = spec["version"]
        self.task: str = spec["task"]
        self.settings = ModelUserConfig()
        self._rng = random.Random()
        self.metrics = ModelMetrics(spec["service"], spec["namespace"], self.version)
        startup = FaultSpec.model_validate(spec.get("faults") or {}).startup_delay_seconds
        if startup:
            await asyncio.sleep(startup)  # deliberately late readiness (tests, canary benchmark)
        runtime = RuntimeSpec.model_validate(spec["runtime"])
        self.engine: VllmEngine | None = None
        self.embedder: Embedder | None = None
        if self.task == "embedding":
            self.embedder = Embedder(spec["modelPath"])
            self.embedder.embed(["warm-up"])
            return
        self.engine = VllmEngine(
            spec["modelPath"],
            runtime,
            name=self.version,
            stat_loggers=[self.metrics.engine_stat_logger()],
        )
        took = await self.engine.warm_up()
        log.info("version %s warmed up in %.3fs", self.version, took)

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Faults per version, and the LoRA versions this engine serves: adapters no longer
        listed (a rolled-back or retired version) are unloaded; new ones load on first use."""
        self.settings = parse_model_user_config(user_config)
        if self.engine is not None:
            gone = await self.engine.unload_adapters(set(self.settings.adapters))
            if gone:
                log.info("unloaded LoRA adapter ids %s", gone)

    def record_routing_stats(self) -> dict[str, Any]:
        """The engine's load for the replica router (Serve pulls it every
        `request_routing_stats_period_s`): waiting and running requests, KV-cache usage and the
        LoRA adapters running, from vLLM's last scheduler stats."""
        return dict(self.metrics.engine)

    def check_health(self) -> None:
        if self.engine is not None and not self.engine.alive:
            raise RuntimeError("the vLLM engine has stopped")

    async def _inject(self, version: str | None) -> None:
        adapter = self.settings.adapters.get(version or "")
        faults = (adapter.faults if adapter else self.settings.faults) or FaultSpec()
        if faults.added_latency_seconds:
            await asyncio.sleep(faults.added_latency_seconds)
        if faults.error_rate and self._rng.random() < faults.error_rate:
            raise InjectedFault(f"injected fault in version {version or self.version}")

    async def generate(self, request: dict[str, Any]) -> dict[str, Any]:
        """One completion: its choices (text, finish_reason, logprobs) and usage, or a client
        `error`."""
        await self._inject(request.get("version"))
        assert self.engine is not None, "this version serves embeddings"
        result = await self.engine.complete(GenRequest(**request))
        if result.error:
            return {"error": result.error}
        return {
            "choices": result.choices,
            "usage": {
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
            },
        }

    async def generate_stream(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Stream pieces `{"choices": [...]}`, then the end with finish reasons and usage."""
        await self._inject(request.get("version"))
        assert self.engine is not None, "this version serves embeddings"
        async for item in self.engine.stream(GenRequest(**request)):
            yield item

    async def embed(self, texts: list[str]) -> dict[str, Any]:
        await self._inject(None)
        assert self.embedder is not None
        vectors, tokens = await asyncio.to_thread(self.embedder.embed_counted, texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"vectors": vectors.tolist(), "usage": usage}
