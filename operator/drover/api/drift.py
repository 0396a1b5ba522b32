"""API layer: the `drift` and `retraining` blocks of an InferenceService spec and their status.

Drift: the router records, per version, each prompt's length in tokens and (with retrieval) the
cosine distance of the prompt's embedding to its nearest indexed chunk. The operator compares a
recent window of each with a reference window captured once per stable version, with the
population stability index (PSI) over the histogram buckets; above `threshold` the service gets
`DriftDetected=True`, an event and a metric.

Retraining lives on the InferenceService rather than in a resource of its own: what triggers it
(the service's drift, the service's schedule) and where its result goes (the service's canary)
are both the service's, so one object states the loop and its status tells the whole story; a
separate resource would have to point at the service and mirror its drift state.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from drover.api.base import ApiModel, Rule
from drover.api.finetunejob import FineTuneJobSpec

__all__ = [
    "DRIFT_HISTORY_LIMIT",
    "DriftSignal",
    "DriftSpec",
    "DriftStatus",
    "ReferenceWindow",
    "RetrainingRun",
    "RetrainingSpec",
    "RetrainingStatus",
    "RetrainingTrigger",
]

DRIFT_HISTORY_LIMIT = 5


class DriftSignal(StrEnum):
    """What the drift test compares: prompt lengths, and prompt embeddings (retrieval only)."""

    PROMPT_LENGTH = "promptLength"
    PROMPT_EMBEDDING = "promptEmbedding"


class DriftSpec(ApiModel):
    """Detect a shift of the prompts a service sees against those it saw when its stable version
    started serving (population stability index over the router's per-version histograms)."""

    signals: list[DriftSignal] = Field(
        default_factory=lambda: [DriftSignal.PROMPT_LENGTH, DriftSignal.PROMPT_EMBEDDING],
        min_length=1,
        description="promptLength (tokens per prompt), promptEmbedding (cosine distance of each "
        "prompt's embedding to its nearest indexed chunk; needs spec.retrieval).",
    )
    threshold: float = Field(
        default=0.2,
        gt=0,
        le=10,
        description="PSI above which a signal has drifted (above 0.2: a significant shift).",
    )
    window_seconds: int = Field(
        default=3600,
        ge=10,
        le=604800,
        description="Length of the reference window (the stable version's first with "
        "minSamples prompts) and of the recent window.",
    )
    min_samples: int = Field(
        default=200,
        ge=10,
        le=10_000_000,
        description="Prompts each window needs; with fewer the test says 'not yet'.",
    )
    interval_seconds: int = Field(
        default=60, ge=1, le=86400, description="How often the operator runs the test."
    )


class RetrainingTrigger(StrEnum):
    DRIFT = "drift"
    SCHEDULE = "schedule"


class RetrainingSpec(ApiModel):
    """Create a FineTuneJob from `template` when drift is detected and/or on a schedule; once it
    passes its evaluation gate, its model (or LoRA adapter) is rolled out as this service's canary
    (spec.rollout), without changing spec.model or spec.adapter."""

    __rules__ = (
        Rule(
            cel="self.onDrift || has(self.scheduleSeconds)",
            message="retraining needs a trigger: set retraining.onDrift: true (with spec.drift) "
            "or retraining.scheduleSeconds",
            check=lambda r: r.on_drift or r.schedule_seconds is not None,
            field_path=".onDrift",
        ),
    )

    # Kept free-form in the CRD (a copy of FineTuneJob's schema would double this CRD's size);
    # the operator validates it as a FineTuneJobSpec on every reconcile, naming the field.
    template: dict[str, Any] = Field(
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description="The FineTuneJob spec each retraining runs (as in a FineTuneJob's spec); "
        "output.modelName is set by the operator (<service>-retrain-<n>).",
    )
    on_drift: bool = Field(
        default=True, description="Retrain when DriftDetected turns True (needs spec.drift)."
    )
    schedule_seconds: int | None = Field(
        default=None,
        ge=60,
        le=31_536_000,
        description="Also retrain this often (e.g. 604800), counted from the last retraining.",
    )
    cooldown_seconds: int = Field(
        default=86400,
        ge=0,
        le=31_536_000,
        description="Fewest seconds between two retrainings, whatever triggers them.",
    )

    @field_validator("template")
    @classmethod
    def _template_is_a_finetunejob_spec(cls, value: dict[str, Any]) -> dict[str, Any]:
        FineTuneJobSpec.model_validate(value)
        return value

    @property
    def job(self) -> FineTuneJobSpec:
        """The template as a FineTuneJob spec."""
        return FineTuneJobSpec.model_validate(self.template)


class ReferenceWindow(ApiModel):
    """The reference the recent prompts are compared with: bucket counts per signal, captured
    once for the stable version (`version`)."""

    version: str = Field(description="The stable version it belongs to.")
    buckets: dict[str, list[list[float]]] = Field(
        default_factory=dict,
        description="Per signal: [[le, cumulative count], ...], +Inf as 1e308.",
    )


class DriftStatus(ApiModel):
    """The drift test's reference and last results (a restarted operator continues from here)."""

    reference: ReferenceWindow | None = Field(default=None, description="The reference.")
    last_check_time: datetime | None = Field(default=None, description="The last test.")
    detected: bool = Field(default=False, description="Whether drift is detected now.")
    message: str = Field(default="", description="The last result in a sentence.")
    psi: dict[str, float] = Field(
        default_factory=dict, description="Per signal tested, its last PSI."
    )


class RetrainingRun(ApiModel):
    """One FineTuneJob created by retraining."""

    job: str = Field(description="The FineTuneJob.")
    trigger: RetrainingTrigger = Field(description="What started it.")
    created_at: datetime = Field(description="When.")
    basis: str = Field(description="spec.model[+spec.adapter] then; served only while unchanged.")
    phase: str | None = Field(default=None, description="The job's last phase.")
    model: str | None = Field(default=None, description="Its output, once past its gate.")
    adapter_of: str | None = Field(default=None, description="A LoRA output's base model.")


class RetrainingStatus(ApiModel):
    """Retraining runs: the one in flight, the latest that passed its gate (what is served in
    place of spec.model while the spec is unchanged), and a short history."""

    count: int = Field(default=0, ge=0, description="Retrainings started.")
    since: datetime | None = Field(
        default=None, description="Last run's start (before any: retraining's); schedules count."
    )
    current: RetrainingRun | None = Field(default=None, description="The run in flight.")
    latest: RetrainingRun | None = Field(default=None, description="The last passed: served.")
    history: list[str] = Field(
        default_factory=list,
        description=f"The last {DRIFT_HISTORY_LIMIT} finished runs, one line each.",
    )
