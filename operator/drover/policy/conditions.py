"""Policy layer: the one way conditions are set and summarised.

`set_condition` keeps `lastTransitionTime` stable unless the status flips, and `summarise`
derives `Ready`, `Progressing` and `Degraded` from a declared set of sub-conditions (KServe's
habit), so every resource computes its summary the same way; `Reconciling` and `Stalled` repeat
Progressing and Degraded under the names kstatus (Flux, `kubectl wait`-style tools) reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drover.api.common import format_timestamp
from drover.api.reasons import (
    DependencyReason,
    FineTuneJobReason,
    FoundationModelReason,
    InferenceServiceReason,
    JobReason,
    SpecReason,
    SummaryReason,
    VectorIndexReason,
)

Conditions = list[dict[str, Any]]


@dataclass(frozen=True)
class Cond:
    """A condition to set: the stable parts only; times and generation are filled in."""

    type: str
    status: bool | None  # None = Unknown
    reason: str
    message: str = ""

    def __post_init__(self) -> None:
        # Reasons come from drover.api.reasons' enums; status holds their plain string.
        object.__setattr__(self, "reason", str(self.reason))

    @property
    def status_text(self) -> str:
        return {True: "True", False: "False", None: "Unknown"}[self.status]


def set_condition(
    conditions: Sequence[dict[str, Any]] | None, cond: Cond, *, generation: int, now: datetime
) -> Conditions:
    """Return a new list with `cond` set; lastTransitionTime changes only when status flips."""
    out: Conditions = []
    found = False
    for existing in conditions or ():
        if existing.get("type") != cond.type:
            out.append(dict(existing))
            continue
        found = True
        flipped = existing.get("status") != cond.status_text
        out.append(
            {
                "type": cond.type,
                "status": cond.status_text,
                "reason": cond.reason,
                "message": cond.message,
                "observedGeneration": generation,
                "lastTransitionTime": format_timestamp(now)
                if flipped
                else existing.get("lastTransitionTime", format_timestamp(now)),
            }
        )
    if not found:
        out.append(
            {
                "type": cond.type,
                "status": cond.status_text,
                "reason": cond.reason,
                "message": cond.message,
                "observedGeneration": generation,
                "lastTransitionTime": format_timestamp(now),
            }
        )
    return out


def set_conditions(
    conditions: Sequence[dict[str, Any]] | None,
    conds: Iterable[Cond],
    *,
    generation: int,
    now: datetime,
) -> Conditions:
    result: Conditions = list(conditions or ())
    for cond in conds:
        result = set_condition(result, cond, generation=generation, now=now)
    return result


def get_condition(conditions: Sequence[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions or () if c.get("type") == type_), None)


def summarise(
    conditions: Sequence[dict[str, Any]] | None,
    declared: Sequence[str],
    *,
    generation: int,
    now: datetime,
) -> Conditions:
    """Derive Ready / Progressing / Degraded (+ Reconciling / Stalled) from the declared ones.

    Ready is True only when every declared sub-condition is True; its reason and message are
    those of the first sub-condition that is not. Degraded is True when a sub-condition is False
    for a reason that needs a person (see `TERMINAL_REASONS`); Progressing when any is Unknown
    or False for a reason that resolves itself.

    kstatus (sigs.k8s.io/cli-utils pkg/kstatus/status, `checkGenericProperties`) knows nothing of
    a custom resource but the abnormal-true conditions `Reconciling` (InProgress) and `Stalled`
    (Failed); without them it calls any object whose observedGeneration is current `Current`,
    so Flux would report a model still downloading as ready. They mirror Progressing/Degraded.
    """
    subs = [get_condition(conditions, t) for t in declared]
    blocking = [c for c in subs if c is None or c.get("status") != "True"]
    if not blocking:
        ready = Cond(
            "Ready", True, SummaryReason.ALL_CONDITIONS_READY, "All of " + ", ".join(declared) + "."
        )
    else:
        first = blocking[0]
        if first is None:
            missing = declared[subs.index(None)]
            ready = Cond("Ready", None, SummaryReason.RECONCILING, f"{missing} is not yet known.")
        else:
            ready = Cond(
                "Ready",
                False if first.get("status") == "False" else None,
                str(first.get("reason", SummaryReason.NOT_READY)),
                str(first.get("message", "")),
            )
    degraded_by = [c for c in blocking if c is not None and c.get("reason") in TERMINAL_REASONS]
    degraded = (
        Cond("Degraded", True, str(degraded_by[0]["reason"]), str(degraded_by[0]["message"]))
        if degraded_by
        else Cond("Degraded", False, SummaryReason.NO_FAILURES, "")
    )
    progressing = (
        Cond("Progressing", True, ready.reason, ready.message)
        if blocking and not degraded_by
        else Cond("Progressing", False, SummaryReason.SETTLED, "")
    )
    reconciling = Cond("Reconciling", progressing.status, progressing.reason, progressing.message)
    stalled = Cond("Stalled", degraded.status, degraded.reason, degraded.message)
    return set_conditions(
        conditions,
        (ready, progressing, degraded, reconciling, stalled),
        generation=generation,
        now=now,
    )


# Reasons that will not resolve by waiting: a person must change something.
TERMINAL_REASONS: frozenset[str] = frozenset(
    {
        SpecReason.INVALID_SPEC,
        SpecReason.UNKNOWN_ACCELERATOR_CLASS,
        SpecReason.MODEL_TOO_LARGE,
        InferenceServiceReason.MODEL_IS_ADAPTER,
        FoundationModelReason.FETCH_FAILED,
        FineTuneJobReason.TRAINING_FAILED,
        FineTuneJobReason.EVALUATION_BELOW_THRESHOLD,
        VectorIndexReason.INDEX_BUILD_FAILED,
        JobReason.RESULT_UNAVAILABLE,
        InferenceServiceReason.SERVING_FAILED,
        DependencyReason.DEPENDENCY_FAILED,
        DependencyReason.SECRET_NOT_FOUND,
        DependencyReason.SECRET_KEY_NOT_FOUND,
    }
)
