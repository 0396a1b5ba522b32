"""API layer: the rollout policy of an InferenceService (`spec.rollout`) and its state.

A change of the served model is rolled out as a canary: deployed at weight 0, warmed and checked,
then given traffic step by step while an analysis compares it with the stable version; see
`drover.policy.rollout` for the state machine that reads and writes these models.
"""

from __future__ import annotations

import itertools
from enum import StrEnum

from pydantic import Field

from drover.api.base import ApiModel, Rule
from drover.api.evaluation_prompts import EvaluationPrompt

# The status models live in rollout_status.py (module size) and are re-exported here: one import
# place for the InferenceService model.
from drover.api.rollout_status import (
    ACTIVE_PHASES,
    Evidence,
    MetricResult,
    RejectedVersion,
    RolloutPhase,
    RolloutRecord,
    RolloutResult,
    RolloutStatus,
    ServedVersion,
    Verdict,
    VersionRef,
)

# The annotation a person sets to steer a rollout (`kubectl annotate infsvc NAME
# drover.dev/rollout=promote`, or `kubectl drover rollout promote NAME`).
ROLLOUT_ANNOTATION = "drover.dev/rollout"


class RolloutControl(StrEnum):
    """Values of the `drover.dev/rollout` annotation; each acts once and is then cleared."""

    PROMOTE = "promote"
    ABORT = "abort"
    PAUSE = "pause"
    RESUME = "resume"


# ---------------------------------------------------------------------------------------------
# spec.rollout


class RolloutStep(ApiModel):
    """One traffic step of a canary rollout."""

    weight: int = Field(
        ge=1, le=100, description="Percent of requests sent to the canary during this step (1-100)."
    )
    pause_seconds: int = Field(
        default=60,
        ge=0,
        le=86400,
        description=(
            "Minimum time at this weight. The step ends at the first successful analysis once "
            "the pause is over, so it lasts at least one analysis interval."
        ),
    )


class Warmup(ApiModel):
    """Generations sent to the canary after it is ready and before it gets user traffic."""

    requests: int = Field(
        default=150,
        ge=0,
        le=10000,
        description=(
            "Warm-up generations sent to the canary alone before it gets user traffic. They "
            "load caches and kernels, and their errors and the evaluation prompts form a "
            "pre-traffic analysis: the first evidence of errorRate's sequential test, so a "
            "broken version is rejected before any user sees it. A warm-up that leaves the test "
            "undecided is sent again. Default 150: with errorRate max 0.01, 150 clean answers "
            "pass in one round, and a version failing 5% of requests is rejected before user "
            "traffic in every run of bench/canary.py. 0 with no evaluation prompts skips the "
            "warm-up."
        ),
    )
    max_tokens: int = Field(
        default=64,
        ge=1,
        le=4096,
        description=(
            "Output tokens per warm-up generation. Default 64: enough to exercise decoding, "
            "short enough that 100 of them take seconds."
        ),
    )


class MetricName(StrEnum):
    ERROR_RATE = "errorRate"
    LATENCY_P50 = "latencyP50"
    LATENCY_P95 = "latencyP95"
    LATENCY_P99 = "latencyP99"
    TTFT_P50 = "ttftP50"
    TTFT_P95 = "ttftP95"
    ITL_P50 = "itlP50"
    ITL_P95 = "itlP95"
    EVALUATION_PASS_RATE = "evaluationPassRate"


# Which threshold kinds make sense for each metric.
_SECONDS_METRICS = {m.value for m in MetricName} - {"errorRate", "evaluationPassRate"}


def _threshold_count(m: AnalysisMetric) -> int:
    return sum(x is not None for x in (m.max, m.max_seconds, m.min, m.max_relative_to_stable))


def _threshold_fits(m: AnalysisMetric) -> bool:
    name = str(m.name)
    if m.max_seconds is not None:
        return name in _SECONDS_METRICS
    if m.max is not None:
        return name == "errorRate"
    if m.min is not None:
        return name == "evaluationPassRate"
    return name != "evaluationPassRate"  # maxRelativeToStable: the stable gets no prompts


class AnalysisMetric(ApiModel):
    """One check of the analysis: a metric of the canary and exactly one threshold."""

    __rules__ = (
        Rule(
            cel="[has(self.max), has(self.maxSeconds), has(self.min), "
            "has(self.maxRelativeToStable)].filter(x, x).size() == 1",
            message="set exactly one of max, maxSeconds, min or maxRelativeToStable",
            check=lambda m: _threshold_count(m) == 1,
        ),
        Rule(
            cel="(!has(self.max) || self.name == 'errorRate') && (!has(self.maxSeconds) || "
            "self.name in ['latencyP50', 'latencyP95', 'latencyP99', 'ttftP50', 'ttftP95', "
            "'itlP50', 'itlP95']) && "
            "(!has(self.min) || self.name == 'evaluationPassRate') && "
            "(!has(self.maxRelativeToStable) || self.name != 'evaluationPassRate')",
            message="threshold does not fit the metric: use max (0-1) for errorRate, maxSeconds "
            "for latency, ttft and itl, min (0-1) for evaluationPassRate, or maxRelativeToStable "
            "for any metric but evaluationPassRate",
            check=lambda m: _threshold_fits(m),
        ),
    )

    name: MetricName = Field(
        description=(
            "errorRate (share of 5xx and failed generations), latencyP50/P95/P99 (request "
            "seconds), ttftP50/P95 (seconds to first token), itlP50/P95 (inter-token latency of "
            "streamed answers: seconds between tokens after the first, per request) or "
            "evaluationPassRate (share of "
            "evaluationPrompts answered as expected). The worst value across series counts."
        )
    )
    max: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "errorRate: the acceptable fraction of failed requests. Tested sequentially on the "
            "canary's requests: a version at this rate is rolled back at most 1% of the time, "
            "one at 5x it (e.g. 5% for 0.01) passes at most 5% of the time, and sparse traffic "
            "holds the step until the evidence decides."
        ),
    )
    max_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description=(
            "Latency/TTFT/ITL: the quantile's limit in seconds. Tested on the share of the "
            "canary's requests beyond it (acceptable: 5% for a p95; regressed: 5x that)."
        ),
    )
    min: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="evaluationPassRate: the canary fails below this fraction.",
    )
    max_relative_to_stable: float | None = Field(
        default=None,
        ge=1,
        le=100,
        description=(
            "The regression to catch, as a multiple of the stable version over the same "
            "windows. Latency, TTFT and ITL: the canary's requests beyond the stable's quantile "
            "are counted against the shares that versions this / 1.2 and this many times "
            "slower would have there (read off the stable's histogram), those beyond this "
            "multiple of it on their own: with 1.5, a version up to 1.25x slower passes, one "
            "1.5x slower is rolled back, each with 99% probability. TTFT and ITL are also "
            "screened on the warm-up, its prompts sent to both versions. "
            "errorRate: acceptable up to this multiple of the stable's rate."
        ),
    )


class InconclusivePolicy(StrEnum):
    HOLD = "hold"
    ROLLBACK = "rollback"


def _default_metrics() -> list[AnalysisMetric]:
    return [
        AnalysisMetric(name=MetricName.ERROR_RATE, max=0.01),
        AnalysisMetric(name=MetricName.LATENCY_P95, max_relative_to_stable=1.5),
        AnalysisMetric(name=MetricName.TTFT_P95, max_relative_to_stable=1.5),
        AnalysisMetric(name=MetricName.ITL_P95, max_relative_to_stable=1.5),
    ]


class Analysis(ApiModel):
    """How the canary is measured at each step and when it is rolled back."""

    interval_seconds: int = Field(
        default=60,
        ge=10,
        le=3600,
        description=(
            "Seconds between analyses. Each adds the requests since the last one to the "
            "rollout's evidence (status.rollout.evidence) and judges on all of it. Default 60, "
            "as Flagger and Argo Rollouts."
        ),
    )
    failure_limit: int = Field(
        default=0,
        ge=0,
        le=100,
        description=(
            "Failed analyses tolerated in a rollout; one more rolls back (Argo Rollouts' "
            "meaning). Default 0: a metric fails only once its sequential test has the "
            "evidence (a blip is not enough), so a second failure would only let a bad version "
            "serve one more interval."
        ),
    )
    min_requests: int = Field(
        default=10,
        ge=1,
        le=1000000,
        description=(
            "Canary observations (requests, or streamed answers for itl) a traffic metric "
            "needs, summed over the rollout, before it can pass; a failure needs only its "
            "test's evidence. Default 10: the sequential test usually needs more to pass."
        ),
    )
    on_inconclusive: InconclusivePolicy = Field(
        default=InconclusivePolicy.HOLD,
        description=(
            "hold: stay at the current weight and measure again (samples keep accumulating); "
            "rollback: an inconclusive analysis counts as a failed one toward failureLimit."
        ),
    )
    metrics: list[AnalysisMetric] = Field(
        default_factory=_default_metrics,
        max_length=20,
        description=(
            "Checks of each analysis, each a sequential test over the rollout's windows (any "
            "failing fails the analysis; all must pass for a step to advance). Default: "
            "errorRate max 0.01; latencyP95, ttftP95 and itlP95 against 1.5x stable (relative, "
            "so the same policy fits any model and hardware; itlP95 sees streamed answers, one "
            "mean gap each, and passes when neither version streams). An empty list checks "
            "nothing and only paces the steps."
        ),
    )
    evaluation_prompts: list[EvaluationPrompt] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "Prompts sent to the canary before it gets traffic and at each analysis; their "
            "pass rate is the evaluationPassRate metric (which defaults to min 1.0 when "
            "prompts are given and no evaluationPassRate metric is listed)."
        ),
    )


def _default_steps() -> list[RolloutStep]:
    return [
        RolloutStep(weight=1, pause_seconds=60),
        RolloutStep(weight=10, pause_seconds=60),
        RolloutStep(weight=50, pause_seconds=60),
    ]


# Standard CEL has no indexed iteration, so the pairwise check is unrolled up to maxItems (20);
# this keeps the rule portable to any CEL evaluator, not only the API server's list extensions.
_INCREASING_CEL = " && ".join(
    f"(size(self.steps) < {i + 2} || self.steps[{i}].weight < self.steps[{i + 1}].weight)"
    for i in range(19)
)


def _weights_increase(steps: list[RolloutStep]) -> bool:
    return all(a.weight < b.weight for a, b in itertools.pairwise(steps))


class RolloutSpec(ApiModel):
    """How a new model version replaces the served one."""

    __rules__ = (
        Rule(
            cel=_INCREASING_CEL,
            message="steps weights must be strictly increasing (e.g. 1, 10, 50)",
            check=lambda s: _weights_increase(s.steps),
            field_path=".steps",
        ),
    )

    steps: list[RolloutStep] = Field(
        default_factory=_default_steps,
        min_length=1,
        max_length=20,
        description=(
            "Traffic steps, weights strictly increasing; after the last step succeeds the canary "
            "is promoted to 100%. Default 1% / 10% / 50%, 60 s each: a bad version is caught "
            "while it serves 1% of requests, and a good one is promoted about 3 minutes after "
            "it is ready (Flagger's typical settings take 5, Argo Rollouts' 9)."
        ),
    )
    ready_deadline_seconds: int = Field(
        default=600,
        ge=10,
        le=86400,
        description=(
            "The canary must be ready (loaded and serving) within this many seconds of being "
            "deployed, else it is rolled back with reason CanaryNotReady. Default 600: time to "
            "schedule a GPU pod and load a multi-GB model."
        ),
    )
    warmup: Warmup = Field(default_factory=Warmup, description="Pre-traffic warm-up.")
    analysis: Analysis = Field(default_factory=Analysis, description="Analysis at each step.")

    def effective_metrics(self) -> list[AnalysisMetric]:
        """The metrics checked, with the implicit evaluationPassRate >= 1.0 when prompts exist."""
        metrics = list(self.analysis.metrics)
        if self.analysis.evaluation_prompts and not any(
            m.name == MetricName.EVALUATION_PASS_RATE for m in metrics
        ):
            metrics.append(AnalysisMetric(name=MetricName.EVALUATION_PASS_RATE, min=1.0))
        return metrics


__all__ = [
    "ACTIVE_PHASES",
    "ROLLOUT_ANNOTATION",
    "Analysis",
    "AnalysisMetric",
    "Evidence",
    "InconclusivePolicy",
    "MetricName",
    "MetricResult",
    "RejectedVersion",
    "RolloutControl",
    "RolloutPhase",
    "RolloutRecord",
    "RolloutResult",
    "RolloutSpec",
    "RolloutStatus",
    "RolloutStep",
    "ServedVersion",
    "Verdict",
    "VersionRef",
    "Warmup",
]
