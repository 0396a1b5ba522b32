"""Serve layer: the model replica's generation thread, fed from asyncio (no Ray).

`Batcher` runs a `Scheduler` (decoding.py) in one thread: requests submitted from the event loop
join the running batch at the next step, and results (or streamed pieces) come back to the loop
with `call_soon_threadsafe`. An idle replica waits `wait_timeout` for company before its first
step, so a burst starts as one batch. Torch work releases the GIL, so the event loop keeps taking
requests while the thread generates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from drover_workers.serve.decoding import GenRequest, GenResult, Sequence
from drover_workers.serve.engine import PromptTooLong, TextEngine

log = logging.getLogger("ray.serve")

# A stream's pieces after its first go out at most this often (Ray Serve LLM batches streamed
# tokens the same way, at 50 ms): each piece is a message through the router and the client's
# connection, and one per token cost 3x the throughput of whole answers (bench/serving.py).
STREAM_INTERVAL_SECONDS = 0.02


class Batcher:
    """Step-level batching of one replica's requests on a background thread."""

    def __init__(
        self,
        engine: TextEngine,
        max_batch_size: int,
        wait_timeout: float,
        stream_interval: float = STREAM_INTERVAL_SECONDS,
    ) -> None:
        self.engine, self.wait_timeout = engine, wait_timeout
        self.stream_interval = stream_interval
        self.scheduler = engine.scheduler(max_batch_size)
        self._inbox: queue.SimpleQueue[Sequence] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="drover-generate", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        """Requests accepted and not yet generating (the queue-depth metric)."""
        return self._inbox.qsize() + len(self.scheduler.waiting)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    async def complete(self, req: GenRequest) -> GenResult:
        """The whole answer to one request."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[GenResult] = loop.create_future()

        def sink(event: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(_settle, done, event)

        seq = self._submit(req, sink, streaming=False)
        if isinstance(seq, GenResult):
            return seq
        try:
            return await done
        finally:
            seq.cancelled = True  # no-op when finished; frees the row when the caller went away

    async def stream(self, req: GenRequest) -> AsyncIterator[dict[str, Any]]:
        """`{"text": delta}` pieces, then `{"finish_reason", "usage"}` (or one `{"error"}`).
        The first piece goes at once; later ones gather for `stream_interval` and go as one."""
        loop = asyncio.get_running_loop()
        events: deque[dict[str, Any]] = deque()
        arrived, ended = asyncio.Event(), asyncio.Event()

        def put(event: dict[str, Any]) -> None:
            events.append(event)
            arrived.set()
            if "text" not in event:
                ended.set()

        seq = self._submit(req, lambda event: loop.call_soon_threadsafe(put, event), True)
        if isinstance(seq, GenResult):
            yield {"error": seq.error}
            return
        try:
            while True:
                await arrived.wait()
                arrived.clear()
                text = "".join(e["text"] for e in events if "text" in e)
                end = next((e for e in events if "text" not in e), None)
                events.clear()
                if text:
                    yield {"text": text}
                if end is None:
                    if text and self.stream_interval:  # gather; the end cuts the wait short
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(ended.wait(), self.stream_interval)
                    continue
                if "failed" in end:
                    raise RuntimeError(end["failed"])
                result: GenResult = end["result"]
                usage = {
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                }
                yield {"finish_reason": result.finish_reason, "usage": usage}
                return
        finally:
            seq.cancelled = True

    def _submit(self, req: GenRequest, sink: Any, streaming: bool) -> Sequence | GenResult:
        try:
            seq = self.engine.sequence(req, sink, streaming)
        except PromptTooLong as exc:
            return GenResult("", exc.prompt_tokens, 0, "stop", error=str(exc))
        self._inbox.put(seq)
        return seq

    def _next(self) -> Sequence:
        return self._inbox.get_nowait()

    def _run(self) -> None:
        sched = self.scheduler
        while True:
            if not sched.busy:  # idle: block for a request, then give a burst time to gather
                sched.add(self._inbox.get())
                deadline = time.monotonic() + self.wait_timeout
                while len(sched.waiting) < sched.max_batch_size:
                    left = deadline - time.monotonic()
                    try:
                        sched.add(self._inbox.get(timeout=left) if left > 0 else self._next())
                    except queue.Empty:
                        break
            while True:  # what arrived during the last step joins at this one
                try:
                    sched.add(self._next())
                except queue.Empty:
                    break
            try:
                sched.step()
            except Exception as exc:  # one bad step must not kill the replica's thread
                log.exception("generation step failed")
                sched.fail_all(f"generation failed: {type(exc).__name__}: {exc}")


def _settle(done: asyncio.Future[GenResult], event: dict[str, Any]) -> None:
    if done.done():
        return
    if "result" in event:
        done.set_result(event["result"])
    elif "failed" in event:
        done.set_exception(RuntimeError(event["failed"]))
