"""Serve layer: step-level (continuous) batching of text generation. torch + transformers, no Ray.

`Scheduler.step()` runs one forward pass over every running sequence and gives each its next
token. New sequences join between steps (their prompts are prefilled together and their KV cache
is merged into the running one), finished ones leave; nobody waits for a whole batch to end. This
is the scheduling vLLM and TGI use, done with a model's own `forward` and a left-padded
`DynamicCache`, so streaming and non-streaming requests share every batch.

Why not `@serve.batch`: it forms the next batch as soon as one request arrives while the current
batch still runs (`_BatchQueue._process_batches` waits for a batch before taking the semaphore),
so under steady load its batches held 1-3 requests here (bench/serving.py measures the result).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

# What a sequence sends its owner: {"text": delta} while streaming, then {"result": GenResult}.
Sink = Callable[[dict[str, Any]], None]


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


@dataclass(eq=False)
class Sequence:
    """One request being generated: its tokens, sampling settings and where its output goes."""

    req: GenRequest
    prompt_ids: list[int]
    sink: Sink
    decode: Callable[[list[int]], str]
    eos_token_id: int | None
    streaming: bool = False
    generated: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    cancelled: bool = False
    _sent: int = 0
    _rng: torch.Generator | None = None

    def __post_init__(self) -> None:
        if self.req.seed is not None:  # reproducible whatever else shares the batch
            self._rng = torch.Generator().manual_seed(self.req.seed)

    @property
    def live(self) -> bool:
        return self.finish_reason is None and not self.cancelled

    def pick(self, logits: torch.Tensor, greedy: int) -> int:
        """The next token from this row's logits (`greedy` is its argmax, computed batch-wide)."""
        if self.req.temperature <= 0:
            return greedy
        probs = torch.softmax(logits.float() / self.req.temperature, dim=-1)
        if self.req.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < self.req.top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
        return int(torch.multinomial(probs / probs.sum(), 1, generator=self._rng))

    def push(self, token: int) -> None:
        """Take the next token: finish on EOS, a stop sequence or max_tokens; stream a delta."""
        if token == self.eos_token_id:
            self._finish("stop")
            return
        self.generated.append(token)
        if self.streaming or self.req.stop:
            text, stopped = cut_at_stop(self.decode(self.generated), self.req.stop)
            if stopped:
                self._finish("stop", text)
                return
            if self.streaming:  # hold back what may be the start of a stop sequence
                safe = len(text) - (max((len(s) for s in self.req.stop), default=1) - 1)
                if safe > self._sent and not text.endswith("\ufffd"):
                    self.sink({"text": text[self._sent : safe]})
                    self._sent = safe
        if len(self.generated) >= self.req.max_tokens:
            self._finish("length")

    def fail(self, message: str) -> None:
        self.finish_reason = "error"
        self.sink({"failed": message})

    def _finish(self, reason: str, text: str | None = None) -> None:
        if text is None:
            text, _ = cut_at_stop(self.decode(self.generated), self.req.stop)
        if self.streaming and len(text) > self._sent:
            self.sink({"text": text[self._sent :]})
        self.finish_reason = reason
        result = GenResult(text, len(self.prompt_ids), len(self.generated), reason)
        self.sink({"result": result})


class KvBatch:
    """The running rows' KV cache, left-padded to one length, with their masks and positions."""

    def __init__(self, model: Any, pad_token_id: int) -> None:
        self.model, self.pad = model, pad_token_id
        self.cache: DynamicCache | None = None
        self.mask = torch.zeros((0, 0), dtype=torch.long)
        self.positions = torch.zeros(0, dtype=torch.long)  # of each row's next token

    @property
    def rows(self) -> int:
        return int(self.mask.shape[0])

    def prefill(self, prompts: list[list[int]]) -> torch.Tensor:
        """Run the new prompts (left-padded together), add their rows; the last logits of each."""
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            past_key_values=cache,
            use_cache=True,
        )
        self._join(out.past_key_values, mask, torch.tensor([len(p) for p in prompts]))
        return out.logits[:, -1, :]

    def step(self, tokens: list[int]) -> torch.Tensor:
        """Feed each row its latest token; the logits of the token after it, one row each."""
        mask = torch.cat([self.mask, torch.ones((self.rows, 1), dtype=torch.long)], dim=1)
        out = self.model(
            input_ids=torch.tensor(tokens).unsqueeze(1),
            attention_mask=mask,
            position_ids=self.positions.unsqueeze(1),
            past_key_values=self.cache,
            use_cache=True,
        )
        self.cache, self.mask, self.positions = out.past_key_values, mask, self.positions + 1
        return out.logits[:, -1, :]

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows, and drop cache columns that are padding in every row left."""
        if not rows:
            self.cache, self.mask = None, torch.zeros((0, 0), dtype=torch.long)
            self.positions = torch.zeros(0, dtype=torch.long)
            return
        index = torch.tensor(rows)
        assert self.cache is not None
        self.cache.batch_select_indices(index)
        self.mask, self.positions = self.mask[index], self.positions[index]
        first = int(torch.nonzero(self.mask.any(dim=0))[0])
        if first:
            self.mask = self.mask[:, first:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., first:, :], layer.values[..., first:, :]

    def _join(self, cache: DynamicCache, mask: torch.Tensor, lengths: torch.Tensor) -> None:
        if self.cache is None:
            self.cache, self.mask, self.positions = cache, mask, lengths
            return
        width = max(self.mask.shape[1], mask.shape[1])
        for mine, theirs in zip(self.cache.layers, cache.layers, strict=True):
            mine.keys = _stack(mine.keys, theirs.keys, width)
            mine.values = _stack(mine.values, theirs.values, width)
        self.mask = _stack(self.mask, mask, width)
        self.positions = torch.cat([self.positions, lengths])


def _stack(ours: torch.Tensor, theirs: torch.Tensor, width: int) -> torch.Tensor:
    """Rows of both, left-padded to `width` along the sequence axis."""
    return torch.cat([_left_pad(ours, width), _left_pad(theirs, width)])


def _left_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """Zeros before the sequence axis (the last of a mask, the one before last of keys/values)."""
    axis = t.dim() - 1 if t.dim() == 2 else t.dim() - 2
    missing = width - t.shape[axis]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[axis] = missing
    return torch.cat([t.new_zeros(shape), t], dim=axis)


def cache_is_mergeable(model: Any) -> bool:
    """Rows can join a running batch only with plain growing caches (no sliding windows)."""
    cache = DynamicCache(config=model.config)
    return all(type(layer) is DynamicLayer for layer in cache.layers)


class Scheduler:
    """Iteration-level batching over a causal LM; synchronous (the caller owns the thread)."""

    def __init__(self, model: Any, pad_token_id: int, max_batch_size: int) -> None:
        self.model, self.max_batch_size = model, max_batch_size
        self.kv = KvBatch(model, pad_token_id)
        self.joinable = cache_is_mergeable(model)
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.running)

    @torch.inference_mode()
    def step(self) -> None:
        """Admit waiting sequences, then generate one token for every running sequence."""
        self._retire()
        free = self.max_batch_size - len(self.running)
        if self.waiting and free > 0 and (self.joinable or not self.running):
            new = [self.waiting.popleft() for _ in range(min(free, len(self.waiting)))]
            self._emit(new, self.kv.prefill([s.prompt_ids for s in new]))
            self.running += new
            self._retire()
        if self.running:
            # Each running row's latest token is not in the cache yet: feed it. (A row that has
            # no token yet finished at its first and left in _retire.)
            latest = [s.generated[-1] for s in self.running]
            self._emit(self.running, self.kv.step(latest))

    def fail_all(self, message: str) -> None:
        """Fail every sequence (the model raised); the batch starts empty again."""
        for seq in [*self.running, *self.waiting]:
            if seq.finish_reason is None:
                seq.fail(message)
        self.waiting.clear()
        self.running = []
        self.kv.keep([])

    def _emit(self, seqs: list[Sequence], logits: torch.Tensor) -> None:
        greedy = torch.argmax(logits, dim=-1).tolist()
        for row, seq in enumerate(seqs):
            if seq.live:
                seq.push(seq.pick(logits[row], greedy[row]))

    def _retire(self) -> None:
        keep = [i for i, s in enumerate(self.running) if s.live]
        if len(keep) != len(self.running):
            self.running = [self.running[i] for i in keep]
            self.kv.keep(keep)
        self.waiting = deque(s for s in self.waiting if not s.cancelled)
