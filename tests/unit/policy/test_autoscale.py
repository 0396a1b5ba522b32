"""Unit tests of the pure autoscaling decision (`drover.policy.autoscale`) with a fixed clock."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from drover.api.autoscaling import (
    HISTORY_LIMIT,
    AutoscalingSignal,
    AutoscalingSpec,
    AutoscalingStatus,
)
from drover.policy.autoscale import ScaleDecision, ScaleOutcome, decide_replicas
from drover.policy.load import LoadSnapshot

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SIGNAL = AutoscalingSignal.IN_FLIGHT_REQUESTS


def spec(target: float = 10, **kw: Any) -> AutoscalingSpec:
    return AutoscalingSpec.model_validate({"target": target, **kw})


def snap(
    total: float | None, current: int, at: float = 0, burst: float | None = None
) -> LoadSnapshot:
    value = None if total is None else total / max(current, 1)
    return LoadSnapshot(
        signal=SIGNAL,
        value=value,
        total=total,
        burst_total=burst,
        current_replicas=current,
        ready_replicas=current,
        sample_time=T0 + timedelta(seconds=at),
    )


def decide(
    s: AutoscalingSpec,
    total: float | None,
    current: int,
    status: AutoscalingStatus | None = None,
    at: float = 0,
    bounds: tuple[int, int] = (1, 100),
    burst: float | None = None,
) -> ScaleDecision:
    return decide_replicas(
        snap(total, current, at, burst), s, bounds, status, T0 + timedelta(seconds=at)
    )


def replay(
    s: AutoscalingSpec,
    loads: Sequence[float | None],
    start: int,
    bounds: tuple[int, int] = (1, 100),
    period: float = 15,
    restart_every_step: bool = False,
    forget: bool = False,
) -> list[ScaleDecision]:
    """One decision every `period` seconds; replicas follow each decision at once."""
    out: list[ScaleDecision] = []
    status: AutoscalingStatus | None = None
    current = start
    for i, total in enumerate(loads):
        if restart_every_step and status is not None:
            # What a restarted operator has: the status as stored by the API server.
            status = AutoscalingStatus.model_validate(json.loads(json.dumps(status.to_wire())))
        d = decide(s, total, current, None if forget else status, at=i * period, bounds=bounds)
        out.append(d)
        status, current = d.status, d.desired_replicas
    return out


def replicas(decisions: Sequence[ScaleDecision]) -> list[int]:
    return [d.desired_replicas for d in decisions]


@pytest.mark.parametrize(
    ("current", "total", "target", "want"),
    [
        (2, 74, 20, 4),  # 37 per replica vs 20: ceil(2 x 37 / 20) = 4
        (4, 100, 10, 8),  # limited by the step rule: +100% or +4, whichever is larger
        (1, 35, 10, 4),
        (3, 3 * 10 * 1.09, 10, 3),  # inside the 10% tolerance band
        (3, 3 * 10 * 1.12, 10, 4),  # just outside it
    ],
)
def test_scale_up_follows_hpa_rule_with_tolerance(
    current: int, total: float, target: float, want: int
) -> None:
    d = decide(spec(target), total, current)
    assert d.desired_replicas == want


def test_reason_names_the_load_the_target_and_the_tolerance() -> None:
    d = decide(spec(20), 74, 2)
    assert d.reason == "replicas 2→4: in-flight 37 per replica > target 20 (tolerance 10%)"
    assert d.outcome is ScaleOutcome.SCALED_UP
    assert d.status.history[-1].from_ == 2 and d.status.history[-1].to == 4
    assert d.status.last_scale_time == T0


@pytest.mark.parametrize(
    ("signal", "label"),
    [
        (AutoscalingSignal.IN_FLIGHT_REQUESTS, "in-flight"),
        (AutoscalingSignal.QUEUE_DEPTH, "queue depth"),
        (AutoscalingSignal.TOKENS_PER_SECOND, "tokens/s"),
    ],
)
def test_every_signal_scales_by_the_same_rule(signal: AutoscalingSignal, label: str) -> None:
    s = spec(500, signal=signal.value)
    load = LoadSnapshot(signal, 900.0, 2, 2, T0, total=1800.0)
    d = decide_replicas(load, s, (1, 10), None, T0)
    assert d.desired_replicas == 4
    assert f"{label} 900 per replica > target 500" in d.reason
    assert d.status.signal is signal


def test_history_is_written_with_kubernetes_field_names() -> None:
    wire = decide(spec(20), 74, 2).status.to_wire()
    assert wire["history"][0]["from"] == 2 and wire["history"][0]["to"] == 4
    assert wire["currentReplicas"] == 2 and wire["desiredReplicas"] == 4
    assert wire["lastScaleTime"] == "2026-01-01T12:00:00Z"


# Noise above the 10% band at every size; at 20-40 replicas 15% is several replicas' worth (an
# averaged in-flight count varies less, relatively, the larger it is).
@pytest.mark.parametrize(("start", "noise"), [(4, 0.25), (20, 0.15), (40, 0.15)])
def test_no_flapping_on_noisy_steady_load(start: int, noise: float) -> None:
    rng = random.Random(7)
    # `start` replicas' worth of load with +/-noise on every reading, after a minute at exactly
    # that load (the status has a history), for 30 minutes.
    loads = [start * 10.0] * 4 + [start * 10 * (1 + rng.uniform(-noise, noise)) for _ in range(120)]
    got = replicas(replay(spec(10), loads, start=start))
    changes = [(a, b) for a, b in zip([start, *got], got, strict=False) if a != b]
    ups = [b > a for a, b in changes]
    # At most one step up on a noisy peak, then only steps back down (in whole replicas, as the
    # peak leaves the window), never below the load's own count: no down-then-up oscillation.
    assert ups.count(True) <= 1 and ups == sorted(ups, reverse=True), changes
    assert start <= min(got) and max(got) <= math.ceil(start * (1 + noise)), changes


def test_scale_down_waits_for_stabilization_window() -> None:
    s = spec(10, scaleDown={"stabilizationSeconds": 300, "maxStepPercent": 100})
    loads = [80.0] * 4 + [20.0] * 30  # 8 replicas' load, then 2 replicas' load from t=60s
    got = replay(s, loads, start=8)
    drop_at = 4 * 15
    for i, d in enumerate(got):
        t = i * 15
        if t < drop_at + 300:
            assert d.desired_replicas == 8, (t, d.reason)
    assert got[-1].desired_replicas == 2
    held = got[10]
    assert "scaleDown waits out its 300s stabilization window" in held.reason


def test_scale_up_is_immediate_with_zero_stabilization() -> None:
    got = replay(spec(10), [20.0, 60.0], start=2)
    assert replicas(got) == [2, 6]


def test_scale_up_stabilization_needs_the_load_to_last() -> None:
    s = spec(10, scaleUp={"stabilizationSeconds": 60})
    # 1.75x the target: below the panic threshold, so the up window applies.
    got = replicas(replay(s, [20.0] * 2 + [35.0] * 6, start=2))
    # The higher load starts at t=30 s; the lowest recommendation over 60 s is 4 from t=90 s.
    assert got == [2] * 6 + [4, 4]


def test_scale_up_rate_limit_per_period() -> None:
    s = spec(10, scaleUp={"maxStepPercent": 100, "maxStepReplicas": 4, "periodSeconds": 60})
    got = replay(s, [400.0] * 9, start=2)  # the load needs 40 replicas
    # 2 → 6 (the +4 rule beats +100%), held inside the period, 6 → 12, 12 → 24.
    assert replicas(got) == [6, 6, 6, 6, 12, 12, 12, 12, 24]
    assert "limited from 40: scaleUp allows 6 per 60s" in got[0].reason


def test_scale_up_steps_from_ready_replicas_while_others_start() -> None:
    # 16 ordered, 8 ready: the queue built while 8 start must not order the same capacity again.
    starting = LoadSnapshot(SIGNAL, 50.0, 16, 8, T0, total=400.0)
    d = decide_replicas(starting, spec(10), (1, 100), None, T0)
    assert d.desired_replicas == 16
    assert "(limited from 40: 8 replicas still starting, scaleUp allows 16)" in d.reason
    ready = LoadSnapshot(SIGNAL, 25.0, 16, 16, T0 + timedelta(seconds=15), total=400.0)
    assert (
        decide_replicas(ready, spec(10), (1, 100), d.status, ready.sample_time).desired_replicas
        == 32
    )


def test_scale_down_rate_limit_per_period() -> None:
    s = spec(10, scaleDown={"stabilizationSeconds": 0, "maxStepPercent": 50, "periodSeconds": 60})
    got = replicas(replay(s, [10.0] * 9, start=16))
    assert got == [8, 8, 8, 8, 4, 4, 4, 4, 2]


def test_panic_scales_up_at_once_and_holds() -> None:
    s = spec(
        10,
        windowSeconds=60,
        scaleUp={"stabilizationSeconds": 120},
        scaleDown={"stabilizationSeconds": 0, "maxStepPercent": 100},
    )
    # Four replicas see a 2.5x surge on the short window: straight to 10 despite the 120 s window.
    d = decide(s, 40, 4, burst=100)
    assert d.desired_replicas == 8  # the step limit (+100% / +4) still applies
    assert d.panic and d.reason.startswith("replicas 4→8: panic: in-flight 25 per replica")
    d2 = decide(s, 100, 8, d.status, at=15, burst=100)
    assert d2.desired_replicas == 10
    # The surge ends: no scale down while panic lasts (60 s after the last surge) ...
    d3 = decide(s, 10, 10, d2.status, at=30)
    d4 = decide(s, 10, 10, d3.status, at=55)
    assert d3.desired_replicas == d4.desired_replicas == 10
    assert "panic mode until" in d4.reason
    # ... and scale down once it is over.
    d5 = decide(s, 10, 10, d4.status, at=80)
    assert not d5.panic and d5.desired_replicas == 1


@pytest.mark.parametrize(
    ("total", "current", "bounds", "want", "says"),
    [
        (1000, 6, (2, 8), 8, "capped at max 8"),
        (1, 4, (2, 8), 2, "held at min 2"),
        (100, 10, (1, 6), 6, ""),  # max lowered below the current count
        (15, 1, (3, 8), 3, ""),  # min raised above it
    ],
)
def test_min_and_max_bound_the_decision(
    total: float, current: int, bounds: tuple[int, int], want: int, says: str
) -> None:
    s = spec(10, scaleDown={"stabilizationSeconds": 0, "maxStepPercent": 100})
    d = decide(s, total, current, bounds=bounds)
    assert d.desired_replicas == want
    assert says in d.reason


def test_scale_to_zero_after_idle_period_and_wake_on_activation() -> None:
    s = spec(10, scaleToZero={"enabled": True, "idleSeconds": 300, "activationThreshold": 0})
    got = replay(s, [0.0] * 22, start=1, bounds=(0, 4))
    idle_at = [i * 15 for i, d in enumerate(got) if d.desired_replicas == 0]
    assert idle_at and idle_at[0] == 300
    assert got[20].outcome is ScaleOutcome.SCALED_TO_ZERO
    assert "idleSeconds 300" in got[20].reason
    still = decide(s, 0, 0, got[-1].status, at=400, bounds=(0, 4))
    assert still.desired_replicas == 0
    woke = decide(s, 23, 0, still.status, at=415, bounds=(0, 4))
    assert woke.desired_replicas == 3 and woke.outcome is ScaleOutcome.WOKE_UP
    assert "waking up, total in-flight 23 > activation threshold 0" in woke.reason


def test_load_between_idle_periods_restarts_the_idle_clock() -> None:
    s = spec(10, scaleToZero={"enabled": True, "idleSeconds": 300})
    loads = [0.0] * 14 + [8.0] * 4 + [0.0] * 24  # idle 210 s, busy 60 s, idle again from 270 s
    got = replay(s, loads, start=1, bounds=(0, 4))
    first_zero = next(i for i, d in enumerate(got) if d.desired_replicas == 0)
    assert first_zero * 15 == 270 + 300


def test_activation_threshold_keeps_a_trickle_from_waking() -> None:
    s = spec(10, scaleToZero={"enabled": True, "idleSeconds": 60, "activationThreshold": 2})
    assert decide(s, 1.5, 0, bounds=(0, 4)).desired_replicas == 0
    assert decide(s, 2.5, 0, bounds=(0, 4)).desired_replicas == 1


def test_never_zero_when_scale_to_zero_is_disabled() -> None:
    got = replay(spec(10), [0.0] * 100, start=3, bounds=(0, 4))
    assert min(replicas(got)) == 1


def test_missing_data_holds_and_never_scales_to_zero() -> None:
    s = spec(10, scaleToZero={"enabled": True, "idleSeconds": 300})
    loads: list[float | None] = [0.0] * 12 + [None] * 12 + [0.0] * 12
    got = replay(s, loads, start=2, bounds=(0, 4))
    missing = got[12:24]
    assert all(d.desired_replicas == d.status.current_replicas for d in missing)
    assert all(d.outcome is ScaleOutcome.METRICS_UNAVAILABLE for d in missing)
    assert missing[0].reason == "holding 1 replica: no inFlightRequests data from metrics"
    # Idle time before the gap does not count: 12 x 15 s = 180 s < 300 s since data returned.
    assert all(d.desired_replicas > 0 for d in got)


def test_missing_data_does_not_hold_a_count_outside_new_bounds() -> None:
    d = decide(spec(10), None, 10, bounds=(1, 6))
    assert d.desired_replicas == 6


def test_restart_continues_from_status_alone() -> None:
    rng = random.Random(3)
    loads: list[float | None] = (
        [30 + rng.uniform(-5, 5) for _ in range(20)]
        + [150.0] * 4
        + [None] * 3
        + [60 + rng.uniform(-10, 10) for _ in range(40)]
        + [5.0] * 30
    )
    s = spec(10, scaleToZero={"enabled": True, "idleSeconds": 120, "activationThreshold": 6})
    straight = replay(s, loads, start=3, bounds=(0, 20))
    restarted = replay(s, loads, start=3, bounds=(0, 20), restart_every_step=True)
    assert [(d.desired_replicas, d.reason) for d in straight] == [
        (d.desired_replicas, d.reason) for d in restarted
    ]
    assert len(set(replicas(straight))) >= 4  # the sequence really exercises the scaler
    # And the status is what carries the memory: without it the decisions differ.
    amnesiac = replay(s, loads, start=3, bounds=(0, 20), forget=True)
    assert replicas(amnesiac) != replicas(straight)


def test_status_memory_stays_bounded() -> None:
    rng = random.Random(11)
    loads = [rng.choice([10.0, 80.0, 200.0]) for _ in range(300)]
    s = spec(10, scaleDown={"stabilizationSeconds": 0, "maxStepPercent": 100})
    got = replay(s, loads, start=2)
    assert sum(d.changed for d in got) > HISTORY_LIMIT
    last = got[-1].status
    assert len(last.history) == HISTORY_LIMIT
    assert len(last.recommendations) <= 2  # only the windows' worth (here 0 s) is kept


def test_spec_defaults_and_wire_names() -> None:
    wire = spec(8).to_wire()
    assert wire["signal"] == "inFlightRequests"
    assert wire["scaleUp"] == {
        "stabilizationSeconds": 0,
        "maxStepPercent": 100,
        "maxStepReplicas": 4,
        "periodSeconds": 15,
    }
    assert wire["scaleDown"]["stabilizationSeconds"] == 300
    assert wire["panic"] == {"thresholdMultiplier": 2.0, "windowSeconds": 15}
    assert wire["scaleToZero"]["enabled"] is False


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "target"),
        ({"target": 0}, "target"),
        ({"target": 8, "windowSeconds": 20, "panic": {"windowSeconds": 30}}, "panic.windowSeconds"),
        ({"target": 8, "scaleUp": {"maxStepReplicas": 0}}, "maxStepReplicas"),
        ({"target": 8, "signal": "gpuUtilization"}, "inFlightRequests"),
        ({"target": 8, "panic": {"thresholdMultiplier": 1.0}}, "thresholdMultiplier"),
    ],
)
def test_bad_spec_is_refused_naming_the_field(body: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError) as err:
        AutoscalingSpec.model_validate(body)
    assert says in str(err.value)
