"""Policy layer: the canary rollout state machine, pure.

`next_rollout` reads the rollout state kept in status, the spec, what is observed (served versions,
analysis results, a control annotation) and `now`, and returns the next state, the traffic
weights, the actions for the I/O layer and the reason; the handler does what it says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from drover.api.rollout import (
    ACTIVE_PHASES,
    ROLLOUT_ANNOTATION,
    MetricResult,
    RejectedVersion,
    RolloutControl,
    RolloutPhase,
    RolloutRecord,
    RolloutResult,
    RolloutSpec,
    RolloutStatus,
    ServedVersion,
    Verdict,
    VersionRef,
)
from drover.api.rollout_status import HISTORY_LIMIT, REJECTED_LIMIT
from drover.policy.analysis import AnalysisAction, AnalysisVerdict, decide_analysis
from drover.policy.events import Event
from drover.policy.traffic import restart_evidence

P = RolloutPhase


class RolloutAction(StrEnum):
    """One-shot transitions for the I/O layer; several may come at once, in this order.

    Independently of them, the handler ensures every tick that the canary deployment runs
    `decision.canary` (none when None) and that the router has the decision's weights.
    """

    REMOVE_CANARY = "RemoveCanary"  # delete the canary deployment (weight already 0)
    DEPLOY_STABLE = "DeployStable"  # first version of a service: served directly, no canary
    DEPLOY_CANARY = "DeployCanary"  # deploy `decision.canary` beside the stable at weight 0
    # WarmUp: send warmup.requests generations and the evaluation prompts to the canary (also to
    # the stable, both timed, with a ttft/itl metric); report errorRate (added to evidence;
    # minRequests capped at warmup.requests), evaluationPassRate, a ttft/itl regression.
    WARM_UP = "WarmUp"
    # RunAnalysis: measure [analysis_window_start, now], add it to status.evidence, report.
    RUN_ANALYSIS = "RunAnalysis"
    PROMOTE_CANARY = "PromoteCanary"  # the canary becomes the stable at 100%, old one removed


@dataclass(frozen=True)
class RolloutObservation:
    """What the I/O layer saw this tick.

    `desired` is spec.model with its FoundationModel's digest (None while the digest is unknown).
    `analysis` holds the metric results the handler measured after a WarmUp / RunAnalysis
    action; results older than the current phase are ignored.
    """

    desired: VersionRef | None
    stable: ServedVersion | None
    canary: ServedVersion | None = None
    analysis: Sequence[MetricResult] | None = None
    control: RolloutControl | None = None
    # The router runs the current Serve config (policy.serving.router_current). A LoRA canary's
    # engine is ready before the router has its route; warm-up waits for both.
    routed: bool = True
    # Why Prometheus could not be read for `analysis` (unreachable, query failed), if it could not.
    metrics_unavailable: str | None = None


@dataclass(frozen=True)
class RolloutDecision:
    status: RolloutStatus
    stable_weight: int
    canary_weight: int
    actions: tuple[RolloutAction, ...]
    reason: str
    canary: VersionRef | None = None  # the version the canary deployment must run
    analysis_window_start: datetime | None = None
    events: tuple[Event, ...] = field(default_factory=tuple)


def _same(a: VersionRef | None, b: VersionRef | ServedVersion | None) -> bool:
    return a is not None and b is not None and (a.model, a.digest) == (b.model, b.digest)


def _ref(r: RejectedVersion) -> VersionRef:
    return VersionRef(model=r.model, digest=r.digest)


def _step_weight(st: RolloutStatus, spec: RolloutSpec) -> int:
    if st.step is None or st.phase not in (P.STEP, P.ANALYSING, P.PAUSED):
        return 0
    return spec.steps[min(st.step, len(spec.steps) - 1)].weight


class _Draft:
    """One decision as it is being made: a working copy of the status plus actions and events."""

    def __init__(self, st: RolloutStatus, now: datetime) -> None:
        self.st, self.now = st, now
        self.actions: list[RolloutAction] = []
        self.events: list[Event] = []
        self.window: datetime | None = None
        self.full_canary = False

    def act(self, action: RolloutAction) -> None:
        if action not in self.actions:
            self.actions.append(action)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def enter(self, phase: RolloutPhase, reason: str) -> None:
        self.st.phase, self.st.phase_started_at, self.st.reason = phase, self.now, reason

    def start(self, desired: VersionRef, stable: ServedVersion) -> None:
        prior = self.st
        self.st = RolloutStatus(target=desired, source=stable.ref(), canary_deployed_at=self.now)
        self.st.history = prior.history  # `rejected` is dropped: the spec changed
        self.enter(P.DEPLOYING, f"deploying canary {desired.label()} at weight 0")
        self.act(RolloutAction.DEPLOY_CANARY)
        self.event("Normal", "RolloutStarted", f"{stable.ref().label()} -> {desired.label()}")

    def finish(self, result: RolloutResult, reason: str) -> None:
        st = self.st
        target = st.target or VersionRef(model="unknown")  # only if status was edited by hand
        st.history.append(
            RolloutRecord(
                from_version=st.source,
                to_version=target,
                result=result,
                reason=reason,
                started_at=st.canary_deployed_at or st.phase_started_at or self.now,
                finished_at=self.now,
            )
        )
        st.history = st.history[-HISTORY_LIMIT:]
        if result in (RolloutResult.ROLLED_BACK, RolloutResult.ABORTED):
            st.rejected.append(
                RejectedVersion(
                    model=target.model, digest=target.digest, reason=reason, at=self.now
                )
            )
            st.rejected = st.rejected[-REJECTED_LIMIT:]
        if result == RolloutResult.PROMOTED:
            self.full_canary = True
            self.act(RolloutAction.PROMOTE_CANARY)
            self.enter(P.PROMOTED, f"promoted {target.label()}: {reason}")
            self.event("Normal", "RolloutPromoted", st.reason)
        elif result == RolloutResult.SUPERSEDED:
            self.act(RolloutAction.REMOVE_CANARY)
            self.event("Normal", "RolloutSuperseded", f"{target.label()}: {reason}")
        else:
            phase = P.ROLLED_BACK if result == RolloutResult.ROLLED_BACK else P.ABORTED
            self.act(RolloutAction.REMOVE_CANARY)
            self.enter(phase, f"{phase} {target.label()}: {reason}")
            self.event("Warning", f"Rollout{phase}", st.reason)

    def enter_step(self, index: int, spec: RolloutSpec, why: str) -> None:
        self.st.step, self.st.step_started_at, self.st.window_started_at = index, self.now, self.now
        self.st.evidence = restart_evidence(self.st.evidence)
        weight = spec.steps[index].weight
        self.enter(P.STEP, f"step {index + 1}/{len(spec.steps)}: canary at {weight}% ({why})")
        self.event("Normal", "RolloutStep", self.st.reason)


def next_rollout(
    state: RolloutStatus | None,
    spec: RolloutSpec,
    observed: RolloutObservation,
    now: datetime,
) -> RolloutDecision:
    """Decide the next rollout state, traffic weights and actions (see the module docstring)."""
    t = _Draft((state or RolloutStatus()).model_copy(deep=True), now)
    stable = observed.stable
    if stable is None:
        if observed.desired is not None:
            t.st = RolloutStatus(phase=P.STABLE, target=observed.desired, history=t.st.history)
            t.st.reason = f"serving {observed.desired.label()}: the first version needs no canary"
            t.act(RolloutAction.DEPLOY_STABLE)
        else:
            t.st.reason = "waiting for the model's digest"
        return _decide(t, spec, observed, None)
    if t.st.phase in ACTIVE_PHASES:
        _active(t, spec, observed, stable)
    else:
        _settled(t, observed, stable)
    canary = t.st.target if t.st.phase in ACTIVE_PHASES or t.full_canary else None
    return _decide(t, spec, observed, canary)


def _settled(t: _Draft, observed: RolloutObservation, stable: ServedVersion) -> None:
    """No rollout running (Stable, Promoted, RolledBack, Aborted): start one if the spec asks."""
    st, desired, canary = t.st, observed.desired, observed.canary
    if observed.control is not None:
        t.event("Warning", "RolloutControlIgnored", f"{observed.control}: no rollout is running")
    if st.phase == P.PROMOTED and _same(st.target, canary) and not _same(st.target, stable):
        t.full_canary = True  # the promotion is not done yet: ask again (idempotent)
        t.act(RolloutAction.PROMOTE_CANARY)
        return
    if desired is None or _same(desired, stable):
        if canary is not None:
            t.act(RolloutAction.REMOVE_CANARY)
        return
    rejected = next(
        (r for r in st.rejected if (r.model, r.digest) == (desired.model, desired.digest)), None
    )
    if rejected is not None:
        st.reason = (
            f"{desired.label()} was rejected ({rejected.reason}); set spec.model to another "
            "version to roll out again"
        )
        if canary is not None:
            t.act(RolloutAction.REMOVE_CANARY)
        return
    if canary is not None and not _same(desired, canary):
        t.act(RolloutAction.REMOVE_CANARY)
    t.start(desired, stable)


def _active(
    t: _Draft, spec: RolloutSpec, observed: RolloutObservation, stable: ServedVersion
) -> None:
    st, desired, control = t.st, observed.desired, observed.control
    if desired is not None and not _same(desired, st.target):
        if _same(desired, stable):
            t.finish(RolloutResult.SUPERSEDED, "spec.model changed back to the stable version")
            t.enter(P.STABLE, f"rollout of {st.target.label() if st.target else '?'} cancelled")
        else:
            t.finish(RolloutResult.SUPERSEDED, f"superseded by {desired.label()}")
            t.start(desired, stable)
        return
    ready = _same(st.target, observed.canary) and bool(observed.canary and observed.canary.ready)
    if control == RolloutControl.ABORT:
        t.finish(RolloutResult.ABORTED, f"aborted by the {ROLLOUT_ANNOTATION} annotation")
        return
    if control == RolloutControl.PROMOTE:
        if ready:
            t.finish(RolloutResult.PROMOTED, "promoted by annotation, remaining steps skipped")
            return
        t.event("Warning", "RolloutControlIgnored", "promote: the canary is not ready")
    if control == RolloutControl.PAUSE and st.phase != P.PAUSED:
        t.enter(P.PAUSED, f"paused by the {ROLLOUT_ANNOTATION} annotation")
        t.event("Normal", "RolloutPaused", st.reason)
        return
    if st.phase == P.PAUSED:
        if control != RolloutControl.RESUME:
            return
        t.event("Normal", "RolloutResumed", f"resumed by the {ROLLOUT_ANNOTATION} annotation")
        if st.step is None:
            t.enter(P.DEPLOYING, "resumed: waiting for the canary to be ready")
        else:
            st.window_started_at = t.now
            t.enter(P.STEP, f"resumed at step {st.step + 1}/{len(spec.steps)}")
    elif control == RolloutControl.RESUME:
        t.event("Warning", "RolloutControlIgnored", "resume: the rollout is not paused")
    _progress(t, spec, observed, ready)


def _progress(t: _Draft, spec: RolloutSpec, observed: RolloutObservation, ready: bool) -> None:
    st, now = t.st, t.now
    started = st.phase_started_at or now
    deadline = timedelta(seconds=spec.ready_deadline_seconds)
    if st.phase == P.DEPLOYING and not (ready and observed.routed):
        if now - started >= deadline:
            t.finish(
                RolloutResult.ROLLED_BACK,
                f"CanaryNotReady: not ready within readyDeadlineSeconds "
                f"{spec.ready_deadline_seconds}",
            )
        return
    if not ready:  # Warming, Step or Analysing and the canary lost readiness: no traffic to it
        st.step = None
        t.enter(P.DEPLOYING, "canary not ready: weight 0 until it is ready, then warm-up again")
        t.event("Warning", "CanaryNotReady", st.reason)
        return
    if st.phase == P.DEPLOYING:
        t.event("Normal", "CanaryReady", f"canary {st.target.label() if st.target else ''} ready")
        if spec.warmup.requests == 0 and not spec.analysis.evaluation_prompts:
            t.enter_step(0, spec, "ready; no warm-up configured")
            return
        st.window_started_at = now
        t.enter(P.WARMING, f"canary ready: sending {spec.warmup.requests} warm-up requests")
    if st.phase == P.STEP and now - started >= timedelta(seconds=spec.analysis.interval_seconds):
        t.enter(P.ANALYSING, f"analysing step {(st.step or 0) + 1}/{len(spec.steps)}")
    if st.phase in (P.WARMING, P.ANALYSING):
        _analyse(t, spec, observed)


def _analyse(t: _Draft, spec: RolloutSpec, observed: RolloutObservation) -> None:
    st, now = t.st, t.now
    fresh, measured = _fresh_results(t, spec, observed)
    if fresh is None:
        return  # measuring, or out of time to warm up
    a = spec.analysis
    unavailable = observed.metrics_unavailable if measured else None
    verdict = decide_analysis(
        fresh, st.failures, st.inconclusives, a.failure_limit, a.on_inconclusive, unavailable
    )
    st.analysis, st.failures, st.inconclusives = (
        list(fresh),
        verdict.failures,
        verdict.inconclusives,
    )
    if not verdict.blind:
        st.evidence.update({r.metric: r.evidence for r in fresh if r.evidence is not None})
    name = "Warm-up" if st.phase == P.WARMING else "Analysis"
    kind = "Normal" if verdict.verdict == Verdict.SUCCESSFUL else "Warning"
    t.event(kind, f"{name}{verdict.verdict}", verdict.reason)
    if verdict.action == AnalysisAction.ROLLBACK:
        t.finish(RolloutResult.ROLLED_BACK, verdict.reason)
        return
    if measured and not verdict.blind:
        # The window's observations are summed in st.evidence: the next window starts here,
        # decided or not, so no request is counted twice.
        st.window_started_at = now
    if st.phase == P.WARMING:
        if verdict.action == AnalysisAction.CONTINUE:
            t.enter_step(0, spec, "warm-up passed")
        else:  # hold: warm up and check again
            t.enter(P.WARMING, verdict.reason)
            t.act(RolloutAction.WARM_UP)
            t.window = st.window_started_at
        return
    _after_step_analysis(t, spec, verdict)


def _fresh_results(
    t: _Draft, spec: RolloutSpec, observed: RolloutObservation
) -> tuple[list[MetricResult] | None, bool]:
    """This phase's results and whether they were measured (not a timeout's inconclusive);
    None when there are none yet: it then asks for a measurement, or rolls back a warm-up that
    ran out of time."""
    st, now = t.st, t.now
    started = st.phase_started_at or now
    # None: not measured yet. A list with a result older than this phase is stale. An empty
    # list is a measurement with nothing to check (no metrics configured): a success.
    got = observed.analysis
    stale = got is not None and any(r.measured_at < started for r in got)
    if got is not None and not stale:
        return list(got), True
    warming = st.phase == P.WARMING
    limit = spec.ready_deadline_seconds if warming else spec.analysis.interval_seconds
    if now - started < timedelta(seconds=limit):
        t.act(RolloutAction.WARM_UP if warming else RolloutAction.RUN_ANALYSIS)
        t.window = st.window_started_at
        return None, False
    if warming:
        t.finish(RolloutResult.ROLLED_BACK, "CanaryNotReady: warm-up did not complete")
        return None, False
    timeout = MetricResult(
        metric="analysis",
        verdict=Verdict.INCONCLUSIVE,
        measured_at=now,
        message=f"no analysis results within intervalSeconds {limit}",
    )
    return [timeout], False


def _after_step_analysis(t: _Draft, spec: RolloutSpec, verdict: AnalysisVerdict) -> None:
    """A step's analysis decided: the next step (or promotion) once its pause is over, else stay."""
    st, now = t.st, t.now
    step = min(st.step or 0, len(spec.steps) - 1)  # the steps may have shrunk mid-rollout
    paused_enough = now - (st.step_started_at or now) >= timedelta(
        seconds=spec.steps[step].pause_seconds
    )
    if verdict.action == AnalysisAction.CONTINUE and paused_enough:
        if step + 1 < len(spec.steps):
            t.enter_step(step + 1, spec, "analysis successful")
        else:
            t.finish(RolloutResult.PROMOTED, "every step's analysis successful")
        return
    t.enter(P.STEP, f"step {step + 1}/{len(spec.steps)}: {verdict.reason}")


def _decide(
    t: _Draft, spec: RolloutSpec, observed: RolloutObservation, canary: VersionRef | None
) -> RolloutDecision:
    ready = _same(t.st.target, observed.canary) and bool(observed.canary and observed.canary.ready)
    weight = 0  # never route to a canary that is not ready
    if ready:
        weight = 100 if t.full_canary else _step_weight(t.st, spec)
    return RolloutDecision(
        status=t.st,
        stable_weight=100 - weight,
        canary_weight=weight,
        actions=tuple(sorted(t.actions, key=list(RolloutAction).index)),
        reason=t.st.reason,
        canary=canary,
        analysis_window_start=t.window,
        events=tuple(t.events),
    )
