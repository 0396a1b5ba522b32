"""The operator SIGKILLed at seeded random moments while the chain progresses, and restarted each
time: the resources reach the undisturbed run's end state, with no duplicate child (children
grouped by their `drover.dev/<kind>` label), no orphan, and each child created exactly once.

KubeRay's part is played by the harness (no Ray): the chain covered is the operator's —
fetch RayJobs and cache claims, the fine-tune RayJob and the model it produces, the index build,
the RayServices and their Ready status.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from tests.chaos.conftest import resources
from tests.chaos.harness import (
    KubeRay,
    control_plane,
    differences,
    done,
    ended,
    expected_names,
    settle,
)

pytestmark = pytest.mark.chaos

KILLS = 24
SEED = 1616
# Up-time before each kill, drawn uniformly: short enough to land in the middle of reconciles
# (an operator takes about 2 s to start and list), long enough for progress between kills.
UPTIME = (0.5, 3.5)
# Each RayJob runs this long here (4 s in the undisturbed run: the end state does not depend on
# it): the chain of three jobs in a row (fetch, fine-tune, its output's fetch) then outlasts the
# kills, so they land while it progresses; with 4 s it once finished after 15 kills, and with
# 10 s after 19 once the operator reacted to status events instead of polling.
JOB_SECONDS = 15.0
DEADLINE = 300  # for the chain to settle after the last kill; generous, see conftest


def test_sigkilled_operator_restarted_reaches_the_undisturbed_end_state(
    tmp_path: Path, dashboard, undisturbed
) -> None:
    rng = random.Random(SEED)
    docs = resources()
    pending = list(docs)
    expected = expected_names(docs)
    in_progress = 0  # kills that landed before every resource had reached its end phase
    finished: list[int] = []  # resources in their end phase at each kill
    with control_plane(tmp_path / "cp") as cp, KubeRay(cp, dashboard, job_seconds=JOB_SECONDS):
        op = cp.start_operator(tmp_path / "operator-0.log")
        try:
            for kill in range(1, KILLS + 1):
                # Resources arrive while the operator dies and restarts.
                for _ in range(min(len(pending), rng.randint(0, 2))):
                    cp.create(pending.pop(0))
                time.sleep(rng.uniform(*UPTIME))
                if not done(cp, expected):
                    in_progress += 1
                finished.append(ended(cp))
                op.kill()
                op = cp.start_operator(tmp_path / f"operator-{kill}.log")
            for doc in pending:
                cp.create(doc)
            state = settle(cp, expected, DEADLINE)
            creates = cp.creates()
        finally:
            op.stop()
    # The kills landed while the chain progressed, and it progressed between them.
    assert in_progress >= 20, (in_progress, finished)
    assert finished[-1] > finished[0], finished
    assert state.orphans == []
    lost = differences(state.children, undisturbed.children)
    assert not lost, "\n".join(lost)  # no duplicate, none missing
    lost = differences(state.statuses, undisturbed.statuses)
    assert not lost, "\n".join(lost)
    assert creates["rayjobs.ray.io"] == state.counts["rayjobs"]
    assert creates["rayservices.ray.io"] == state.counts["rayservices"]
    assert creates["persistentvolumeclaims"] == state.counts["persistentvolumeclaims"]
    # The fine-tune's output model is created by the operator too: once.
    assert creates["foundationmodels.drover.dev"] == 1
