"""Watch with bookmarks on the local control plane: a bookmark never runs ahead of an event the
watcher has not been sent, so no event is skipped however often bookmarks and writes coincide.

kopf re-watches from the last resourceVersion it saw (a bookmark's included) and never lists again
unless told 410 Gone, so one skipped ADDED event was a resource the operator never reconciled.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import ClientSession, ClientTimeout
from aiohttp.test_utils import TestServer

from drover_sandbox.apiserver.crud import Req
from drover_sandbox.apiserver.server import Config, _NoQuery, build_app

WATCHERS = 8
OBJECTS = 300


async def _watch(
    session: ClientSession, url: str, seen: set[str], ready: asyncio.Event, bookmarks: list[int]
) -> None:
    query = "watch=true&allowWatchBookmarks=true&timeoutSeconds=30&resourceVersion=1"
    async with session.get(f"{url}/api/v1/namespaces/default/configmaps?{query}") as resp:
        ready.set()
        async for line in resp.content:
            event = json.loads(line)
            if event["type"] == "BOOKMARK":
                bookmarks.append(int(event["object"]["metadata"]["resourceVersion"]))
            elif event["type"] == "ADDED":
                seen.add(event["object"]["metadata"]["name"])
                if len(seen) == OBJECTS:
                    return


async def _burst() -> tuple[list[set[str]], list[int]]:
    # Bookmarks due every millisecond and writes woken by timers too: a bookmark and a write
    # fall in the same event-loop turn many times over.
    app = build_app(Config(bookmark_interval=0.001))
    state = app["state"]
    res = state.registry.get("", "v1", "configmaps")
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        async with ClientSession(timeout=ClientTimeout(total=60)) as session:
            seen: list[set[str]] = [set() for _ in range(WATCHERS)]
            ready = [asyncio.Event() for _ in range(WATCHERS)]
            bookmarks: list[int] = []
            watchers = [
                asyncio.create_task(_watch(session, url, s, r, bookmarks))
                for s, r in zip(seen, ready, strict=True)
            ]
            await asyncio.gather(*(r.wait() for r in ready))
            for i in range(OBJECTS):
                req = Req(res, "default", "", "", _NoQuery(), user_agent="test")
                state.api.create(req, {"metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}})
                await asyncio.sleep(0.001 * (i % 3))
            _, pending = await asyncio.wait(watchers, timeout=5)
            for task in pending:
                task.cancel()
            return seen, bookmarks


def test_no_watcher_misses_an_event_when_bookmarks_and_writes_coincide() -> None:
    seen, bookmarks = asyncio.run(_burst())
    missing = {i: sorted({f"cm-{n}" for n in range(OBJECTS)} - s) for i, s in enumerate(seen)}
    assert all(not m for m in missing.values()), missing
    assert bookmarks, "no bookmark was sent during the burst: the race was not exercised"
