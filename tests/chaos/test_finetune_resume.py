"""A fine-tune's training process SIGKILLed after its first checkpoint, as a lost node would
kill it (issue #16, Ray faults), on the local stack with real Ray and torch training: KubeRay
retries the RayJob (`backoffLimit: 1`; the local executor follows rayjob_controller.go, see
drover_sandbox/rayexec/jobstate.py `finish`), the new attempt resumes from that checkpoint (the
step it resumed from is the one saved before the kill), and the FineTuneJob ends Succeeded with
the same kind of output: a LoRA adapter and its FoundationModel.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.conftest import kubectl

from drover_workers.finetune.checkpoint import latest_checkpoint

pytestmark = pytest.mark.chaos

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "examples" / "pipeline"
JOB = "resume-lora"
OUTPUT = "resume-lora-out"
# The example's dataset gives 5 steps an epoch: 20 epochs capped at 60 steps, a checkpoint every
# 5, so the kill lands after the first checkpoint with most steps still to go.
EPOCHS, STEPS, EVERY = 20, 60, 5
DEADLINE = 900.0  # for each phase on a busy 2-core machine; a healthy run takes about 2 min


def drover(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drover", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("stack")
    up = drover("local", "up", "--data-dir", str(data_dir))
    try:
        assert up.returncode == 0, f"drover local up failed:\n{up.stdout}\n{up.stderr}"
        yield data_dir
    finally:
        drover("local", "down", "--data-dir", str(data_dir), timeout=180)


def wait_for(what: str, check: Callable[[], Any], timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def get(kubeconfig: Path, kind: str, name: str) -> dict[str, Any]:
    out = kubectl(kubeconfig, "get", kind, name, "-n", "default", "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def trainer_pids(data_dir: Path) -> list[int]:
    """The processes of this stack's training of JOB: `python -m drover_workers.finetune` and
    the shell Ray's job supervisor runs it in (their worker configuration writes under this data
    dir's `finetuned/JOB-*`). A lost node takes both: killing the shell alone leaves the
    trainer running on as an orphan, beside the retry."""
    wanted = f"{data_dir}/pvc/".encode(), f"finetuned/{JOB}-".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"drover_workers.finetune" in cmdline and all(w in environ for w in wanted):
            pids.append(int(entry.name))
    return pids


def test_a_trainer_killed_after_its_first_checkpoint_resumes_from_it(stack: Path) -> None:
    kubeconfig = stack / "kubeconfig"
    kubectl(kubeconfig, "apply", "-f", str(PIPELINE / "00-base-model.yaml"))
    job = yaml.safe_load((PIPELINE / "02-finetune.yaml").read_text())
    job["metadata"]["name"] = JOB
    hyperparameters = {"epochs": EPOCHS, "maxSteps": STEPS, "checkpointSteps": EVERY}
    job["spec"]["hyperparameters"] |= hyperparameters
    job["spec"]["output"] = {"modelName": OUTPUT, "merge": False}
    manifest = stack / "job.yaml"
    manifest.write_text(yaml.safe_dump(job))
    kubectl(kubeconfig, "apply", "-f", str(manifest))

    checkpoints = wait_for(
        "the first checkpoint",
        lambda: next(
            (d for d in stack.glob(f"**/finetuned/{JOB}-*/checkpoints") if latest_checkpoint(d)),
            None,
        ),
    )
    pids = wait_for("the training process", lambda: trainer_pids(stack), timeout=60)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    saved = latest_checkpoint(checkpoints)
    assert saved is not None
    saved_step = int(saved.name.removeprefix("step-"))
    assert EVERY <= saved_step < STEPS  # killed mid-run, after a checkpoint

    def finished() -> dict[str, Any] | None:
        status = get(kubeconfig, "finetunejob", JOB).get("status") or {}
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status = wait_for("the FineTuneJob to finish", finished)
    assert status["phase"] == "Succeeded", status
    rayjob = get(kubeconfig, "rayjob", status["rayJobName"])["status"]
    assert (rayjob["failed"], rayjob["succeeded"]) == (1, 1), rayjob  # one retry, then success
    result = json.loads((checkpoints.parent / "result.json").read_text())
    assert result["resumedFromStep"] == saved_step, result
    assert result["steps"] == result["totalSteps"] == STEPS, result
    # The same kind of output as an undisturbed run: a LoRA adapter and its FoundationModel.
    assert (checkpoints.parent / "model" / "adapter_model.safetensors").is_file()
    assert status["outputModel"]["name"] == OUTPUT and status["outputDigest"].startswith("sha256:")
    model = get(kubeconfig, "foundationmodel", OUTPUT)
    assert model["spec"]["lineage"]["fineTuneJob"] == JOB
