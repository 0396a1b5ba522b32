"""Policy layer: an InferenceService's `MetricsUnavailable` condition, from what its Prometheus
readers (the autoscaler, the canary analysis) found.

Pure. A reader that asked Prometheus reports the problem it met (or none); the condition names
the reader, what it cannot do, the Prometheus URL, the query, since when, and the fix, instead of
a silent hold. A reader clears only a condition it set, so two readers never flip it back and
forth; called by the autoscaler timer and the rollout tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from drover.api.common import format_timestamp
from drover.api.reasons import MetricsReason
from drover.policy.conditions import Cond

CONDITION = "MetricsUnavailable"


class Reader(StrEnum):
    AUTOSCALER = "The autoscaler"
    ANALYSIS = "The canary analysis"


@dataclass(frozen=True)
class MetricsProblem:
    """One query that did not give a number: which, and why (`detail`: Prometheus' error, or
    what series were missing)."""

    reason: MetricsReason
    query: str
    detail: str


SCRAPE_FIX = (
    "Make Prometheus scrape the Ray pods' metrics port (the chart's "
    "metrics.rayPodMonitor.enabled: true creates a PodMonitor for them), or point "
    "config.prometheus.url (DROVER_PROMETHEUS_URL) at the Prometheus that does."
)
URL_FIX = (
    "Point config.prometheus.url (DROVER_PROMETHEUS_URL) at a reachable Prometheus that "
    "scrapes the Ray pods (the chart's metrics.rayPodMonitor.enabled: true)."
)


def _since(previous: Mapping[str, Any] | None, now: datetime) -> str:
    if previous is not None and previous.get("status") == "True":
        return str(previous.get("lastTransitionTime") or "")
    return format_timestamp(now)


def decide_metrics_condition(
    reader: Reader,
    problem: MetricsProblem | None,
    *,
    consequence: str,
    prometheus_url: str,
    previous: Mapping[str, Any] | None,
    now: datetime,
) -> Cond | None:
    """The MetricsUnavailable condition after `reader` asked Prometheus; None leaves it as is.

    `problem` None means every query of the reader gave a number. `consequence` says what the
    reader cannot do without it ("is holding 3 replicas"). `previous` is the recorded condition.
    """
    owner = str((previous or {}).get("message", "")).startswith(reader.value)
    set_by_other = previous is not None and previous.get("status") == "True" and not owner
    if set_by_other:
        return None  # the other reader's problem stands until that reader clears it
    if problem is None:
        if previous is not None and previous.get("status") == "False":
            return None
        return Cond(
            CONDITION,
            False,
            MetricsReason.AVAILABLE,
            f"{reader.value} reads its metrics from Prometheus at {prometheus_url}.",
        )
    if problem.reason is MetricsReason.NO_SERIES:
        what = f"Prometheus at {prometheus_url} has no series for {problem.detail}"
        fix = SCRAPE_FIX
    else:
        what = problem.detail
        fix = URL_FIX
    return Cond(
        CONDITION,
        True,
        problem.reason,
        f"{reader.value} {consequence}: {what} (query: {problem.query}), since "
        f"{_since(previous, now)}. {fix}",
    )


def withdraw_metrics_condition(
    reader: Reader, *, prometheus_url: str, previous: Mapping[str, Any] | None
) -> Cond | None:
    """The condition once `reader` needs no metrics (no canary, no autoscaling): cleared if the
    reader set it, else left as is (None)."""
    mine = str((previous or {}).get("message", "")).startswith(reader.value)
    if previous is None or previous.get("status") != "True" or not mine:
        return None
    return Cond(
        CONDITION,
        False,
        MetricsReason.AVAILABLE,
        f"{reader.value} needs no metrics now; it read them from Prometheus at {prometheus_url}.",
    )
