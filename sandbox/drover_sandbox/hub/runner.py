"""Run the local hub: in the foreground (`serve_forever`) or in a background thread (`HubServer`,
used by tests and anything that needs a hub in-process)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from aiohttp import web

from drover_sandbox.hub.builder import ensure_repos
from drover_sandbox.hub.server import STATE, HubState, build_app
from drover_sandbox.hub.store import RepoStore


def repos_root(data_dir: str | Path) -> Path:
    return Path(data_dir) / "hub"


class HubServer:
    """A hub on 127.0.0.1 in a daemon thread; `port=0` picks a free port (read `.port`)."""

    def __init__(self, data_dir: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = repos_root(data_dir)
        self.host, self.port = host, port
        self.app = build_app(RepoStore(self.root))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> HubState:
        return self.app[STATE]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, build: bool = True) -> HubServer:
        if build:
            ensure_repos(self.root, log=lambda _: None)
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # surfaced to the caller of start()
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())  # type: ignore[union-attr]
            loop.close()

        self._thread = threading.Thread(target=run, name="drover-hub", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]
        return self

    async def _start_site(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


def serve_forever(data_dir: str | Path, host: str, port: int) -> None:
    root = repos_root(data_dir)
    built = ensure_repos(root)
    if built:
        print(f"hub: built {', '.join(built)}", flush=True)
    app = build_app(RepoStore(root))
    print(
        f"hub: serving {root} on http://{host}:{port} (HF_ENDPOINT=http://{host}:{port})",
        flush=True,
    )
    web.run_app(app, host=host, port=port, print=None, access_log=None)
