"""`drover local status` and `down` without a stack, and a missing KubeRay CRD directory.

The whole cycle (`up` runs every component, `status` reports it, `down` stops every process it
started, Ray's daemons included, and `down --purge` removes the data dir) is checked around the
one stack the e2e tests start (tests/e2e/test_pipeline.py, the `stack` fixture), so that no
session pays for starting the stack twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_missing_kuberay_crds_are_a_clear_error(tmp_path):
    from drover_sandbox.components import StackError, install_crds

    with pytest.raises(StackError, match="--kuberay-crds"):
        install_crds(tmp_path / "kubeconfig", tmp_path / "no-such-dir")


def test_status_and_down_without_a_stack_say_so(tmp_path):
    shown = drover("status", "--data-dir", str(tmp_path))
    assert shown.returncode == 1 and "no stack" in shown.stdout
    stopped = drover("down", "--data-dir", str(tmp_path))
    assert stopped.returncode == 0 and "nothing to stop" in stopped.stdout
