"""Fixtures for the worker tests: one local model hub per session (real HTTP on 127.0.0.1, the
demo repos built once), and helpers that run a worker in a subprocess or in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drover_sandbox.hub.runner import HubServer
from drover_workers.common.report import parse_lines

REPO_ROOT = Path(__file__).resolve().parents[2]


# The demo repos are deterministic, so they are built once per checkout and reused (gitignored).
HUB_DATA_DIR = Path(os.environ.get("DROVER_TEST_HUB_DIR", REPO_ROOT / ".drover-local" / "test-hub"))


@pytest.fixture(scope="session")
def hub() -> Iterator[HubServer]:
    """The local model hub on a free loopback port, serving the demo repos."""
    server = HubServer(HUB_DATA_DIR).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def hub_models(hub: HubServer) -> Path:
    """The hub's model repos dir (tiny-gpt2 and MiniLM are readable straight from disk here)."""
    return hub.root / "models"


@pytest.fixture(scope="session")
def tiny_gpt2(hub_models: Path) -> Path:
    return hub_models / "drover-local" / "tiny-gpt2"


@pytest.fixture(scope="session")
def minilm(hub_models: Path) -> Path:
    return hub_models / "drover-local" / "all-minilm-l6-v2"


@pytest.fixture(scope="session")
def support_chat(hub: HubServer) -> Path:
    return hub.root / "datasets" / "drover-local" / "support-chat"


@pytest.fixture(scope="session")
def handbook(hub: HubServer) -> Path:
    return hub.root / "datasets" / "drover-local" / "handbook"


@dataclass
class WorkerRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[tuple[str, dict[str, Any]]]:
        return parse_lines(self.stdout)

    @property
    def result(self) -> dict[str, Any]:
        results = [p for k, p in self.lines if k == "result"]
        assert len(results) == 1, f"expected one result line, got {results}\n{self.stderr[-3000:]}"
        return results[0]

    @property
    def progress(self) -> list[dict[str, Any]]:
        return [p for k, p in self.lines if k == "progress"]


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HF_TOKEN", None)
    env.update({"PYTHONPATH": str(REPO_ROOT / "workers"), "HF_HUB_DISABLE_TELEMETRY": "1"})
    env.update(extra or {})
    return env


def run_worker_process(
    module: str, config: dict[str, Any] | str, env: dict[str, str] | None = None, timeout: int = 300
) -> WorkerRun:
    text = config if isinstance(config, str) else json.dumps(config)
    proc = subprocess.run(
        [sys.executable, "-m", f"drover_workers.{module}"],
        env=worker_env({"DROVER_WORKER_CONFIG": text, **(env or {})}),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
    return WorkerRun(proc.returncode, proc.stdout, proc.stderr)


def run_worker_inprocess(
    module: str, config: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> WorkerRun:
    """Run a worker's main() in this process (no interpreter/torch start-up cost)."""
    import importlib

    main = importlib.import_module(f"drover_workers.{module}.__main__").main
    os.environ["DROVER_WORKER_CONFIG"] = json.dumps(config)
    try:
        code = main([])
    finally:
        os.environ.pop("DROVER_WORKER_CONFIG", None)
    out = capsys.readouterr()
    return WorkerRun(code, out.out, out.err)


@pytest.fixture(scope="session")
def run_worker():
    """`run_worker(module, config, env=None)`: the worker in a subprocess, as Ray would run it."""
    return run_worker_process


@pytest.fixture(scope="session")
def make_worker_env():
    return worker_env


@pytest.fixture(scope="session")
def ray_local(ray_cluster: Any) -> Iterator[Any]:
    """This process joins the session's Ray cluster (shared with every Ray test) as a driver."""
    ray = pytest.importorskip("ray", reason="the Serve tests need Ray (the workers extra)")
    from tests.fixtures.ray_cluster import delete_serve_apps

    delete_serve_apps(ray_cluster)  # Serve suites that ran before hold CPUs training needs
    ray.init(
        address=ray_cluster.gcs_address,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT / "workers")}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture
def run_inprocess(capsys: pytest.CaptureFixture[str]):
    """`run_inprocess(module, config, env=None)`: the worker's main() in this process."""

    def run(module: str, config: dict[str, Any], env: dict[str, str] | None = None) -> WorkerRun:
        saved = {k: os.environ.get(k) for k in env or {}}
        os.environ.update(env or {})
        try:
            return run_worker_inprocess(module, config, capsys)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    return run
