"""The e2e tests' stack: `drover local up` once per module, checked on the way up and down."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _drover(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drover", *args], capture_output=True, text=True, timeout=timeout
    )


def _stack_pids(record: dict[str, Any]) -> dict[str, list[int]]:
    from drover_sandbox import procs

    return {
        name: procs.session_pids(int(c["session"]), c.get("tempDir", ""))
        for name, c in record["components"].items()
    }


def _check_up_and_status(data_dir: Path, up: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """`drover local up` says how to use the stack and runs every component; a second `up`
    knows it is up; `status` shows each one running."""
    assert f"export KUBECONFIG={data_dir}/kubeconfig" in up.stdout
    record = json.loads((data_dir / "stack.json").read_text())
    assert {"apiserver", "ray", "rayexec", "hub", "operator"} <= set(record["components"])
    running = _stack_pids(record)
    assert all(running.values()), running
    again = _drover("local", "up", "--data-dir", str(data_dir))
    assert again.returncode == 0 and "already up" in again.stdout
    shown = _drover("local", "status", "--data-dir", str(data_dir))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for name in ("apiserver", "ray", "rayexec", "hub", "operator"):
        line = next(ln for ln in shown.stdout.splitlines() if ln.strip().startswith(name))
        assert "running" in line, shown.stdout
    assert record["components"]["ray"]["dashboard"] in shown.stdout
    return record


def _check_down(data_dir: Path, record: dict[str, Any]) -> None:
    """`down` stops every process `up` started (Ray's daemons included) and keeps the data dir;
    `down --purge` removes it."""
    from drover_sandbox import procs

    down = _drover("local", "down", "--data-dir", str(data_dir), timeout=120)
    assert down.returncode == 0, down.stderr
    assert procs.wait_until(lambda: not any(_stack_pids(record).values()), 15)
    assert (data_dir / "logs" / "rayexec.log").exists(), "down keeps the data dir"
    assert _drover("local", "status", "--data-dir", str(data_dir)).returncode == 1
    _drover("local", "down", "--data-dir", str(data_dir), "--purge")
    assert not data_dir.exists(), "--purge removes the data dir"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("stack")
    up = _drover("local", "up", "--data-dir", str(data_dir))
    if up.returncode != 0:
        _drover("local", "down", "--data-dir", str(data_dir))
        pytest.fail(f"drover local up failed:\n{up.stdout}\n{up.stderr}")
    try:
        record = _check_up_and_status(data_dir, up)
        yield record
    except BaseException:
        _drover("local", "down", "--data-dir", str(data_dir), timeout=120)
        raise
    _check_down(data_dir, record)


@pytest.fixture(scope="module")
def kube(stack: dict[str, Any]) -> Path:
    from kubernetes import config

    kubeconfig = Path(stack["kubeconfig"])
    config.load_kube_config(config_file=str(kubeconfig))
    return kubeconfig
