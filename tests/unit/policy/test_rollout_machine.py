"""Unit tests of the canary rollout state machine (`drover.policy.rollout`) with a fixed clock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from drover.api.rollout import (
    Analysis,
    MetricResult,
    RolloutPhase,
    RolloutSpec,
    RolloutStatus,
    RolloutStep,
    ServedVersion,
    Verdict,
    VersionRef,
    Warmup,
)
from drover.policy.rollout import (
    RolloutAction,
    RolloutControl,
    RolloutDecision,
    RolloutObservation,
    next_rollout,
)

A = RolloutAction
P = RolloutPhase
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
OLD = VersionRef(model="qwen-0-5b", digest="sha256:" + "a" * 64)
NEW = VersionRef(model="qwen-support", digest="sha256:" + "b" * 64)
NEWER = VersionRef(model="qwen-support", digest="sha256:" + "c" * 64)
SPEC = RolloutSpec(
    steps=[RolloutStep(weight=5, pause_seconds=60), RolloutStep(weight=50, pause_seconds=60)],
    ready_deadline_seconds=300,
    analysis=Analysis(interval_seconds=30, failure_limit=1),
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def served(v: VersionRef, ready: bool = True) -> ServedVersion:
    return ServedVersion(model=v.model, digest=v.digest, ready=ready)


def results(verdict: Verdict, seconds: float, metric: str = "errorRate") -> list[MetricResult]:
    return [MetricResult(metric=metric, value=0.5, verdict=verdict, measured_at=at(seconds))]


def tick(
    state: RolloutStatus | None,
    seconds: float,
    *,
    desired: VersionRef | None = NEW,
    stable: VersionRef | None = OLD,
    canary: VersionRef | None = NEW,
    ready: bool = True,
    analysis: Sequence[MetricResult] | None = None,
    control: RolloutControl | None = None,
    spec: RolloutSpec = SPEC,
) -> RolloutDecision:
    observed = RolloutObservation(
        desired=desired,
        stable=served(stable) if stable else None,
        canary=served(canary, ready) if canary else None,
        analysis=analysis,
        control=control,
    )
    return next_rollout(state, spec, observed, at(seconds))


def deploying() -> RolloutStatus:
    d = tick(None, 0, canary=None)
    assert d.status.phase == P.DEPLOYING
    return d.status


def warming() -> RolloutStatus:
    d = tick(deploying(), 10)
    assert d.status.phase == P.WARMING
    return d.status


def at_step(index: int) -> RolloutStatus:
    """The rollout entered step `index` at t = 20 + 60 * index (each step's pause is 60 s)."""
    d = tick(warming(), 20, analysis=results(Verdict.SUCCESSFUL, 15))
    for i in range(index):
        start = 20 + 60 * i
        d = tick(d.status, start + 60)
        d = tick(d.status, start + 60, analysis=results(Verdict.SUCCESSFUL, start + 60))
    assert d.status.phase == P.STEP and d.status.step == index
    return d.status


# --- settled phases --------------------------------------------------------------------------


def test_first_version_is_served_directly_without_a_canary() -> None:
    d = tick(None, 0, stable=None, canary=None)
    assert d.actions == (A.DEPLOY_STABLE,)
    assert d.status.phase == P.STABLE and d.status.target == NEW
    assert d.canary_weight == 0 and d.canary is None


def test_unknown_digest_waits_and_does_nothing() -> None:
    d = tick(None, 0, desired=None, stable=None, canary=None)
    assert d.actions == ()
    assert "digest" in d.reason


def test_unchanged_model_stays_stable_at_full_weight() -> None:
    d = tick(None, 0, desired=OLD, canary=None)
    assert (d.status.phase, d.actions, d.stable_weight, d.canary_weight) == (P.STABLE, (), 100, 0)


def test_leftover_canary_is_removed_when_no_rollout_runs() -> None:
    d = tick(None, 0, desired=OLD, canary=NEW)
    assert d.actions == (A.REMOVE_CANARY,)
    assert d.canary_weight == 0


def test_model_change_deploys_the_canary_at_weight_zero() -> None:
    d = tick(None, 0, canary=None)
    assert d.status.phase == P.DEPLOYING
    assert d.actions == (A.DEPLOY_CANARY,)
    assert d.canary == NEW and (d.stable_weight, d.canary_weight) == (100, 0)
    assert d.status.target == NEW and d.status.source == OLD
    assert d.status.canary_deployed_at == T0
    assert [e.reason for e in d.events] == ["RolloutStarted"]


# --- readiness -------------------------------------------------------------------------------


def test_canary_not_ready_gets_no_weight_before_the_deadline() -> None:
    d = tick(deploying(), 299, ready=False)
    assert d.status.phase == P.DEPLOYING
    assert d.canary_weight == 0 and d.canary == NEW and d.actions == ()


def test_canary_not_ready_by_the_deadline_rolls_back_with_canary_not_ready() -> None:
    d = tick(deploying(), 300, ready=False)
    assert d.status.phase == P.ROLLED_BACK
    assert d.actions == (A.REMOVE_CANARY,)
    assert d.canary_weight == 0
    assert d.status.reason.split(": ")[1].startswith("CanaryNotReady")
    assert d.status.rejected[0].model == NEW.model
    assert d.status.history[-1].result == "RolledBack"


def test_ready_canary_is_warmed_before_it_gets_traffic() -> None:
    d = tick(deploying(), 10)
    assert d.status.phase == P.WARMING
    assert d.actions == (A.WARM_UP,) and d.canary == NEW
    assert d.canary_weight == 0
    assert d.analysis_window_start == at(10)


def test_canary_that_loses_readiness_mid_step_drops_to_weight_zero_at_once() -> None:
    d = tick(at_step(1), 100, ready=False)
    assert d.status.phase == P.DEPLOYING and d.status.step is None
    assert d.canary_weight == 0 and d.stable_weight == 100
    assert any(e.reason == "CanaryNotReady" for e in d.events)
    again = tick(d.status, 110)
    assert again.status.phase == P.WARMING and again.canary_weight == 0


def test_canary_that_loses_readiness_while_warming_goes_back_to_deploying() -> None:
    d = tick(warming(), 15, ready=False)
    assert d.status.phase == P.DEPLOYING and d.canary_weight == 0 and d.actions == ()


def test_paused_canary_that_is_not_ready_gets_no_weight() -> None:
    paused = tick(at_step(1), 100, control=RolloutControl.PAUSE).status
    d = tick(paused, 110, ready=False)
    assert d.status.phase == P.PAUSED and d.canary_weight == 0 and d.stable_weight == 100


def test_vanished_canary_deployment_is_treated_as_not_ready() -> None:
    d = tick(at_step(0), 30, canary=None)
    assert d.status.phase == P.DEPLOYING and d.canary_weight == 0


# --- warm-up ---------------------------------------------------------------------------------


def test_canary_goes_straight_to_the_first_step_without_warm_up_or_prompts() -> None:
    spec = SPEC.model_copy(update={"warmup": Warmup(requests=0)})
    d = tick(tick(None, 0, canary=None, spec=spec).status, 10, spec=spec)
    assert d.status.phase == P.STEP and d.status.step == 0 and d.canary_weight == 5
    assert d.actions == ()


def test_passing_warm_up_starts_the_first_step() -> None:
    d = tick(warming(), 20, analysis=results(Verdict.SUCCESSFUL, 15))
    assert d.status.phase == P.STEP and d.status.step == 0
    assert d.canary_weight == 5 and d.stable_weight == 95
    assert d.status.step_started_at == at(20)


def test_results_older_than_the_phase_are_ignored() -> None:
    d = tick(warming(), 20, analysis=results(Verdict.SUCCESSFUL, 5))
    assert d.status.phase == P.WARMING and A.WARM_UP in d.actions


def test_failing_warm_up_holds_then_rolls_back_past_the_failure_limit() -> None:
    first = tick(warming(), 20, analysis=results(Verdict.FAILED, 15))
    assert first.status.phase == P.WARMING and first.status.failures == 1
    assert A.WARM_UP in first.actions and first.canary_weight == 0
    second = tick(first.status, 40, analysis=results(Verdict.FAILED, 35))
    assert second.status.phase == P.ROLLED_BACK and second.status.failures == 2
    assert second.actions == (A.REMOVE_CANARY,)


def test_warm_up_that_never_reports_rolls_back_as_not_ready() -> None:
    d = tick(warming(), 10 + 300)
    assert d.status.phase == P.ROLLED_BACK and "CanaryNotReady" in d.reason


# --- steps and analysis ----------------------------------------------------------------------


def test_step_waits_one_interval_before_analysing() -> None:
    d = tick(at_step(0), 49)
    assert d.status.phase == P.STEP and d.actions == ()
    d = tick(d.status, 50)
    assert d.status.phase == P.ANALYSING and A.RUN_ANALYSIS in d.actions
    assert d.analysis_window_start == at(20)
    assert d.canary_weight == 5


def test_successful_analysis_before_the_pause_is_over_stays_at_the_step() -> None:
    d = tick(tick(at_step(0), 50).status, 50, analysis=results(Verdict.SUCCESSFUL, 50))
    assert d.status.phase == P.STEP and d.status.step == 0
    assert d.status.window_started_at == at(50)
    assert d.status.analysis[0].verdict == Verdict.SUCCESSFUL


def test_successful_analysis_after_the_pause_advances_to_the_next_weight() -> None:
    s = tick(at_step(0), 80).status
    d = tick(s, 80, analysis=results(Verdict.SUCCESSFUL, 80))
    assert d.status.phase == P.STEP and d.status.step == 1
    assert d.canary_weight == 50
    assert any(e.reason == "RolloutStep" for e in d.events)


def test_last_successful_step_promotes_the_canary() -> None:
    s = tick(at_step(1), 140).status
    d = tick(s, 140, analysis=results(Verdict.SUCCESSFUL, 140))
    assert d.status.phase == P.PROMOTED
    assert d.actions == (A.PROMOTE_CANARY,)
    assert (d.stable_weight, d.canary_weight) == (0, 100)
    assert d.status.history[-1].result == "Promoted"
    assert d.status.history[-1].from_version == OLD


def test_promotion_is_asked_again_until_done_then_stable() -> None:
    s = tick(tick(at_step(1), 140).status, 140, analysis=results(Verdict.SUCCESSFUL, 140)).status
    pending = tick(s, 150)
    assert pending.actions == (A.PROMOTE_CANARY,) and pending.canary_weight == 100
    done = tick(s, 160, stable=NEW, canary=None)
    assert done.actions == () and done.status.phase == P.PROMOTED
    assert (done.stable_weight, done.canary_weight) == (100, 0)


def test_failed_analyses_beyond_the_limit_roll_back_at_once() -> None:
    s = tick(at_step(1), 110).status
    first = tick(s, 110, analysis=results(Verdict.FAILED, 110))
    assert first.status.phase == P.STEP and first.status.failures == 1
    assert first.canary_weight == 50 and first.status.window_started_at == at(110)
    s = tick(first.status, 140).status
    second = tick(s, 140, analysis=results(Verdict.FAILED, 140))
    assert second.status.phase == P.ROLLED_BACK
    assert (second.stable_weight, second.canary_weight) == (100, 0)
    assert second.actions == (A.REMOVE_CANARY,)
    assert second.status.rejected[-1].digest == NEW.digest
    assert any(e.type == "Warning" and e.reason == "RolloutRolledBack" for e in second.events)


def test_model_change_after_a_promotion_starts_the_next_rollout() -> None:
    promoted = tick(at_step(0), 30, control=RolloutControl.PROMOTE).status
    done = tick(promoted, 40, stable=NEW, canary=None).status
    d = tick(done, 50, desired=NEWER, stable=NEW, canary=None)
    assert d.status.phase == P.DEPLOYING and d.canary == NEWER
    assert d.status.source == NEW and d.status.failures == 0
    assert [r.result for r in d.status.history] == ["Promoted"]


def test_rejected_version_is_not_retried_until_the_spec_changes() -> None:
    rolled_back = tick(deploying(), 300, ready=False).status
    same = tick(rolled_back, 400, canary=None)
    assert same.status.phase == P.ROLLED_BACK and same.actions == ()
    assert "rejected" in same.reason
    changed = tick(rolled_back, 500, desired=NEWER, canary=None)
    assert changed.status.phase == P.DEPLOYING and changed.canary == NEWER
    assert changed.status.rejected == []
    assert changed.status.history[-1].result == "RolledBack"


def test_inconclusive_analysis_holds_the_weight_and_keeps_accumulating() -> None:
    s = tick(at_step(0), 50).status
    d = tick(s, 50, analysis=results(Verdict.INCONCLUSIVE, 50))
    assert d.status.phase == P.STEP and d.canary_weight == 5
    assert d.status.inconclusives == 1 and d.status.failures == 0
    assert d.status.window_started_at == at(20)


def test_inconclusive_counts_as_failure_with_on_inconclusive_rollback() -> None:
    spec = SPEC.model_copy(
        update={
            "analysis": Analysis(interval_seconds=30, failure_limit=0, on_inconclusive="rollback")
        }
    )
    s = tick(at_step(0), 50, spec=spec).status
    d = tick(s, 50, analysis=results(Verdict.INCONCLUSIVE, 50), spec=spec)
    assert d.status.phase == P.ROLLED_BACK


def test_analysis_with_nothing_to_check_counts_as_successful() -> None:
    s = tick(at_step(1), 140).status
    d = tick(s, 140, analysis=[])
    assert d.status.phase == P.PROMOTED


def test_missing_analysis_results_for_an_interval_count_as_inconclusive() -> None:
    s = tick(at_step(0), 50).status
    waiting = tick(s, 79)
    assert waiting.status.phase == P.ANALYSING and A.RUN_ANALYSIS in waiting.actions
    d = tick(s, 80)
    assert d.status.phase == P.STEP and d.status.inconclusives == 1
    assert d.status.analysis[0].verdict == Verdict.INCONCLUSIVE


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
