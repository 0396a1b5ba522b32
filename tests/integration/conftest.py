"""Fixtures for the operator's integration tests: CRDs installed, the real operator process, and
a small Ray-dashboard log endpoint so the operator can read a worker's `::drover::` report.

KubeRay is not here: tests play its part by patching the status of the RayJobs and RayServices
the operator creates, exactly as KubeRay v1.7.0 would write them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from drover.compat import KUBERAY_SCHEMAS_DIR
from drover_sandbox.apiserver.launcher import free_port

ROOT = Path(__file__).resolve().parents[2]
KUBERAY = ROOT.parent / "shared" / "vendor-schemas" / KUBERAY_SCHEMAS_DIR


def kubectl(kubeconfig: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECACHEDIR": str(kubeconfig.parent / "kubecache")}
    out = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if check and out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr}")
    return out


@pytest.fixture(scope="session")
def drover_crds(kubeconfig: Path) -> Path:
    """Drover's, kopf's peering and KubeRay's CRDs installed in the session's control plane."""
    if not KUBERAY.exists():
        pytest.skip(f"KubeRay CRDs not found at {KUBERAY}: the shared vendor schemas are absent")
    kubectl(
        kubeconfig,
        "apply",
        "-f",
        str(ROOT / "crds"),
        "-f",
        str(ROOT / "charts/drover/crds/kopf.dev_kopfpeerings.yaml"),
    )
    for name in ("ray.io_rayjobs.yaml", "ray.io_rayservices.yaml"):
        kubectl(kubeconfig, "apply", "--server-side", "-f", str(KUBERAY / name))
    return kubeconfig


class Dashboard:
    """Answers `GET /api/jobs/{id}/logs` like Ray's dashboard, with logs the test sets."""

    def __init__(self) -> None:
        self.logs: dict[str, str] = {}
        self.port = free_port()
        self._loop_ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._loop_ready.wait(10)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        import asyncio

        async def logs(request: web.Request) -> web.Response:
            job = request.match_info["job"]
            if job not in self.logs:
                return web.json_response({"detail": "not found"}, status=404)
            return web.json_response({"logs": self.logs[job]})

        async def main() -> None:
            app = web.Application()
            app.router.add_get("/api/jobs/{job}/logs", logs)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self._loop_ready.set()
            while True:
                await asyncio.sleep(3600)

        asyncio.run(main())


@pytest.fixture(scope="session")
def dashboard() -> Dashboard:
    return Dashboard()


class Operator:
    """`python -m drover run` as a child process, watching one namespace."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        log: Path,
        *,
        standalone: bool = True,
        priority: int | None = None,
        prometheus_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.log_path = log
        overrides = env or {}
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "DROVER_NAMESPACES": namespace,
            "DROVER_HEALTH_PORT": str(free_port()),
            "DROVER_METRICS_PORT": str(free_port()),
            "DROVER_PROGRESS_POLL_SECONDS": "1",
            "DROVER_AUTOSCALE_INTERVAL_SECONDS": "2",
            # Default: a port nothing listens on (metrics unavailable).
            "DROVER_PROMETHEUS_URL": prometheus_url or f"http://127.0.0.1:{free_port()}",
            "DROVER_SERVING_URL_TEMPLATE": "http://127.0.0.1:8000/{namespace}/{rayservice}",
            "DROVER_PEERING_NAME": f"peering-{namespace}",
            # The log is read while the process runs ("the standby ran no handler"): unbuffered,
            # so a line the operator logged is in the file.
            "PYTHONUNBUFFERED": "1",
        }
        self.metrics_port = int(env["DROVER_METRICS_PORT"])
        if priority is not None:
            env["DROVER_PEERING_PRIORITY"] = str(priority)
        env.update(overrides)
        args = [sys.executable, "-m", "drover", "run"] + (["--standalone"] if standalone else [])
        self._log = open(log, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()

    def kill(self) -> None:
        """SIGKILL: the operator gets no chance to clean up (restart-safety tests)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self._log.close()


@pytest.fixture
def start_operator(
    drover_crds: Path, namespace: str, tmp_path: Path
) -> Iterator[Callable[..., Operator]]:
    started: list[Operator] = []

    def start(**kwargs: Any) -> Operator:
        op = Operator(drover_crds, namespace, tmp_path / f"operator-{len(started)}.log", **kwargs)
        started.append(op)
        return op

    yield start
    for op in started:
        if op.proc.poll() is None:
            op.stop()


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 60, interval: float = 0.5
) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # the object may not exist yet: keep polling
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
