"""API layer: the `autoscaling` block of an InferenceService spec and its status.

The spec says how load maps to replicas: either a per-replica `target` (the HPA rule with a
tolerance band, stabilization windows, rate limits, scale to zero, panic mode) or a service level
(`slo`: a time to first token and the share of requests that must meet it), from which the
autoscaler works out its own target and headroom. The status keeps everything the decision needs
from the past, so an operator restarted at any moment decides exactly as if it had never stopped.
Defaults come from `bench/autoscale.py` on the Azure LLM conversation trace; each says why.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from drover.api.base import ApiModel, Rule
from drover.api.slo import SloSpec, SloStatus

__all__ = [
    "HISTORY_LIMIT",
    "RECOMMENDATION_LIMIT",
    "AutoscalingSignal",
    "AutoscalingSpec",
    "AutoscalingStatus",
    "PanicSpec",
    "RecommendationRecord",
    "ScaleDecisionRecord",
    "ScaleDownRules",
    "ScaleToZeroSpec",
    "ScaleUpRules",
]

# How many past scale decisions status keeps for people (`kubectl get -o yaml`).
HISTORY_LIMIT = 5
# Upper bound on the stored recommendation changes (the stabilization memory); see status.
RECOMMENDATION_LIMIT = 64


class AutoscalingSignal(StrEnum):
    """The load signal read per model version from the router's Prometheus metrics."""

    IN_FLIGHT_REQUESTS = "inFlightRequests"
    QUEUE_DEPTH = "queueDepth"
    TOKENS_PER_SECOND = "tokensPerSecond"
    KV_CACHE_UTILIZATION = "kvCacheUtilization"
    WAITING_REQUESTS = "waitingRequests"


class ScaleUpRules(ApiModel):
    """How fast replicas are added."""

    stabilization_seconds: int = Field(
        default=0,
        ge=0,
        le=3600,
        description=(
            "Scale up only to the lowest replica count recommended over this many seconds (as "
            "HPA does). Default 0: an LLM replica takes minutes to start, so any delay in asking "
            "for it is paid in missed latency targets (in the benchmark 30-60 s dropped the SLO "
            "attainment from 99.99% to 99.4-99.7%)."
        ),
    )
    max_step_percent: int = Field(
        default=100,
        ge=1,
        le=1000,
        description=(
            "At most this percentage of the replicas at the start of a period may be added per "
            "period. Default 100 (double per period, HPA's default). While replicas are still "
            "starting, the limit counts from the ready ones, so the queue that builds during a "
            "start-up does not order the same capacity twice (on the benchmark's surge: 26% "
            "fewer replica-hours for 2 points of SLO attainment)."
        ),
    )
    max_step_replicas: int | None = Field(
        default=4,
        ge=1,
        description=(
            "Alternatively, at most this many replicas may be added per period; the larger of the "
            "two limits applies (HPA's selectPolicy Max). Default 4 (HPA's default), so a small "
            "service can still grow quickly from 1 replica."
        ),
    )
    period_seconds: int = Field(
        default=15,
        ge=1,
        le=1800,
        description="The period the step limits count over, in seconds. Default 15 (HPA's).",
    )


class ScaleDownRules(ApiModel):
    """How fast replicas are removed."""

    stabilization_seconds: int = Field(
        default=300,
        ge=0,
        le=3600,
        description=(
            "Scale down only to the highest replica count recommended over this many seconds "
            "(as HPA does). Default 300 (HPA's): conversational load comes in waves minutes "
            "apart; in the benchmark 120-180 s removed replicas the next wave needed (SLO "
            "attainment 99.8% instead of 99.99%) and 600 s cost 10% more replica-hours."
        ),
    )
    max_step_percent: int = Field(
        default=50,
        ge=1,
        le=100,
        description=(
            "At most this percentage of the replicas at the start of a period may be removed per "
            "period. Default 50: every replica removed costs a slow start-up to get back; in the "
            "benchmark 100 (HPA's) removed replicas it had to add back on the doubled trace (5% "
            "more replica-hours) and 25 held the surge's extra replicas longer."
        ),
    )
    max_step_replicas: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Alternatively, at most this many replicas may be removed per period; the larger of "
            "the two limits applies. Default: unset (percentage only)."
        ),
    )
    period_seconds: int = Field(
        default=60,
        ge=1,
        le=1800,
        description="The period the step limits count over, in seconds. Default 60.",
    )


class ScaleToZeroSpec(ApiModel):
    """Scale to zero replicas when idle, and back when load arrives."""

    enabled: bool = Field(
        default=False,
        description=(
            "Allow zero replicas after idleSeconds without load. Default false: the first request "
            "after zero waits for a whole replica start-up (minutes for an LLM)."
        ),
    )
    idle_seconds: int = Field(
        default=900,
        ge=30,
        le=86400,
        description=(
            "How long the total load must stay at or below activationThreshold before going to "
            "zero. Default 900: three times the scale-down window, so a lull between bursts never "
            "empties the service."
        ),
    )
    activation_threshold: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Total load (not per replica: at zero there are no replicas) above which a service "
            "at zero wakes up; at or below it counts as idle. Default 0: any request wakes it."
        ),
    )
    hold_seconds: int = Field(
        default=300,
        ge=1,
        le=3600,
        description=(
            "While no replica is ready (waking from zero), the router holds each request up to "
            "this long instead of answering 503, and counts it in flight: the load that wakes "
            "the service (Knative's activator). Default 300, a model replica's start-up with "
            "cached weights; a request still waiting then gets 503 with Retry-After."
        ),
    )


class PanicSpec(ApiModel):
    """Burst ("panic") mode, after Knative's KPA: react to a sudden surge at once."""

    threshold_multiplier: float = Field(
        default=2.0,
        gt=1.0,
        le=100.0,
        description=(
            "Panic when the load over the short window reaches this multiple of target per "
            "replica. While panicking, scale up to what the short-window load needs without "
            "waiting for any stabilization window (the step limits still apply) and never scale "
            "down. Default 2.0 (Knative's 200%): on the benchmark's surge 1.5 did the same, "
            "while 3 (like no panic mode) lost 1.8 points of SLO attainment and cost 13% more "
            "replica-hours."
        ),
    )
    window_seconds: int = Field(
        default=15,
        ge=1,
        le=600,
        description=(
            "The short window over which load is read for the panic check. Panic ends once the "
            "load stayed under the threshold for a whole autoscaling windowSeconds. Default 15: "
            "about two Prometheus scrapes, the shortest window a rate can be read over."
        ),
    )


class AutoscalingSpec(ApiModel):
    """Load-based autoscaling: desired = ceil(current x value / target), within tolerance; or,
    with `slo`, the replicas that keep the stated time to first token."""

    signal: AutoscalingSignal = Field(
        default=AutoscalingSignal.IN_FLIGHT_REQUESTS,
        description=(
            "The load signal: inFlightRequests (requests being served or queued per replica), "
            "queueDepth (requests waiting per replica), tokensPerSecond (generated tokens per "
            "second per replica), or the vLLM engine's own gauges, which llm-d and the Gateway "
            "API Inference Extension scale and route on: kvCacheUtilization (share of the KV "
            "cache in use per replica, 0-1; a target such as 0.7) and waitingRequests (requests "
            "the engine's scheduler holds back per replica). Default inFlightRequests: it tracks "
            "both request rate and request length and needs no per-model calibration beyond "
            "the batch size."
        ),
    )
    target: float | None = Field(
        default=None,
        gt=0,
        description=(
            "The value of the signal each replica should carry, e.g. 8 in-flight requests for a "
            "model served with runtime.maxNumSeqs 16. Set it below a replica's capacity so a burst "
            "queues less while new replicas start. Set either target or slo."
        ),
    )
    slo: SloSpec | None = Field(
        default=None,
        description=(
            "A service level instead of a target (e.g. {ttftSeconds: 2, attainment: 0.99}): the "
            "autoscaler plans sequence slots (runtime.maxNumSeqs per replica) for the larger of "
            "the mean in-flight requests plus a square-root queueing margin and the peak it saw "
            "over a planning span (two observed replica start-ups), so a burst's size sets the "
            "headroom. A shortfall in the attainment it measures raises a learnt headroom and "
            "lengthens the span; a comfortable margin lowers them. See status.autoscaling.slo. "
            "Needs signal inFlightRequests. Set either target or slo."
        ),
    )
    tolerance: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description=(
            "No scaling while value/target stays within 1 +/- tolerance. Default 0.1 (HPA's): "
            "in the benchmark 0.05 doubled the scale events and 0.2 let SLO attainment fall to "
            "99.3-99.5% on some variants of the trace."
        ),
    )
    window_seconds: int = Field(
        default=90,
        ge=10,
        le=3600,
        description=(
            "The averaging window over which the load is read, in seconds. Default 90: in the "
            "benchmark 60 s chased single long conversations (7-9% more replica-hours) and 180 s "
            "reacted late to a rising load (SLO attainment below 99.5%); 90-120 s did best on "
            "every variant of the trace. Sudden bursts are caught by panic mode, not by this "
            "window."
        ),
    )
    scale_up: ScaleUpRules = Field(
        default_factory=ScaleUpRules, description="How fast replicas are added."
    )
    scale_down: ScaleDownRules = Field(
        default_factory=ScaleDownRules, description="How fast replicas are removed."
    )
    scale_to_zero: ScaleToZeroSpec = Field(
        default_factory=ScaleToZeroSpec, description="Scaling to zero when idle; off by default."
    )
    panic: PanicSpec = Field(
        default_factory=PanicSpec, description="Burst mode: scale up at once on a sudden surge."
    )

    __rules__ = (
        Rule(
            cel="has(self.target) != has(self.slo)",
            message="set exactly one of target (load per replica) or slo (a service level)",
            check=lambda m: (m.target is None) != (m.slo is None),
        ),
        Rule(
            cel="!has(self.slo) || self.signal == 'inFlightRequests'",
            message="slo needs signal inFlightRequests: it plans in-flight requests against the "
            "engine's runtime.maxNumSeqs",
            check=lambda m: m.slo is None or m.signal is AutoscalingSignal.IN_FLIGHT_REQUESTS,
            field_path=".signal",
        ),
        Rule(
            cel="self.panic.windowSeconds <= self.windowSeconds",
            message="panic.windowSeconds must not be longer than windowSeconds",
            check=lambda m: m.panic.window_seconds <= m.window_seconds,
            field_path=".panic.windowSeconds",
        ),
    )


class ScaleDecisionRecord(ApiModel):
    """One past scale decision, newest last in `history`."""

    time: datetime = Field(description="When the decision was made.")
    from_: int = Field(alias="from", ge=0, description="Replicas before the decision.")
    to: int = Field(ge=0, description="Replicas after the decision.")
    value: float | None = Field(
        default=None, description="The load value per replica the decision saw (none: no data)."
    )
    reason: str = Field(description="Why, as a sentence.")


class RecommendationRecord(ApiModel):
    """A change of the raw recommendation; it holds until the next record."""

    time: datetime = Field(description="When the recommendation took this value.")
    replicas: int = Field(ge=0, description="Replicas the load alone asked for.")


class AutoscalingStatus(ApiModel):
    """What the autoscaler decided last, and the memory the next decision needs."""

    current_replicas: int = Field(ge=0, description="Replicas when the decision was made.")
    desired_replicas: int = Field(ge=0, description="Replicas decided.")
    signal: AutoscalingSignal = Field(description="The signal the decision read.")
    value: float | None = Field(
        default=None, description="The load per replica over the window (none: no data)."
    )
    last_scale_time: datetime | None = Field(
        default=None, description="When the replica count last changed."
    )
    reason: str = Field(default="", description="Why the last decision was made, as a sentence.")
    panic_until: datetime | None = Field(
        default=None,
        description="Panic mode lasts until this time unless the surge is seen again.",
    )
    idle_since: datetime | None = Field(
        default=None, description="Since when the load has been at or below the idle threshold."
    )
    last_decision_time: datetime | None = Field(
        default=None, description="When the last decision was made (with or without a change)."
    )
    recommendations: list[RecommendationRecord] = Field(
        default_factory=list,
        max_length=RECOMMENDATION_LIMIT,
        description=(
            "Changes of the raw recommendation over the longest stabilization window, oldest "
            "first; the stabilization windows are evaluated over these."
        ),
    )
    history: list[ScaleDecisionRecord] = Field(
        default_factory=list,
        max_length=HISTORY_LIMIT,
        description="The last scale changes, oldest first; also used for the step limits.",
    )
    slo: SloStatus | None = Field(
        default=None, description="SLO mode's measurements and learnt headroom (slo set only)."
    )
