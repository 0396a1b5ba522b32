"""`drover local up` starts the whole stack in the background, `status` reports it, `down` stops
every process it started (Ray's daemons included) and keeps the data dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from drover_sandbox import procs

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[3]


def drover(*args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    return subprocess.run(
        [sys.executable, "-m", "drover", "local", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def stack_pids(stack: dict) -> dict[str, list[int]]:
    out = {}
    for name, record in stack["components"].items():
        out[name] = procs.session_pids(int(record["session"]), record.get("tempDir", ""))
    return out


def test_missing_kuberay_crds_are_a_clear_error(tmp_path):
    from drover_sandbox.components import StackError, install_crds

    with pytest.raises(StackError, match="--kuberay-crds"):
        install_crds(tmp_path / "kubeconfig", tmp_path / "no-such-dir")


def test_status_and_down_without_a_stack_say_so(tmp_path):
    shown = drover("status", "--data-dir", str(tmp_path))
    assert shown.returncode == 1 and "no stack" in shown.stdout
    stopped = drover("down", "--data-dir", str(tmp_path))
    assert stopped.returncode == 0 and "nothing to stop" in stopped.stdout


@pytest.mark.slow
def test_up_status_down_leaves_no_process_behind():
    data_dir = Path(tempfile.mkdtemp(prefix="drover-stack-", dir="/tmp"))
    stack: dict = {}
    try:
        started = drover("up", "--data-dir", str(data_dir))
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"export KUBECONFIG={data_dir}/kubeconfig" in started.stdout
        stack = json.loads((data_dir / "stack.json").read_text())
        assert {"apiserver", "ray", "rayexec", "hub", "operator"} <= set(stack["components"])
        running = stack_pids(stack)
        assert all(running.values()), running

        again = drover("up", "--data-dir", str(data_dir))
        assert again.returncode == 0 and "already up" in again.stdout

        shown = drover("status", "--data-dir", str(data_dir))
        assert shown.returncode == 0, shown.stdout + shown.stderr
        for name in ("apiserver", "ray", "rayexec", "hub", "operator"):
            line = next(ln for ln in shown.stdout.splitlines() if ln.strip().startswith(name))
            assert "running" in line, shown.stdout
        assert stack["components"]["ray"]["dashboard"] in shown.stdout

        stopped = drover("down", "--data-dir", str(data_dir))
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert procs.wait_until(lambda: not any(stack_pids(stack).values()), 15)
        assert (data_dir / "logs" / "rayexec.log").exists(), "down keeps the data dir"
        assert drover("status", "--data-dir", str(data_dir)).returncode == 1
    finally:
        if stack and any(stack_pids(stack).values()):
            drover("down", "--data-dir", str(data_dir))
        drover("down", "--data-dir", str(data_dir), "--purge")
        time.sleep(0.1)
    assert not data_dir.exists(), "--purge removes the data dir"
