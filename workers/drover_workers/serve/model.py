"""Serve layer: the model deployment (`model` in application `<svc>-<version>`), one per version.

A replica loads the weights (and LoRA adapter), runs a warm-up generation in its constructor so
Serve marks it RUNNING (and the router routes to it) only once it can answer, generates every
request (streamed or not) in one step-level batch on its generation thread (batcher.py), and
applies the fault-injection settings from its `user_config` (`{"faults": {...}}`; off unless set).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from ray import serve

from drover_workers.serve.batcher import Batcher
from drover_workers.serve.config import FaultSpec
from drover_workers.serve.engine import EmbeddingEngine, GenRequest, TextEngine
from drover_workers.serve.metrics import ModelMetrics

log = logging.getLogger("ray.serve")


class InjectedFault(RuntimeError):
    """A failure caused on purpose by the fault-injection setting."""


@serve.deployment(ray_actor_options={"num_cpus": 0.5}, health_check_period_s=5)
class ModelServer:
    """Generation (or embedding) for one version; called only by the router through handles."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.version: str = spec["version"]
        self.task: str = spec["task"]
        self.faults = FaultSpec()
        self._rng = random.Random()
        self.metrics = ModelMetrics(spec["service"], spec["namespace"], self.version)
        startup = FaultSpec.model_validate(spec.get("faults") or {}).startup_delay_seconds
        if self.task == "embedding":
            self.embedder: EmbeddingEngine | None = EmbeddingEngine(spec["modelPath"])
            self.embedder.embed(["warm-up"])
        else:
            self.engine = TextEngine(spec["modelPath"], spec.get("adapterPath"), spec["dtype"])
            took = self.engine.warm_up()
            log.info("version %s warmed up in %.3fs", self.version, took)
            self.batcher = Batcher(
                self.engine, int(spec["maxBatchSize"]), float(spec["batchWaitTimeoutSeconds"])
            )
        if startup:
            time.sleep(startup)  # deliberately late readiness (tests, canary benchmark)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self.faults = FaultSpec.model_validate((user_config or {}).get("faults") or {})

    def check_health(self) -> None:
        if self.task != "embedding" and not self.batcher.alive:
            raise RuntimeError("the generation thread has stopped")

    async def _inject(self) -> None:
        if self.faults.added_latency_seconds:
            await asyncio.sleep(self.faults.added_latency_seconds)
        if self.faults.error_rate and self._rng.random() < self.faults.error_rate:
            raise InjectedFault(f"injected fault in version {self.version}")

    async def generate(self, request: dict[str, Any]) -> dict[str, Any]:
        """One completion; returns text, usage and finish_reason (or a client `error`)."""
        await self._inject()
        self.metrics.set_queue_depth(self.batcher.waiting + 1)
        try:
            result = await self.batcher.complete(GenRequest(**request))
        finally:
            self.metrics.set_queue_depth(self.batcher.waiting)
        if result.error:
            return {"error": result.error}
        return {
            "text": result.text,
            "finish_reason": result.finish_reason,
            "usage": {
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
            },
        }

    async def generate_stream(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Stream pieces `{"text"}` then `{"finish_reason", "usage"}`, batched with the rest."""
        await self._inject()
        self.metrics.set_queue_depth(self.batcher.waiting + 1)
        async for item in self.batcher.stream(GenRequest(**request)):
            self.metrics.set_queue_depth(self.batcher.waiting)
            yield item

    async def embed(self, texts: list[str]) -> dict[str, Any]:
        await self._inject()
        assert self.embedder is not None
        vectors, tokens = await asyncio.to_thread(self.embedder.embed, texts)
        return {"vectors": vectors, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
