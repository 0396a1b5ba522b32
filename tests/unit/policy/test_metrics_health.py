"""MetricsUnavailable: who set it, what failed, since when and the fix; cleared by its setter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drover.policy.conditions import set_condition
from drover.policy.metrics_health import (
    CONDITION,
    SCRAPE_FIX,
    URL_FIX,
    MetricsProblem,
    MetricsReason,
    Reader,
    decide_metrics_condition,
    withdraw_metrics_condition,
)

T0 = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)
URL = "http://prometheus-operated.monitoring:9090"
QUERY = 'sum(avg_over_time(ray_drover_requests_in_flight{service="chat"}[60s]))'
NO_SERIES = MetricsProblem(MetricsReason.NO_SERIES, QUERY, "inFlightRequests of version v1")
UNREACHABLE = MetricsProblem(
    MetricsReason.PROMETHEUS_UNREACHABLE,
    QUERY,
    f"Prometheus at {URL} is unreachable: [Errno 111] Connection refused",
)
FAILED = MetricsProblem(
    MetricsReason.QUERY_FAILED, QUERY, "Prometheus answered 422 to '...': bad_data"
)


def decide(reader, problem, previous, now=T0):
    return decide_metrics_condition(
        reader,
        problem,
        consequence="is holding 3 replicas",
        prometheus_url=URL,
        previous=previous,
        now=now,
    )


def recorded(cond, now=T0):
    """The condition as set_condition records it."""
    return set_condition(None, cond, generation=1, now=now)[0]


@pytest.mark.parametrize(
    ("problem", "reason", "says"),
    [
        (NO_SERIES, "NoSeries", f"Prometheus at {URL} has no series for inFlightRequests"),
        (UNREACHABLE, "PrometheusUnreachable", "is unreachable: [Errno 111] Connection refused"),
        (FAILED, "PrometheusQueryFailed", "answered 422"),
    ],
)
def test_a_problem_sets_the_condition_naming_reader_url_query_and_since(
    problem, reason, says
) -> None:
    cond = decide(Reader.AUTOSCALER, problem, None)
    assert cond is not None and cond.type == CONDITION
    assert (cond.status, cond.reason) == (True, reason)
    assert cond.message.startswith("The autoscaler is holding 3 replicas: ")
    assert says in cond.message
    assert f"(query: {QUERY})" in cond.message
    assert "since 2026-11-22T08:00:00Z" in cond.message


@pytest.mark.parametrize(
    ("problem", "fix"),
    [
        (NO_SERIES, "metrics.rayPodMonitor.enabled: true creates a PodMonitor"),
        (UNREACHABLE, "Point config.prometheus.url (DROVER_PROMETHEUS_URL) at a reachable"),
    ],
)
def test_the_message_ends_with_the_fix(problem, fix) -> None:
    cond = decide(Reader.AUTOSCALER, problem, None)
    assert cond is not None and fix in cond.message
    assert cond.message.endswith(SCRAPE_FIX if problem is NO_SERIES else URL_FIX)


def test_since_is_when_metrics_first_went_missing() -> None:
    first = recorded(decide(Reader.AUTOSCALER, NO_SERIES, None))
    later = decide(Reader.AUTOSCALER, NO_SERIES, first, now=T0 + timedelta(minutes=7))
    assert later is not None and "since 2026-11-22T08:00:00Z" in later.message
    # The same problem gives the same message: no status patch on every tick.
    assert later.message == decide(Reader.AUTOSCALER, NO_SERIES, first).message


@pytest.mark.parametrize(
    ("reader", "previous_by", "problem", "outcome"),
    [
        # No condition yet, metrics fine: recorded False once.
        (Reader.AUTOSCALER, None, None, False),
        # The setter clears its own condition when its queries answer again.
        (Reader.AUTOSCALER, Reader.AUTOSCALER, None, False),
        (Reader.ANALYSIS, Reader.ANALYSIS, None, False),
        # Another reader's condition stands: neither cleared nor overwritten.
        (Reader.ANALYSIS, Reader.AUTOSCALER, None, "unchanged"),
        (Reader.ANALYSIS, Reader.AUTOSCALER, NO_SERIES, "unchanged"),
        (Reader.AUTOSCALER, Reader.ANALYSIS, UNREACHABLE, "unchanged"),
        # The setter updates its own.
        (Reader.AUTOSCALER, Reader.AUTOSCALER, UNREACHABLE, True),
    ],
)
def test_each_reader_clears_only_what_it_set(reader, previous_by, problem, outcome) -> None:
    previous = None
    if previous_by is not None:
        previous = recorded(decide(previous_by, NO_SERIES, None))
    cond = decide(reader, problem, previous)
    if outcome == "unchanged":
        assert cond is None
    else:
        assert cond is not None and cond.status is outcome
        assert cond.message.startswith(reader.value)


def test_metrics_that_stay_available_change_nothing() -> None:
    fine = recorded(decide(Reader.AUTOSCALER, None, None))
    assert fine["status"] == "False" and fine["reason"] == "MetricsAvailable"
    assert decide(Reader.AUTOSCALER, None, fine) is None
    assert decide(Reader.ANALYSIS, None, fine) is None


@pytest.mark.parametrize(
    ("previous_by", "status", "cleared"),
    [
        (Reader.ANALYSIS, True, True),  # the canary is gone: its missing metrics no longer matter
        (Reader.AUTOSCALER, True, False),
        (None, None, False),
    ],
)
def test_a_reader_that_needs_no_metrics_withdraws_only_its_own(
    previous_by, status, cleared
) -> None:
    previous = recorded(decide(previous_by, NO_SERIES, None)) if previous_by else None
    cond = withdraw_metrics_condition(Reader.ANALYSIS, prometheus_url=URL, previous=previous)
    if cleared:
        assert cond is not None and cond.status is False and cond.reason == "MetricsAvailable"
    else:
        assert cond is None
