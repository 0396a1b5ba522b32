"""Several dependencies in one condition: every problem is named, the first sets the reason."""

from __future__ import annotations

from drover.policy.conditions import Cond
from drover.policy.dependencies import all_problems, decide_model_ready

READY = {"status": {"phase": "Ready", "digest": "sha256:ab"}}


def test_all_ready_is_no_problem() -> None:
    ready = decide_model_ready("ModelReady", "spec.model.name", "m", READY)
    assert all_problems([ready, Cond("ModelReady", True, "IndexReady", "ok")]) is None


def test_every_problem_is_named_and_the_first_gives_the_reason() -> None:
    model = decide_model_ready("ModelReady", "spec.model.name", "base", None)
    adapter = decide_model_ready("ModelReady", "spec.adapter.name", "lora", {"status": {}})
    index = Cond("ModelReady", False, "IndexNotFound", "VectorIndex docs does not exist")
    cond = all_problems([model, adapter, index])
    assert cond is not None
    assert (cond.type, cond.status, cond.reason) == ("ModelReady", False, "ModelNotFound")
    assert cond.message == (
        "FoundationModel base does not exist; create it or fix spec.model.name; "
        "waiting for FoundationModel lora to be Ready (phase Pending); "
        "VectorIndex docs does not exist"
    )


def test_a_ready_model_before_a_problem_leaves_the_problem_alone() -> None:
    ready = decide_model_ready("ModelReady", "spec.model.name", "m", READY)
    waiting = Cond("ModelReady", False, "WaitingForIndex", "waiting for VectorIndex docs")
    assert all_problems([ready, waiting]) == waiting
