"""Unit tests of the canary rollout state machine (`drover.policy.rollout`) with a fixed clock:
settled phases, readiness, warm-up, steps and analysis."""

from __future__ import annotations

from tests.unit.policy.rollout_support import (
    NEW,
    NEWER,
    OLD,
    SPEC,
    T0,
    A,
    P,
    at,
    at_step,
    deploying,
    results,
    tick,
    warming,
)

from drover.api.rollout import (
    Analysis,
    Evidence,
    RolloutControl,
    RolloutStatus,
    Verdict,
    Warmup,
)
from drover.policy.sequential import Sprt

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


def test_warm_up_waits_until_the_router_runs_the_canarys_route() -> None:
    # A LoRA canary's engine is its base's, ready before the router applied the config that
    # routes to it; warming up then would count the router's refusals against the canary.
    held = tick(deploying(), 10, routed=False)
    assert held.status.phase == P.DEPLOYING and A.WARM_UP not in held.actions
    assert held.canary_weight == 0
    d = tick(held.status, 12)
    assert d.status.phase == P.WARMING and A.WARM_UP in d.actions


def test_a_router_update_during_a_step_does_not_pull_the_canary_back() -> None:
    d = tick(at_step(0), 30, routed=False)  # a weight change being applied by the router
    assert d.status.phase == P.STEP and d.canary_weight == 5


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


def test_inconclusive_analysis_holds_the_weight_and_keeps_its_evidence_in_status() -> None:
    s = tick(at_step(0), 50).status
    measured = results(Verdict.INCONCLUSIVE, 50)
    measured[0].evidence = Evidence(canary_samples=7, log_likelihood_ratio=-1.0, windows=1)
    d = tick(s, 50, analysis=measured)
    assert d.status.phase == P.STEP and d.canary_weight == 5
    assert d.status.inconclusives == 1 and d.status.failures == 0
    # The window's requests are summed in status.evidence, so the next window starts now:
    # nothing is counted twice, and a restarted operator continues from the same sums.
    assert d.status.window_started_at == at(50)
    assert d.status.evidence["errorRate"].canary_samples == 7
    again = tick(RolloutStatus.model_validate(d.status.to_wire()), 80)
    assert again.analysis_window_start == at(50)
    assert again.status.evidence == d.status.evidence


def test_missing_results_keep_the_window_open() -> None:
    s = tick(at_step(0), 50).status
    d = tick(s, 80)  # nothing measured within intervalSeconds: the window was never read
    assert d.status.inconclusives == 1 and d.status.window_started_at == at(20)


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


def test_a_new_step_restarts_the_evidence_at_the_pass_boundary() -> None:
    # Evidence banked far below the pass boundary at 5% is dropped at 50%, so a regression that
    # shows only at the higher weight needs no more evidence than at the first step.
    s = tick(at_step(0), 80).status
    banked = Evidence(canary_samples=900, log_likelihood_ratio=-40.0, accept_at=Sprt().accept_at)
    measured = results(Verdict.SUCCESSFUL, 80)
    measured[0].evidence = banked
    d = tick(s, 80, analysis=measured)
    assert d.status.step == 1 and d.canary_weight == 50
    kept = d.status.evidence["errorRate"]
    assert kept.log_likelihood_ratio == Sprt().accept_at and kept.canary_samples == 900


def test_by_default_the_first_failed_sequential_test_rolls_back() -> None:
    spec = SPEC.model_copy(update={"analysis": Analysis(interval_seconds=30)})
    s = tick(at_step(0), 50, spec=spec).status
    d = tick(s, 50, analysis=results(Verdict.FAILED, 50), spec=spec)
    assert d.status.phase == P.ROLLED_BACK and d.canary_weight == 0
