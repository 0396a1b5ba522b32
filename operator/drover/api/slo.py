"""API layer: the service level of an InferenceService's SLO-mode autoscaling, and what it learnt.

`SloSpec` is `spec.autoscaling.slo` (a time to first token and the share of requests that must
meet it); `SloStatus` is `status.autoscaling.slo`, the measurements and the learnt headroom and
planning span the next decision starts from (`drover.policy.slo`). Part of `drover.api.autoscaling`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from drover.api.base import ApiModel

__all__ = ["SloSpec", "SloStatus"]


class SloSpec(ApiModel):
    """A service level: the share of requests whose time to first token must meet a bound."""

    ttft_seconds: float = Field(
        gt=0,
        le=600,
        description=(
            "The time to first token each request should meet, in seconds (e.g. 2). Queueing "
            "for a free sequence slot is what breaks it; prefill alone should fit well inside it."
        ),
    )
    attainment: float = Field(
        default=0.99,
        ge=0.5,
        lt=1,
        description=(
            "The share of requests that must meet ttftSeconds over windowSeconds (e.g. 0.99). "
            "Below it the autoscaler raises its headroom; well above it, it lowers it."
        ),
    )
    window_seconds: int = Field(
        default=600,
        ge=60,
        le=86400,
        description=(
            "The window the attainment is measured over (from the router's time-to-first-token "
            "histogram). Default 600: long enough to hold a few hundred requests at a few "
            "requests per second, so 99% means something."
        ),
    )


class SloStatus(ApiModel):
    """What SLO mode measured and learnt; the next decision starts from it."""

    attainment: float | None = Field(
        default=None,
        description="Measured share of requests within ttftSeconds over the SLO window "
        "(none: no data or too few requests).",
    )
    requests: float | None = Field(
        default=None, ge=0, description="How many requests the measured attainment rests on."
    )
    headroom: float = Field(
        default=1.0,
        gt=0,
        description="The learnt factor on the slots planned (1-4): raised when the measured "
        "attainment falls short with every replica up for the whole window, lowered when it "
        "keeps more than half the error budget unspent.",
    )
    span_seconds: int | None = Field(
        default=None,
        ge=1,
        description="The learnt planning span: how far back the peak in-flight total is read. "
        "Doubled on a shortfall (bursts further apart than it), shortened while well met.",
    )
    last_adjust_time: datetime | None = Field(
        default=None, description="When the headroom or the span last changed."
    )
    peak: float | None = Field(
        default=None, description="The peak in-flight total over the planning span."
    )
    mean: float | None = Field(
        default=None, description="The mean in-flight total over windowSeconds."
    )
    startup_seconds: float | None = Field(
        default=None,
        ge=0,
        description="Observed time from ordering replicas to their serving (none: not seen yet).",
    )
    starting_since: datetime | None = Field(
        default=None, description="Since when ordered replicas have been starting."
    )
    last_starting_time: datetime | None = Field(
        default=None,
        description="When ordered replicas were last seen starting: a shortfall within a window "
        "of it is the start-up's, and raises the span, not the headroom.",
    )
