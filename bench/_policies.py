"""Benchmark support: the autoscaling policies bench/autoscale.py compares on one trace.

`DroverPolicy` drives Drover's real `decide_replicas` (target or SLO mode), its status
round-tripped through JSON as the operator does through the API server; `HpaPolicy` is HPA's
default behaviour, `KubeAiPolicy` a KubeAI-style 10-minute moving average, and `SchedulePolicy`
replays a precomputed schedule (the oracle) or a constant (static at peak). Each one's `decide`
reads a `_sim.View` and returns a replica count.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from _sim import View
from drover.api.autoscaling import AutoscalingSignal, AutoscalingSpec, AutoscalingStatus
from drover.policy.autoscale import decide_replicas
from drover.policy.load import LoadSnapshot
from drover.policy.slo import planning_span_seconds

EPOCH = datetime(2023, 11, 16, 18, 0, tzinfo=UTC)


class DroverPolicy:
    """Drover's decision function with a spec; status round-trips through JSON every time.

    In SLO mode it also reads what the handler reads from Prometheus: the peak short-window
    in-flight total over the planning span and the TTFT attainment over the SLO window."""

    def __init__(
        self,
        spec: AutoscalingSpec,
        bounds: tuple[int, int],
        interval: float,
        capacity: int,
        name: str = "drover",
    ) -> None:
        self.name, self.spec, self.bounds, self.interval = name, spec, bounds, interval
        self.capacity = capacity
        self.status_json: dict[str, Any] | None = None

    def decide(self, view: View) -> int:
        status = None
        if self.status_json is not None:
            status = AutoscalingStatus.model_validate(self.status_json)
        total = view.mean_total(self.spec.window_seconds)
        burst = view.mean_total(self.spec.panic.window_seconds)
        peak = attained = None
        served = 0
        if self.spec.slo is not None:
            span = planning_span_seconds(self.spec, status.slo if status else None)
            peak = view.peak_mean_total(self.spec.panic.window_seconds, span)
            attained, served = view.attainment(
                self.spec.slo.ttft_seconds, self.spec.slo.window_seconds
            )
        ready = max(view.ready, 1)
        snap = LoadSnapshot(
            signal=AutoscalingSignal.IN_FLIGHT_REQUESTS,
            value=None if total is None else total / ready,
            total=total,
            burst_total=burst,
            current_replicas=view.current,
            ready_replicas=view.ready,
            sample_time=EPOCH + timedelta(seconds=view.now),
            peak_total=peak,
            ttft_attainment=attained,
            ttft_requests=float(served),
        )
        decision = decide_replicas(
            snap, self.spec, self.bounds, status, snap.sample_time, capacity=self.capacity
        )
        self.status_json = decision.status.to_wire()
        return decision.desired_replicas


class HpaPolicy:
    """HPA v2 with its defaults, written independently of Drover's code: 15 s sync, 10%
    tolerance, scale-up 0 s window and max(100%, 4 pods) per 15 s, scale-down 300 s window and
    100% per 15 s; the metric is the latest in-flight total as an External AverageValue."""

    interval = 15.0

    def __init__(self, target: float, bounds: tuple[int, int]) -> None:
        self.name = f"hpa@{target:g}"
        self.target, self.bounds = target, bounds
        self.recs: deque[tuple[float, int]] = deque()
        self.events: list[tuple[float, int]] = []  # (time, change)

    def decide(self, view: View) -> int:
        cur, now = view.current, view.now
        total = view.latest_total()
        if total is None:
            return cur
        ratio = total / (cur * self.target)
        rec = cur if abs(ratio - 1) <= 0.1 else math.ceil(total / self.target)
        self.recs.append((now, rec))
        while self.recs and self.recs[0][0] <= now - 300:
            self.recs.popleft()
        up_rec = rec  # scale-up window 0: only this recommendation
        down_rec = max(r for _, r in self.recs)
        want = cur
        if want < up_rec:
            want = up_rec
        if want > down_rec:
            want = down_rec
        recent = [c for t, c in self.events if t > now - 15]
        if want > cur:
            start = cur - sum(c for c in recent if c > 0)
            want = min(want, max(math.ceil(start * 2), start + 4))
        elif want < cur:
            start = cur - sum(c for c in recent if c < 0)
            want = max(want, start - start)  # 100% per period
        want = min(max(want, self.bounds[0]), self.bounds[1])
        if want != cur:
            self.events.append((now, want - cur))
        return want


class KubeAiPolicy:
    """KubeAI-style: every 10 s, the moving average of the in-flight total over 10 minutes
    (kept in memory) / target; up at once, down after it held 30 s (scaleDownDelaySeconds)."""

    interval = 10.0

    def __init__(self, target: float, bounds: tuple[int, int]) -> None:
        self.name = f"kubeai@{target:g}"
        self.target, self.bounds = target, bounds
        self.samples: deque[float] = deque(maxlen=60)
        self.lower_since: float | None = None

    def decide(self, view: View) -> int:
        total = view.latest_total()
        if total is None:
            return view.current
        self.samples.append(total)
        avg = sum(self.samples) / len(self.samples)
        want = min(max(math.ceil(avg / self.target), self.bounds[0]), self.bounds[1])
        if want >= view.current:
            self.lower_since = None
            return want
        self.lower_since = view.now if self.lower_since is None else self.lower_since
        return want if view.now - self.lower_since >= 30 else view.current


@dataclass
class SchedulePolicy:
    """Replicas from a precomputed schedule (the oracle) or a constant (static at peak)."""

    name: str
    interval: float
    schedule: list[int]

    def decide(self, view: View) -> int:
        index = int(view.now // self.interval)
        return self.schedule[min(max(index, 0), len(self.schedule) - 1)]
