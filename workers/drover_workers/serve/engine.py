"""Serve layer: the text-generation engine a model replica runs (transformers + torch, no Ray).

`TextEngine` loads a causal LM (and a peft LoRA adapter) from a directory and answers batches of
`GenRequest`s with `model.generate`, or streams one request token by token with a KV cache.
`EmbeddingEngine` gives mean-pooled, normalised sentence vectors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class GenRequest:
    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None


@dataclass
class GenResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    error: str | None = None  # a client error (400): e.g. the prompt is too long


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """The text up to the first stop sequence, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


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

            model = PeftModel.from_pretrained(model, adapter_path)
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

    def _sampling(self, req: GenRequest) -> dict[str, Any]:
        if req.temperature <= 0:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": req.temperature, "top_p": req.top_p}

    def _finish(self, req: GenRequest, new_ids: list[int], n_prompt: int) -> GenResult:
        eos = self.tokenizer.eos_token_id
        hit_eos = eos in new_ids
        if hit_eos:
            new_ids = new_ids[: new_ids.index(eos)]
        text, stopped = cut_at_stop(self.tokenizer.decode(new_ids), req.stop)
        done = "stop" if (hit_eos or stopped or len(new_ids) < req.max_tokens) else "length"
        return GenResult(text, n_prompt, len(new_ids), done)

    @torch.inference_mode()
    def generate_batch(self, reqs: list[GenRequest]) -> list[GenResult]:
        """Answer a batch with one `generate` call per group of equal sampling settings."""
        results: list[GenResult | None] = [None] * len(reqs)
        groups: dict[tuple[Any, ...], list[int]] = {}
        encoded: dict[int, list[int]] = {}
        for i, req in enumerate(reqs):
            ids, error = self._encode(req)
            if error:
                results[i] = GenResult("", len(ids), 0, "stop", error=error)
                continue
            encoded[i] = ids
            key = (req.temperature, req.top_p, req.seed)
            groups.setdefault(key, []).append(i)
        for (_, _, seed), idx in groups.items():
            if seed is not None:
                torch.manual_seed(seed)
            batch = self.tokenizer.pad(
                {"input_ids": [encoded[i] for i in idx]}, return_tensors="pt", padding=True
            )
            out = self.model.generate(
                **batch,
                max_new_tokens=max(reqs[i].max_tokens for i in idx),
                pad_token_id=self.tokenizer.pad_token_id,
                **self._sampling(reqs[idx[0]]),
            )
            width = batch["input_ids"].shape[1]
            for row, i in enumerate(idx):
                new_ids = out[row, width:].tolist()[: reqs[i].max_tokens]
                results[i] = self._finish(reqs[i], new_ids, len(encoded[i]))
        return [r for r in results if r is not None]

    @torch.inference_mode()
    def stream(self, req: GenRequest) -> Iterator[dict[str, Any]]:
        """Yield `{"text": delta}` pieces, then one `{"finish_reason", "usage"}` item."""
        ids, error = self._encode(req)
        if error:
            yield {"error": error}
            return
        if req.seed is not None:
            torch.manual_seed(req.seed)
        hold = max((len(s) for s in req.stop), default=1) - 1
        input_ids = torch.tensor([ids])
        past, generated, sent, finish = None, [], 0, "length"
        for _ in range(req.max_tokens):
            out = self.model(input_ids=input_ids, past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = self._pick(out.logits[0, -1], req)
            if token == self.tokenizer.eos_token_id:
                finish = "stop"
                break
            generated.append(token)
            text, stopped = cut_at_stop(self.tokenizer.decode(generated), req.stop)
            if stopped:
                finish = "stop"
                if len(text) > sent:
                    yield {"text": text[sent:]}
                    sent = len(text)
                break
            safe = len(text) - hold  # hold back what may be the start of a stop sequence
            if safe > sent and not text.endswith("\ufffd"):
                yield {"text": text[sent:safe]}
                sent = safe
            input_ids = torch.tensor([[token]])
        text, _ = cut_at_stop(self.tokenizer.decode(generated), req.stop)
        if len(text) > sent:
            yield {"text": text[sent:]}
        usage = {"prompt_tokens": len(ids), "completion_tokens": len(generated)}
        yield {"finish_reason": finish, "usage": usage}

    def _pick(self, logits: torch.Tensor, req: GenRequest) -> int:
        if req.temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits.float() / req.temperature, dim=-1)
        if req.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < req.top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
        return int(torch.multinomial(probs / probs.sum(), 1))

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
