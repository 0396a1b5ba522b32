"""Step-level batching (decoding.py, batcher.py) on a real tiny GPT-2, without Ray.

The reference for every greedy text is transformers' own `model.generate` on the prompt alone, so
padding, cache merging and row removal are checked against an implementation we did not write.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from drover_workers.serve.batcher import Batcher
from drover_workers.serve.engine import GenRequest, GenResult, TextEngine

PROMPTS = [
    "Refunds are issued within",
    "Hello",
    "The quick brown fox jumps over the lazy dog and then",
    "a b",
]


@pytest.fixture(scope="module")
def engine(tiny_model_dirs: dict[str, str]) -> TextEngine:
    return TextEngine(tiny_model_dirs["base"])


def reference(engine: TextEngine, prompt: str, max_tokens: int) -> str:
    """Greedy text from `model.generate` for the prompt alone, cut at EOS."""
    ids = engine.tokenizer(prompt, return_tensors="pt")
    out = engine.model.generate(
        **ids,
        max_new_tokens=max_tokens,
        do_sample=False,
        pad_token_id=engine.tokenizer.eos_token_id,
    )
    new = out[0, ids["input_ids"].shape[1] :].tolist()
    if engine.tokenizer.eos_token_id in new:
        new = new[: new.index(engine.tokenizer.eos_token_id)]
    return str(engine.tokenizer.decode(new))


def greedy(prompt: str, max_tokens: int = 24, **kw: Any) -> GenRequest:
    return GenRequest(prompt=prompt, max_tokens=max_tokens, temperature=0, **kw)


class Collect:
    """A sink that keeps what a sequence sends."""

    def __init__(self) -> None:
        self.deltas: list[str] = []
        self.result: GenResult | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        if "text" in event:
            self.deltas.append(event["text"])
        elif "result" in event:
            self.result = event["result"]


def count_forwards(engine: TextEngine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the batch size of every forward pass of the model."""
    sizes: list[int] = []
    forward = engine.model.forward

    def counted(*args: Any, **kwargs: Any) -> Any:
        sizes.append(int(kwargs["input_ids"].shape[0]))
        return forward(*args, **kwargs)

    monkeypatch.setattr(engine.model, "forward", counted)
    return sizes


def test_batched_prompts_of_different_lengths_match_generate_alone(engine: TextEngine) -> None:
    results = engine.generate_batch([greedy(p) for p in PROMPTS])
    assert [r.text for r in results] == [reference(engine, p, 24) for p in PROMPTS]
    assert {r.finish_reason for r in results} <= {"stop", "length"}
    assert all(r.completion_tokens > 0 for r in results)


def test_a_sequence_joining_a_running_batch_matches_generate_alone(engine: TextEngine) -> None:
    sched = engine.scheduler(8)
    first, second, third = Collect(), Collect(), Collect()
    sched.add(engine.sequence(greedy(PROMPTS[0], 30), first))
    for _ in range(5):
        sched.step()
    sched.add(engine.sequence(greedy(PROMPTS[2], 10), second))  # a longer prompt joins
    for _ in range(3):
        sched.step()
    sched.add(engine.sequence(greedy(PROMPTS[1], 30), third))  # a shorter one, after a row left
    while sched.busy:
        sched.step()
    assert first.result and second.result and third.result
    assert first.result.text == reference(engine, PROMPTS[0], 30)
    assert second.result.text == reference(engine, PROMPTS[2], 10)
    assert third.result.text == reference(engine, PROMPTS[1], 30)
    assert sched.kv.rows == 0 and sched.kv.cache is None  # nothing left behind


def test_concurrent_requests_share_forward_passes(
    engine: TextEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = count_forwards(engine, monkeypatch)
    engine.generate_batch([greedy(PROMPTS[0], 20)])
    alone = len(sizes)
    sizes.clear()
    engine.generate_batch([greedy(p, 20) for p in PROMPTS])
    assert len(sizes) <= alone  # four answers for the passes of one
    assert max(sizes) == len(PROMPTS)


def test_streamed_and_whole_answers_share_a_batch_and_agree(
    engine: TextEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = count_forwards(engine, monkeypatch)
    sched = engine.scheduler(8)
    streamed, whole = Collect(), Collect()
    sched.add(engine.sequence(greedy(PROMPTS[0], 20), streamed, streaming=True))
    sched.add(engine.sequence(greedy(PROMPTS[0], 20), whole))
    while sched.busy:
        sched.step()
    assert set(sizes) == {2}  # every pass carried both
    assert streamed.result and whole.result
    assert len(streamed.deltas) > 1
    assert "".join(streamed.deltas) == streamed.result.text == whole.result.text


def test_stop_sequences_end_the_answer_and_are_never_streamed(engine: TextEngine) -> None:
    full = reference(engine, PROMPTS[0], 24)
    stop = full[5:8]
    assert stop and full.find(stop) == 5
    sink = Collect()
    sched = engine.scheduler(4)
    sched.add(engine.sequence(greedy(PROMPTS[0], 24, stop=[stop]), sink, streaming=True))
    while sched.busy:
        sched.step()
    assert sink.result and sink.result.text == full[:5]
    assert sink.result.finish_reason == "stop"
    assert "".join(sink.deltas) == full[:5]


def test_a_seeded_sample_does_not_depend_on_its_batch(engine: TextEngine) -> None:
    def sampled(companions: int) -> str:
        reqs = [GenRequest(prompt=PROMPTS[0], max_tokens=16, temperature=1.0, top_p=0.9, seed=7)]
        reqs += [GenRequest(prompt=p, max_tokens=16, temperature=1.0) for p in PROMPTS[:companions]]
        return engine.generate_batch(reqs)[0].text

    assert sampled(0) == sampled(3)
    unseeded = {
        engine.generate_batch([GenRequest(prompt=PROMPTS[0], max_tokens=16)])[0].text
        for _ in range(4)
    }
    assert len(unseeded) > 1  # sampling does sample


def test_a_cancelled_sequence_leaves_the_batch(engine: TextEngine) -> None:
    sched = engine.scheduler(4)
    gone, stays = Collect(), Collect()
    leaving = engine.sequence(greedy(PROMPTS[2], 40), gone)
    sched.add(leaving)
    sched.add(engine.sequence(greedy(PROMPTS[1], 40), stays))
    sched.step()
    assert sched.kv.rows == 2
    leaving.cancelled = True
    sched.step()
    assert sched.kv.rows == 1
    # the long prompt's padding columns went with it
    assert sched.kv.mask.shape[1] == int(sched.kv.mask.sum())
    while sched.busy:
        sched.step()
    assert gone.result is None
    assert stays.result and stays.result.text == reference(engine, PROMPTS[1], 40)


def test_a_prompt_too_long_is_a_client_error(engine: TextEngine) -> None:
    [result] = engine.generate_batch([greedy("word " * 2000, 8)])
    assert result.error and "max_tokens=8" in result.error and "shorten it" in result.error


def test_the_batcher_batches_concurrent_requests_and_streams(
    engine: TextEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = count_forwards(engine, monkeypatch)

    async def main() -> tuple[list[GenResult], list[dict[str, Any]]]:
        batcher = Batcher(engine, max_batch_size=8, wait_timeout=0.05)
        whole = [batcher.complete(greedy(p, 20)) for p in PROMPTS]
        pieces: list[dict[str, Any]] = []

        async def read() -> None:
            async for piece in batcher.stream(greedy(PROMPTS[0], 20)):
                pieces.append(piece)

        results = await asyncio.gather(*whole, read())
        return list(results[: len(PROMPTS)]), pieces

    results, pieces = asyncio.run(main())
    assert [r.text for r in results] == [reference(engine, p, 20) for p in PROMPTS]
    assert max(sizes) == len(PROMPTS) + 1  # the stream rode in the same batch
    assert pieces[-1]["finish_reason"] in ("stop", "length")
    streamed = "".join(p.get("text", "") for p in pieces)
    assert streamed == reference(engine, PROMPTS[0], 20)


def test_a_stream_sends_its_first_piece_at_once_and_gathers_the_rest(engine: TextEngine) -> None:
    async def pieces(interval: float) -> list[str]:
        batcher = Batcher(engine, max_batch_size=4, wait_timeout=0.0, stream_interval=interval)
        got = [p async for p in batcher.stream(greedy(PROMPTS[0], 30))]
        assert "finish_reason" in got[-1]
        return [p["text"] for p in got if "text" in p]

    each, gathered = asyncio.run(pieces(0.0)), asyncio.run(pieces(60.0))
    assert "".join(each) == "".join(gathered) == reference(engine, PROMPTS[0], 30)
    assert len(each) > 5
    assert len(gathered) == 2  # the first piece, then the rest when the answer ended


def test_the_batcher_survives_a_failing_step(
    engine: TextEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    forward = engine.model.forward
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("CUDA out of memory (simulated)")
        return forward(*args, **kwargs)

    monkeypatch.setattr(engine.model, "forward", flaky)

    async def main() -> tuple[BaseException | GenResult, GenResult]:
        batcher = Batcher(engine, max_batch_size=4, wait_timeout=0.0)
        failed = await asyncio.gather(
            batcher.complete(greedy(PROMPTS[0], 20)), return_exceptions=True
        )
        after = await batcher.complete(greedy(PROMPTS[1], 10))
        return failed[0], after

    failed, after = asyncio.run(main())
    assert isinstance(failed, RuntimeError) and "out of memory" in str(failed)
    assert after.text == reference(engine, PROMPTS[1], 10)
