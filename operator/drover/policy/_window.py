"""Policy layer: the autoscaler's stabilization memory, kept in status as recommendation changes.

A recommendation holds from its record's time until the next record (the last one until the last
decision), so a short list of changes answers "lowest / highest over the last N seconds" exactly
as HPA's per-sync list would, and survives an operator restart inside the resource's status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from drover.api.autoscaling import RECOMMENDATION_LIMIT, RecommendationRecord

__all__ = ["recommendations_in_window", "record_recommendation"]


def _spans(
    records: Sequence[RecommendationRecord], last_decision: datetime | None
) -> list[tuple[RecommendationRecord, datetime]]:
    """Each record with the time its value held until."""
    spans: list[tuple[RecommendationRecord, datetime]] = []
    for i, rec in enumerate(records):
        if i + 1 < len(records):
            end = records[i + 1].time
        else:
            end = max(last_decision, rec.time) if last_decision is not None else rec.time
        spans.append((rec, end))
    return spans


def recommendations_in_window(
    records: Sequence[RecommendationRecord],
    last_decision: datetime | None,
    now: datetime,
    window_seconds: int,
) -> list[int]:
    """The recommendations that held at some time in the last `window_seconds` before `now`."""
    if window_seconds <= 0:
        return []
    cutoff = now - timedelta(seconds=window_seconds)
    return [rec.replicas for rec, end in _spans(records, last_decision) if end > cutoff]


def record_recommendation(
    records: Sequence[RecommendationRecord],
    last_decision: datetime | None,
    now: datetime,
    replicas: int,
    keep_seconds: int,
) -> list[RecommendationRecord]:
    """The records after this decision: a new one on a change, those older than needed dropped."""
    cutoff = now - timedelta(seconds=keep_seconds)
    kept = [rec for rec, end in _spans(records, last_decision) if end > cutoff]
    if not kept or kept[-1].replicas != replicas:
        kept.append(RecommendationRecord(time=now, replicas=replicas))
    return kept[-RECOMMENDATION_LIMIT:]
