"""API layer: the state of an InferenceService's rollout (`status.rollout`) and served versions.

Everything `drover.policy.rollout` needs to continue after an operator restart lives here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from drover.api.base import ApiModel


class VersionRef(ApiModel):
    """A model version: the FoundationModel name and its content digest."""

    model: str = Field(description="Name of the FoundationModel.")
    digest: str = Field(default="", description="Content digest of its weights (sha256:...).")

    def label(self) -> str:
        short = self.digest.split(":")[-1][:12] if self.digest else "?"
        return f"{self.model}@{short}"


class ServedVersion(ApiModel):
    """A version the service runs, with its share of traffic."""

    model: str = Field(description="Name of the FoundationModel served.")
    version: str = Field(default="", description="Version label of the model, if it has one.")
    digest: str = Field(default="", description="Content digest of the weights served.")
    weight: int = Field(default=0, ge=0, le=100, description="Percent of requests routed here.")
    ready: bool = Field(default=False, description="Whether every replica is loaded and serving.")
    replicas: int = Field(default=0, ge=0, description="Replicas running this version.")
    ready_replicas: int | None = Field(
        default=None,
        ge=0,
        description="Replicas of its application Serve reports healthy (Prometheus: "
        "ray_serve_deployment_replica_healthy); absent while unknown.",
    )
    application: str = Field(
        default="",
        description="The Serve application (one vLLM engine per replica) serving this version; "
        "versions naming the same application share its replicas (a LoRA version runs on its "
        "base model's engine).",
    )

    def ref(self) -> VersionRef:
        return VersionRef(model=self.model, digest=self.digest)


class RolloutPhase(StrEnum):
    STABLE = "Stable"
    DEPLOYING = "Deploying"
    WARMING = "Warming"
    STEP = "Step"
    ANALYSING = "Analysing"
    PAUSED = "Paused"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"


class Verdict(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"


class Evidence(ApiModel):
    """What a sequential test of one metric rests on, summed over the rollout's analyses.

    Each analysis adds the canary's observations of its window (requests, or inter-token gaps for
    itl metrics) and the events among them (errors, or observations beyond the latency cut) to a
    log-likelihood ratio of "regressed" (h1) against "acceptable" (h0) (Wald's SPRT). The metric
    fails once the ratio reaches rejectAt and passes while it sits at acceptAt (it never goes
    lower, so good evidence cannot be banked against a later regression).
    """

    canary_samples: float = Field(default=0.0, ge=0, description="Canary observations counted.")
    canary_events: float = Field(
        default=0.0, ge=0, description="Errors, or observations beyond the latency cut, of those."
    )
    stable_samples: float = Field(
        default=0.0, ge=0, description="Stable observations in the same windows."
    )
    stable_events: float = Field(default=0.0, ge=0, description="Errors among those.")
    log_likelihood_ratio: float = Field(
        default=0.0, description="The test statistic: ln P(data | h1) / P(data | h0)."
    )
    accept_at: float = Field(
        default=0.0, description="Lower boundary, ln(beta / (1 - alpha)): pass at or below it."
    )
    reject_at: float = Field(
        default=0.0, description="Upper boundary, ln((1 - beta) / alpha): fail at or above it."
    )
    h0: float = Field(
        default=0.0, description="Event probability of an acceptable canary (latest window)."
    )
    h1: float = Field(
        default=0.0, description="Event probability of a regressed canary (latest window)."
    )
    windows: int = Field(default=0, ge=0, description="Analysis windows counted.")


class MetricResult(ApiModel):
    """One measurement of one analysis metric."""

    metric: str = Field(description="The metric name (see spec.rollout.analysis.metrics).")
    value: float | None = Field(default=None, description="The canary's value; absent: no data.")
    threshold: float | None = Field(
        default=None, description="The limit it was held to (relative limits already resolved)."
    )
    verdict: Verdict = Field(description="Successful, Failed or Inconclusive.")
    measured_at: datetime = Field(description="When the measurement was taken.")
    samples: int | None = Field(default=None, description="Canary requests in the window.")
    message: str = Field(default="", description="Why this verdict, in a sentence.")
    evidence: Evidence | None = Field(
        default=None,
        description="The sequential test this verdict rests on (traffic metrics and warm-up "
        "errors); absent for evaluation prompts.",
    )


class RejectedVersion(ApiModel):
    """A version rolled back or aborted; it is not tried again until spec.model changes."""

    model: str = Field(description="Name of the FoundationModel.")
    digest: str = Field(default="", description="Content digest of the rejected weights.")
    reason: str = Field(description="Why it was rejected.")
    at: datetime = Field(description="When it was rejected.")


class RolloutResult(StrEnum):
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    SUPERSEDED = "Superseded"


class RolloutRecord(ApiModel):
    """One finished rollout."""

    from_version: VersionRef | None = Field(
        default=None, alias="from", description="The stable version when the rollout began."
    )
    to_version: VersionRef = Field(alias="to", description="The version rolled out.")
    result: RolloutResult = Field(description="Promoted, RolledBack, Aborted or Superseded.")
    reason: str = Field(default="", description="Why it ended so.")
    started_at: datetime = Field(description="When the canary was deployed.")
    finished_at: datetime = Field(description="When the rollout ended.")


class RolloutStatus(ApiModel):
    """Where the rollout stands; everything the state machine needs survives a restart here."""

    phase: RolloutPhase = Field(default=RolloutPhase.STABLE, description="Rollout phase.")
    target: VersionRef | None = Field(
        default=None, description="The version being (or last) rolled out."
    )
    source: VersionRef | None = Field(
        default=None, description="The stable version when the current rollout began."
    )
    step: int | None = Field(
        default=None, ge=0, description="Index into spec.rollout.steps; absent before the steps."
    )
    step_started_at: datetime | None = Field(default=None, description="When this step began.")
    phase_started_at: datetime | None = Field(default=None, description="When this phase began.")
    window_started_at: datetime | None = Field(
        default=None,
        description=(
            "Start of the current analysis window: the step's start or the last measured "
            "analysis (earlier windows are summed in evidence)."
        ),
    )
    canary_deployed_at: datetime | None = Field(
        default=None, description="When the canary of this rollout was first deployed."
    )
    failures: int = Field(default=0, ge=0, description="Failed analyses in this rollout.")
    inconclusives: int = Field(default=0, ge=0, description="Inconclusive analyses so far.")
    analysis: list[MetricResult] = Field(
        default_factory=list, description="Results of the latest analysis."
    )
    evidence: dict[str, Evidence] = Field(
        default_factory=dict,
        description="Each metric's sequential test so far in this rollout (warm-up and every "
        "step), keyed by metric name; the next analysis adds its window to it.",
    )
    rejected: list[RejectedVersion] = Field(
        default_factory=list, description="Versions rolled back; not retried until spec changes."
    )
    history: list[RolloutRecord] = Field(
        default_factory=list, description="The last rollouts, newest last."
    )
    reason: str = Field(default="", description="Why the rollout is where it is, in a sentence.")


# How many finished rollouts and rejected versions status keeps (the oldest go first).
HISTORY_LIMIT = 10
REJECTED_LIMIT = 10

ACTIVE_PHASES = frozenset(
    {
        RolloutPhase.DEPLOYING,
        RolloutPhase.WARMING,
        RolloutPhase.STEP,
        RolloutPhase.ANALYSING,
        RolloutPhase.PAUSED,
    }
)
