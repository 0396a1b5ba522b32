"""Unit tests of the canary rollout state machine (`drover.policy.rollout`) with a fixed clock:
spec changes during a rollout, the control annotations, restarts."""

from __future__ import annotations

import pytest
from tests.unit.policy.rollout_support import (
    NEW,
    NEWER,
    OLD,
    SPEC,
    A,
    P,
    at,
    at_step,
    deploying,
    results,
    tick,
)

from drover.api.rollout import (
    RolloutControl,
    RolloutStatus,
    RolloutStep,
    Verdict,
    VersionRef,
)

# --- a new spec change during a rollout ------------------------------------------------------


def test_new_model_during_a_rollout_supersedes_it_and_removes_the_old_canary() -> None:
    d = tick(at_step(1), 100, desired=NEWER)
    assert d.actions == (A.REMOVE_CANARY, A.DEPLOY_CANARY)
    assert d.canary == NEWER and d.status.target == NEWER and d.status.phase == P.DEPLOYING
    assert d.canary_weight == 0
    assert d.status.history[-1].result == "Superseded"
    assert d.status.history[-1].to_version == NEW


def test_spec_back_to_the_stable_version_cancels_the_rollout() -> None:
    d = tick(at_step(0), 30, desired=OLD)
    assert d.status.phase == P.STABLE and d.actions == (A.REMOVE_CANARY,)
    assert d.canary_weight == 0 and d.status.history[-1].result == "Superseded"


# --- annotations -----------------------------------------------------------------------------


def test_pause_freezes_the_weight_and_stops_analysis_until_resume() -> None:
    paused = tick(at_step(0), 30, control=RolloutControl.PAUSE)
    assert paused.status.phase == P.PAUSED and paused.canary_weight == 5
    later = tick(paused.status, 1000)
    assert later.status.phase == P.PAUSED and A.RUN_ANALYSIS not in later.actions
    resumed = tick(later.status, 1000, control=RolloutControl.RESUME)
    assert resumed.status.phase == P.STEP and resumed.status.step == 0
    assert resumed.canary_weight == 5 and resumed.status.window_started_at == at(1000)


def test_paused_before_the_steps_resumes_into_warm_up() -> None:
    paused = tick(deploying(), 5, ready=False, control=RolloutControl.PAUSE)
    resumed = tick(paused.status, 500, control=RolloutControl.RESUME)
    assert resumed.status.phase == P.WARMING and resumed.canary_weight == 0


def test_promote_annotation_skips_the_remaining_steps() -> None:
    d = tick(at_step(0), 30, control=RolloutControl.PROMOTE)
    assert d.status.phase == P.PROMOTED and d.actions == (A.PROMOTE_CANARY,)
    assert d.canary_weight == 100


def test_promote_annotation_is_refused_for_a_canary_that_is_not_ready() -> None:
    d = tick(deploying(), 5, ready=False, control=RolloutControl.PROMOTE)
    assert d.status.phase == P.DEPLOYING and d.canary_weight == 0
    assert any(e.reason == "RolloutControlIgnored" for e in d.events)


def test_abort_annotation_rolls_back_and_rejects_the_version() -> None:
    d = tick(at_step(1), 100, control=RolloutControl.ABORT)
    assert d.status.phase == P.ABORTED and d.actions == (A.REMOVE_CANARY,)
    assert d.canary_weight == 0
    assert d.status.rejected[-1].model == NEW.model
    assert d.status.history[-1].result == "Aborted"


def test_resume_without_a_pause_is_ignored_with_a_warning() -> None:
    d = tick(at_step(0), 30, control=RolloutControl.RESUME)
    assert d.status.phase == P.STEP and d.canary_weight == 5
    assert [e.reason for e in d.events] == ["RolloutControlIgnored"]


def test_annotation_without_a_rollout_is_ignored_with_a_warning() -> None:
    d = tick(None, 0, desired=OLD, canary=None, control=RolloutControl.ABORT)
    assert d.status.phase == P.STABLE and d.actions == ()
    assert d.events[0].type == "Warning"


# --- restart and bookkeeping -----------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0, 10, 50, 80])
def test_state_survives_a_round_trip_through_status(seconds: float) -> None:
    s = at_step(0)
    direct = tick(s, seconds + 20)
    restored = RolloutStatus.model_validate(s.to_wire())
    again = tick(restored, seconds + 20)
    assert again.status == direct.status and again.actions == direct.actions


def test_steps_shrunk_mid_rollout_continue_from_the_last_remaining_step() -> None:
    shorter = SPEC.model_copy(update={"steps": [RolloutStep(weight=5, pause_seconds=60)]})
    s = tick(at_step(1), 140, spec=shorter).status
    assert s.phase == P.ANALYSING
    d = tick(s, 140, analysis=results(Verdict.SUCCESSFUL, 140), spec=shorter)
    assert d.status.phase == P.PROMOTED


def test_history_keeps_the_last_ten_rollouts() -> None:
    state: RolloutStatus | None = None
    for i in range(12):
        v = VersionRef(model="m", digest=f"sha256:{i:064d}")
        state = tick(state, i, desired=v, canary=None).status
        state = tick(state, i, desired=v, canary=v, control=RolloutControl.ABORT).status
    assert state is not None and len(state.history) == 10
    assert state.history[-1].to_version.digest.endswith("11")


def test_good_version_walks_every_phase_with_rising_weights() -> None:
    trail: list[tuple[str, int]] = []
    d = tick(None, 0, canary=None)
    trail.append((d.status.phase, d.canary_weight))
    t = 0.0
    while d.status.phase not in (P.PROMOTED, P.ROLLED_BACK) and t < 1000:
        t += 10
        fresh = None
        if A.RUN_ANALYSIS in d.actions or A.WARM_UP in d.actions:
            fresh = results(Verdict.SUCCESSFUL, t)
        d = tick(d.status, t, analysis=fresh)
        if (d.status.phase, d.canary_weight) != trail[-1]:
            trail.append((d.status.phase, d.canary_weight))
    assert [p for p, _ in trail][:3] == [P.DEPLOYING, P.WARMING, P.STEP]
    assert d.status.phase == P.PROMOTED
    weights = [w for _, w in trail]
    assert weights == sorted(weights) and weights[-1] == 100
    assert 5 in weights and 50 in weights
