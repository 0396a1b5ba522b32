"""Benchmarks: the canary rollout simulation behind bench/canary.py.

One `Run` replays a trace through a stable and a canary version behind a smooth weighted router
and drives Drover's real rollout state machine and analysis, as the operator's handler would:
it measures when asked (RunAnalysis, WarmUp) and decides again in the same tick. What it measures
is what Prometheus would answer: request and error counts per version, and histograms in the
router's own buckets (`drover_workers.serve.metrics`), for the analysis window. A policy is judged
either by Drover's sequential analysis (`judge_metric`, evidence carried in status) or, for the
baselines, by comparing each window's value with its threshold (`evaluate_metric`), as Flagger
and Argo Rollouts do.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from _sim import ReplicaModel, service_seconds
from _trace import Request, Trace, rotate
from drover.api.rollout import (
    AnalysisMetric,
    Evidence,
    MetricName,
    MetricResult,
    RolloutPhase,
    RolloutSpec,
    RolloutStatus,
    ServedVersion,
    VersionRef,
)
from drover.policy.analysis import WarmupTimings, evaluate_metric, judge_warmup
from drover.policy.rollout import RolloutAction, RolloutObservation, next_rollout
from drover.policy.sequential import Histogram
from drover.policy.traffic import Window, judge_metric, metric_quantile
from drover_workers.serve.metrics import ITL_BUCKETS, LATENCY_BUCKETS

EPOCH = datetime(2023, 11, 16, 18, 0, tzinfo=UTC)
OLD = VersionRef(model="chat", digest="sha256:" + "a" * 64)
NEW = VersionRef(model="chat-v2", digest="sha256:" + "b" * 64)
ROLLOUT_AT = 120.0  # seconds of stable-only traffic before the spec changes
LOAD_SECONDS = 20.0  # canary model load time before it is ready
HORIZON = 1800.0  # give up a run after this many seconds of rollout


@dataclass(frozen=True)
class Version:
    name: str
    error_rate: float = 0.0
    slowdown: float = 1.0

    @property
    def good(self) -> bool:
        return self.error_rate == 0 and self.slowdown <= 1.2


VERSIONS = (
    Version("good"),
    Version("good, 10% slower", slowdown=1.1),
    Version("bad: 20% errors", error_rate=0.2),
    Version("bad: 5% errors", error_rate=0.05),
    Version("bad: 3x latency", slowdown=3.0),
    Version("bad: 1.5x latency", slowdown=1.5),
)


class Served:
    """What one version's router metrics record: completions (latency, error) and first tokens.

    As the router's Prometheus histograms do, a latency is observed when the request completes
    and a TTFT when its first token is sent, so slow requests show up late in latencyP95.
    """

    def __init__(self) -> None:
        self.done: list[tuple[float, float, bool]] = []  # completion time, latency, error
        self.first: list[tuple[float, float]] = []  # first-token time, ttft
        self.gaps: list[tuple[float, float]] = []  # completion time, mean inter-token gap

    def add(self, arrival: float, latency: float, ttft: float, error: bool, generated: int) -> None:
        self.done.append((arrival + latency, latency, error))
        if not error and generated > 1:  # every answer streamed, as chat clients do
            self.gaps.append((arrival + latency, (latency - ttft) / (generated - 1)))
        if not error:
            self.first.append((arrival + ttft, ttft))

    def window(self, metric: str, start: float, end: float) -> Window:
        """What Prometheus holds of this version over [start, end] for one metric: request and
        error counts (errorRate), else a histogram in the router's buckets. Filled in as the
        canary's side of a Window; `Run.measure` moves the stable's to the other side."""
        if metric == MetricName.ERROR_RATE:
            done = _between(self.done, start, end)
            return Window(canary_requests=len(done), canary_errors=sum(r[2] for r in done))
        if metric.startswith("ttft"):
            values = [r[1] for r in _between(self.first, start, end)]
        elif metric.startswith("itl"):
            values = [r[1] for r in _between(self.gaps, start, end)]
            return Window(canary=Histogram.from_samples(ITL_BUCKETS, values))
        else:  # the router observes every answer's latency, failed ones too
            values = [r[1] for r in _between(self.done, start, end)]
        return Window(canary=Histogram.from_samples(LATENCY_BUCKETS, values))


def _between(rows: list[Any], start: float, end: float) -> list[Any]:
    rows.sort()
    return rows[bisect.bisect_left(rows, (start,)) : bisect.bisect_right(rows, (end, math.inf))]


class Run:
    """One rollout of one version under one policy on one replay of the trace."""

    def __init__(
        self,
        spec: RolloutSpec,
        version: Version,
        arrivals: list[Request],
        args: Any,
        seed: int,
        *,
        sequential: bool = True,
    ) -> None:
        self.spec, self.version, self.arrivals, self.args = spec, version, arrivals, args
        self.sequential = sequential
        self.rng = random.Random(seed)
        self.model = ReplicaModel()
        self.stable, self.canary = Served(), Served()
        self.status_json: dict[str, Any] | None = None
        self.weights = (100, 0)
        self.credit = 0.0
        self.deployed_at: float | None = None
        self.ready_at: float | None = None
        self.first_traffic: float | None = None
        self.pending: tuple[float, list[MetricResult]] | None = None
        self.counts = {"total": 0, "canary": 0, "failed": 0}

    def serve(self, req: Request, on_canary: bool) -> tuple[float, float, bool, bool]:
        """(latency, ttft, error, error caused by the canary's fault) of one request."""
        prefill, total = service_seconds(req, self.model)
        noise = self.rng.lognormvariate(0, 0.25)
        slow = self.version.slowdown if on_canary else 1.0
        fault = on_canary and self.rng.random() < self.version.error_rate
        error = fault or self.rng.random() < self.args.base_error_rate
        latency = 0.05 if error else total * noise * slow
        return latency, min(latency, prefill * noise * slow + 0.02), error, fault

    def route(self, until: float, start: int) -> int:
        i = start
        while i < len(self.arrivals) and self.arrivals[i].arrival < until:
            req = self.arrivals[i]
            i += 1
            ready = self.ready_at is not None
            # Smooth weighted routing: the canary takes a request each time its credit reaches
            # 100, so a 1% weight is 1 request in 100 exactly rather than on average.
            self.credit += self.weights[1] if ready else 0
            on_canary = self.credit >= 100
            self.credit -= 100 if on_canary else 0
            if self.deployed_at is not None and not ready and self.weights[1] > 0:
                self.counts["failed"] += 1  # routed to a canary that cannot serve: never expected
            latency, ttft, error, fault = self.serve(req, on_canary)
            served = self.canary if on_canary else self.stable
            served.add(req.arrival, latency, ttft, error, req.generated_tokens)
            if on_canary and self.first_traffic is None:
                self.first_traffic = req.arrival
            if req.arrival >= ROLLOUT_AT:
                self.counts["total"] += 1
                self.counts["canary"] += on_canary
                self.counts["failed"] += fault  # base errors happen with or without a rollout
        return i

    def measure(
        self, start: float, now: float, evidence: dict[str, Evidence]
    ) -> list[MetricResult]:
        at = EPOCH + timedelta(seconds=now)
        need = self.spec.analysis.min_requests
        out = []
        for m in self.spec.effective_metrics():
            if m.name == MetricName.EVALUATION_PASS_RATE:
                continue
            c, s = self.canary.window(m.name, start, now), self.stable.window(m.name, start, now)
            window = Window(
                canary_requests=c.canary_requests,
                canary_errors=c.canary_errors,
                stable_requests=s.canary_requests,
                stable_errors=s.canary_errors,
                canary=c.canary,
                stable=s.canary,
            )
            if self.sequential:
                out.append(judge_metric(m, window, evidence.get(m.name), need, measured_at=at))
            else:
                out.append(_threshold_result(m, window, need, at))
        return out

    def warm_up(self, now: float, recent: list[Request]) -> None:
        """Warm-up generations shaped like recent traffic, sent to the canary and, the same
        prompts, to the stable (as `drover.k8s.serving.warm_up` does); their first tokens and
        inter-token gaps timed as a streaming client would."""
        n = self.spec.warmup.requests
        cap = self.spec.warmup.max_tokens
        shapes = [self.rng.choice(recent) for _ in range(n)]
        asked = [Request(now, r.context_tokens, min(r.generated_tokens, cap)) for r in shapes]
        outcomes = [self.serve(r, True) for r in asked]
        stable = [self.serve(r, False) for r in asked]
        done = now + max((o[0] for o in outcomes + stable), default=0.0)
        errors = sum(o[2] for o in outcomes)
        at = EPOCH + timedelta(seconds=done)
        prior = self.evidence() if self.sequential else None
        timed = WarmupTimings(
            canary_ttft=tuple(o[1] for o in outcomes if not o[2]),
            stable_ttft=tuple(o[1] for o in stable if not o[2]),
            canary_itl=_gaps(asked, outcomes),
            stable_itl=_gaps(asked, stable),
        )
        results = judge_warmup(
            self.spec,
            n,
            errors,
            None,
            measured_at=at,
            prior=prior,
            timings=timed if self.sequential else None,
        )
        if not self.sequential:  # the baselines judge a warm-up by its value, as before
            results = [_threshold_warmup(r, self.spec, n, errors, at) for r in results]
        self.pending = (done, results)

    def evidence(self) -> dict[str, Evidence]:
        return RolloutStatus.model_validate(self.status_json).evidence if self.status_json else {}

    def decide(self, now: float, recent: list[Request]) -> RolloutPhase:
        analysis = None
        if self.pending is not None and self.pending[0] <= now:
            analysis, self.pending = self.pending[1], None
        for _ in range(2):  # a RunAnalysis action is measured and decided in the same tick
            d = next_rollout(
                RolloutStatus.model_validate(self.status_json) if self.status_json else None,
                self.spec,
                RolloutObservation(
                    desired=NEW if now >= ROLLOUT_AT else OLD,
                    stable=ServedVersion(model=OLD.model, digest=OLD.digest, ready=True),
                    canary=self.canary_version(now),
                    analysis=analysis,
                ),
                EPOCH + timedelta(seconds=now),
            )
            self.status_json = d.status.to_wire()
            self.weights = (d.stable_weight, d.canary_weight)
            if RolloutAction.DEPLOY_CANARY in d.actions:
                self.deployed_at = now
            if RolloutAction.WARM_UP in d.actions and self.pending is None:
                self.warm_up(now, recent)
            if RolloutAction.RUN_ANALYSIS not in d.actions or d.analysis_window_start is None:
                break
            start = (d.analysis_window_start - EPOCH).total_seconds()
            analysis = self.measure(start, now, d.status.evidence)
        if d.canary is None:
            self.deployed_at = self.ready_at = None
        return d.status.phase

    def canary_version(self, now: float) -> ServedVersion | None:
        if self.deployed_at is None:
            return None
        if self.ready_at is None and now >= self.deployed_at + LOAD_SECONDS:
            self.ready_at = now
        return ServedVersion(
            model=NEW.model, digest=NEW.digest, ready=self.ready_at is not None, replicas=1
        )

    def run(self) -> dict[str, Any]:
        tick, now, i, ready_at = self.args.tick, 0.0, 0, None
        phase = RolloutPhase.STABLE
        while now < ROLLOUT_AT + HORIZON:
            i = self.route(now + tick, i)
            now += tick
            phase = self.decide(now, self.arrivals[max(0, i - 200) : max(i, 1)])
            ready_at = ready_at or self.ready_at
            if phase in (RolloutPhase.PROMOTED, RolloutPhase.ROLLED_BACK):
                break
        interval = self.spec.analysis.interval_seconds
        since_ready = now - (ready_at if ready_at is not None else now)
        since_traffic = now - (self.first_traffic if self.first_traffic is not None else now)
        total = max(self.counts["total"], 1)
        return {
            "outcome": str(phase),
            "seconds_from_ready": round(since_ready, 1),
            "intervals_from_traffic": round(since_traffic / interval, 2),
            "rollout_seconds": round(now - ROLLOUT_AT, 1),
            "canary_requests": self.counts["canary"],
            "canary_share": self.counts["canary"] / total,
            "failed_requests": self.counts["failed"],
            "requests": self.counts["total"],
        }


def _gaps(
    asked: list[Request], outcomes: list[tuple[float, float, bool, bool]]
) -> tuple[float, ...]:
    """The mean inter-token gap of each streamed answer of two tokens or more."""
    return tuple(
        (o[0] - o[1]) / (r.generated_tokens - 1)
        for r, o in zip(asked, outcomes, strict=True)
        if not o[2] and r.generated_tokens > 1
    )


def _threshold_result(metric: AnalysisMetric, w: Window, need: int, at: datetime) -> MetricResult:
    """The baselines' check: this window's value against its threshold, nothing carried over."""
    if metric.name == MetricName.ERROR_RATE:
        n = w.canary_requests
        value = w.canary_errors / n if n else None
        stable = w.stable_errors / w.stable_requests if w.stable_requests else None
        return evaluate_metric(metric, value, stable, int(n), need, measured_at=at)
    q = metric_quantile(metric.name) or 0.95
    value = w.canary.quantile(q) if w.canary else None
    stable = w.stable.quantile(q) if w.stable else None
    count = int(w.canary.count) if w.canary else 0
    return evaluate_metric(metric, value, stable, count, need, measured_at=at)


def _threshold_warmup(
    result: MetricResult, spec: RolloutSpec, sent: int, failed: int, at: datetime
) -> MetricResult:
    metric = next((m for m in spec.effective_metrics() if m.name == result.metric), None)
    if metric is None or result.metric != MetricName.ERROR_RATE:
        return result
    need = min(spec.analysis.min_requests, sent)
    return evaluate_metric(metric, failed / sent, None, sent, need, measured_at=at)


def replay(trace: Trace, speed: float, offset: float) -> list[Request]:
    """The trace from `offset` (a fraction), time-compressed by `speed`, cycled to the horizon."""
    moved = rotate(trace, offset).requests
    span = (trace.duration + 1e-3) / speed
    out: list[Request] = []
    laps = math.ceil((ROLLOUT_AT + HORIZON + 60) / span)
    for lap in range(laps):
        out += [
            Request(lap * span + r.arrival / speed, r.context_tokens, r.generated_tokens)
            for r in moved
        ]
    return out
