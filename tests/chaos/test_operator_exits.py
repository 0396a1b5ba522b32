"""`drover run` exits once kopf stops on its own (issue #16): with peering on and every request
answered 409 by the local control plane, kopf's peering keep-alive PATCH fails (kopf 1.45 does
not retry a conflict there), its orchestrator fails and kopf stops. It then waits, without a
timeout, for watchers and timers that can outlive the stop, with its SIGTERM handler already
gone: the operator used to hang, still handling but no longer peering, until kopf's own SIGKILL
10 minutes later (kopf/_core/reactor/running.py `run_tasks`, `ultimate_termination`). The hang
depends on timing (2 of 7 runs before the fix); `drover.main.configure` bounds it to 20 s.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.chaos.harness import chain, control_plane

pytestmark = pytest.mark.chaos

CONFLICTS = {"error_rate": 1.0, "codes": [409], "seed": 16}
BOUND = 90.0  # seconds for the operator to exit on its own; 20 s after kopf starts stopping


def test_the_operator_exits_when_kopf_stops_under_constant_conflicts(tmp_path: Path) -> None:
    with control_plane(tmp_path / "cp") as cp:
        for doc in chain():
            cp.create(doc)
        cp.custom.create_namespaced_custom_object(
            "kopf.dev",
            "v1",
            cp.namespace,
            "kopfpeerings",
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfPeering",
                "metadata": {"name": f"peering-{cp.namespace}"},
            },
        )
        cp.admin("/_drover/faults", CONFLICTS)
        op = cp.start_operator(tmp_path / "operator.log", standalone=False)
        try:
            deadline = time.monotonic() + BOUND
            while op.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            exited = op.proc.poll() is not None
            injected = cp.admin("/_drover/faults")["injected"]
        finally:
            op.stop()
    log = op.log()
    assert injected.get("409", 0) >= 1, injected
    assert "Peering keep-alive for" in log and "has failed" in log, log[-3000:]
    assert exited, f"the operator still ran {BOUND:.0f}s after kopf stopped: {log[-3000:]}"
