"""`routing.unless_replicas_lost`: a request waiting on a version that lost every replica is given
up after a grace period (the router answers 503 with Retry-After) instead of waiting in Ray
Serve's handle until a replacement runs; an answer that comes in time is returned."""

from __future__ import annotations

import asyncio

import pytest

from drover_workers.serve.routing import ReplicasLost, unless_replicas_lost


class Clock:
    def __init__(self, ready: list[bool]) -> None:
        self.now = 0.0
        self.states = list(ready)
        self.asked = 0

    async def ready(self) -> bool:
        self.asked += 1
        self.now += 1.0  # one poll a second
        return self.states.pop(0) if self.states else False


async def never() -> str:
    await asyncio.Event().wait()
    return "never"


def test_an_answer_in_time_is_returned() -> None:
    async def answer() -> str:
        await asyncio.sleep(0.03)
        return "ok"

    clock = Clock([True] * 100)
    got = asyncio.run(
        unless_replicas_lost(answer(), clock.ready, 3, poll_seconds=0.01, clock=lambda: clock.now)
    )
    assert got == "ok"


def test_a_version_without_replicas_for_the_grace_gives_up_and_cancels() -> None:
    async def run() -> asyncio.Task[str]:
        task = asyncio.ensure_future(never())
        with pytest.raises(ReplicasLost, match="no running replica for 3s"):
            await unless_replicas_lost(
                task, clock.ready, 3, poll_seconds=0.001, clock=lambda: clock.now
            )
        await asyncio.sleep(0)
        return task

    clock = Clock([True, True, False, True, False, False, False, False])
    task = asyncio.run(run())
    assert task.cancelled()
    # Ready, ready, lost, back (the count restarts), then lost at 5 s and given up at 8 s.
    assert clock.now == 8.0


def test_an_engine_error_passes_through() -> None:
    async def broken() -> str:
        raise RuntimeError("engine failed")

    clock = Clock([True])
    with pytest.raises(RuntimeError, match="engine failed"):
        asyncio.run(
            unless_replicas_lost(broken(), clock.ready, 3, poll_seconds=1, clock=lambda: clock.now)
        )
