"""Serve layer: the text-generation engine a model replica runs (transformers + torch, no Ray).

`TextEngine` loads a causal LM (merging a peft LoRA adapter into it) from a directory, turns
requests into token sequences and makes the step-level `Scheduler` (decoding.py) that generates
them; `generate_batch` runs one to completion in the caller's thread. `EmbeddingEngine` gives
mean-pooled, normalised sentence vectors.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from drover_workers.serve.decoding import (
    GenRequest,
    GenResult,
    Scheduler,
    Sequence,
    Sink,
    cut_at_stop,
)

__all__ = [
    "EmbeddingEngine",
    "GenRequest",
    "GenResult",
    "PromptTooLong",
    "TextEngine",
    "cut_at_stop",
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class PromptTooLong(ValueError):
    """The prompt and max_tokens do not fit the model's context (a client error, 400)."""

    def __init__(self, message: str, prompt_tokens: int) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens


class TextEngine:
    """A causal LM and its tokenizer, loaded once per replica."""

    def __init__(self, model_path: str, adapter_path: str | None = None, dtype: str = "float32"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(1)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=DTYPES[dtype])
        if adapter_path:
            from peft import PeftModel

            # Merged once at load: serving then costs what the base model costs.
            model = PeftModel.from_pretrained(model, adapter_path).merge_and_unload()
        self.model = model.eval()
        self.max_positions = int(
            getattr(self.model.config, "n_positions", None)
            or getattr(self.model.config, "max_position_embeddings", 2048)
        )

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

    def _encode(self, req: GenRequest) -> tuple[list[int], str | None]:
        ids = self.tokenizer(self.render(req))["input_ids"] or [self.tokenizer.eos_token_id]
        limit = self.max_positions - req.max_tokens
        if len(ids) > limit:
            return ids, (
                f"the prompt has {len(ids)} tokens; with max_tokens={req.max_tokens} this model "
                f"accepts at most {max(limit, 0)} prompt tokens: shorten it or lower max_tokens"
            )
        return ids, None

    def sequence(self, req: GenRequest, sink: Sink, streaming: bool = False) -> Sequence:
        """A sequence for the scheduler; raises PromptTooLong (a client error) first."""
        ids, error = self._encode(req)
        if error:
            raise PromptTooLong(error, len(ids))
        return Sequence(
            req, ids, sink, self.tokenizer.decode, self.tokenizer.eos_token_id, streaming
        )

    def scheduler(self, max_batch_size: int) -> Scheduler:
        return Scheduler(self.model, int(self.tokenizer.pad_token_id), max_batch_size)

    def generate_batch(self, reqs: list[GenRequest]) -> list[GenResult]:
        """Answer `reqs` together in this thread (one scheduler run; used in-process)."""
        results: list[GenResult | None] = [None] * len(reqs)
        sched = self.scheduler(max(len(reqs), 1))
        for i, req in enumerate(reqs):

            def sink(event: dict[str, Any], i: int = i) -> None:
                if "result" in event:
                    results[i] = event["result"]

            try:
                sched.add(self.sequence(req, sink))
            except PromptTooLong as exc:
                results[i] = GenResult("", exc.prompt_tokens, 0, "stop", error=str(exc))
        while sched.busy:
            sched.step()
        return [r for r in results if r is not None]

    def warm_up(self) -> float:
        """One short generation; returns its duration. The replica is ready only after it."""
        start = time.perf_counter()
        self.generate_batch([GenRequest(prompt="Hello", max_tokens=2, temperature=0)])
        return time.perf_counter() - start


class EmbeddingEngine:
    """An encoder model giving mean-pooled, L2-normalised vectors (MiniLM and the like)."""

    def __init__(self, model_path: str, dtype: str = "float32") -> None:
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(1)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModel.from_pretrained(model_path, dtype=DTYPES[dtype]).eval()
        self.max_length = min(int(getattr(self.tokenizer, "model_max_length", 512)), 512)

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Vectors for `texts` and the number of tokens read."""
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        vectors = torch.nn.functional.normalize(pooled.float(), dim=-1)
        return vectors.tolist(), int(batch["attention_mask"].sum())
