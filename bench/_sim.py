"""Benchmarks: a discrete-event model of LLM replicas behind a router, driven by a scaling policy.

Shared by bench/autoscale.py and the canary benchmark. A replica serves up to `max_concurrency`
requests at once (continuous batching); each request holds a slot for its prefill
(`context / prefill_tokens_per_second`) and its decode (`generated / (decode_tokens_per_second /
max_concurrency)`, i.e. every sequence decodes at its share of the replica's full-batch
throughput). The router queues requests FIFO and hands each to the least-loaded ready replica
with a free slot. A new replica serves after `startup_seconds`; a removed one stops taking
requests and is billed until its last request finishes. Prometheus scrapes the router's
in-flight total (queued + served) every `scrape_seconds`; a query at time t sees the samples
scraped at or before t - `delay_seconds`. TTFT = queue wait + prefill. The router's TTFT
histogram is modelled exactly: each request's TTFT is recorded when it is dispatched, and a
query sees those recorded at or before t - `delay_seconds`.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from _trace import Request

__all__ = [
    "MetricsModel",
    "Policy",
    "ReplicaModel",
    "Result",
    "View",
    "concurrency_schedule",
    "service_seconds",
    "simulate",
]


@dataclass(frozen=True)
class ReplicaModel:
    max_concurrency: int = 8
    decode_tokens_per_second: float = 200.0
    prefill_tokens_per_second: float = 8000.0
    startup_seconds: float = 120.0


@dataclass(frozen=True)
class MetricsModel:
    scrape_seconds: float = 10.0
    delay_seconds: float = 10.0


def service_seconds(req: Request, model: ReplicaModel) -> tuple[float, float]:
    """(prefill seconds, total slot seconds) of one request on one replica."""
    prefill = req.context_tokens / model.prefill_tokens_per_second
    decode = req.generated_tokens / (model.decode_tokens_per_second / model.max_concurrency)
    return prefill, prefill + decode


class View:
    """What a policy sees when it decides: replica counts, the scraped in-flight series and
    the time to first token of every request served so far (with the time it was recorded)."""

    def __init__(self, metrics: MetricsModel) -> None:
        self._delay = metrics.delay_seconds
        self.times: list[float] = []
        self.values: list[float] = []
        self.ttft_times: list[float] = []
        self.ttfts: list[float] = []
        self.now = 0.0
        self.current = 0
        self.ready = 0

    def _visible(self) -> int:
        return bisect.bisect_right(self.times, self.now - self._delay)

    def latest_total(self) -> float | None:
        end = self._visible()
        return self.values[end - 1] if end else None

    def mean_total(self, window: float) -> float | None:
        """avg_over_time(in_flight[window]) as Prometheus would answer it now."""
        end = self._visible()
        start = bisect.bisect_right(self.times, self.now - self._delay - window)
        if end <= start:
            return None
        return sum(self.values[start:end]) / (end - start)

    def peak_mean_total(self, window: float, span: float) -> float | None:
        """max_over_time(avg_over_time(in_flight[window])[span:]) at the scrape resolution."""
        end = self._visible()
        first = bisect.bisect_right(self.times, self.now - self._delay - span)
        peak: float | None = None
        for i in range(max(first, 0), end):
            lo = bisect.bisect_right(self.times, self.times[i] - window)
            mean = sum(self.values[lo : i + 1]) / (i + 1 - lo)
            peak = mean if peak is None else max(peak, mean)
        return peak

    def attainment(self, threshold: float, window: float) -> tuple[float | None, int]:
        """(share of first tokens within `threshold` over `window`, how many), as a query of
        the router's TTFT histogram would answer now."""
        end = bisect.bisect_right(self.ttft_times, self.now - self._delay)
        start = bisect.bisect_right(self.ttft_times, self.now - self._delay - window)
        n = end - start
        if n <= 0:
            return None, 0
        return sum(1 for v in self.ttfts[start:end] if v <= threshold) / n, n


class Policy(Protocol):
    name: str
    interval: float

    def decide(self, view: View) -> int: ...


@dataclass
class Result:
    name: str
    requests: int
    slo_met: int
    replica_seconds: float
    scale_events: int
    ttft_p99: float
    peak_replicas: int
    timeline: list[tuple[float, int]] = field(default_factory=list)

    @property
    def slo_attainment(self) -> float:
        return self.slo_met / self.requests if self.requests else 1.0

    @property
    def replica_hours(self) -> float:
        return self.replica_seconds / 3600


class _Replica:
    __slots__ = ("active", "ready", "start", "stop", "stopping")

    def __init__(self, start: float, ready: bool) -> None:
        self.start, self.ready, self.stopping = start, ready, False
        self.active = 0
        self.stop: float | None = None


_COMPLETE, _READY, _DECIDE, _SCRAPE = 0, 1, 2, 3


def simulate(
    requests: tuple[Request, ...],
    policy: Policy,
    model: ReplicaModel,
    metrics: MetricsModel,
    initial_replicas: int,
    ttft_slo: float,
    horizon: float,
    start: float = 0.0,
    history_seconds: float = 120.0,
) -> Result:
    """Replay `requests` from time `start` (<= 0) with the policy acting throughout; score only
    the requests arriving at or after 0, bill replicas and count scale events over [0, horizon].

    Requests before 0 warm the system up (a real service has been running before the measured
    period: its metrics have history and its replica count has settled); all run to the end."""
    heap: list[tuple[float, int, int, object]] = []
    seq = 0

    def push(t: float, kind: int, data: object = None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (t, kind, seq, data))

    replicas = [_Replica(start, True) for _ in range(initial_replicas)]
    queue: deque[tuple[float, float, float]] = deque()  # (arrival, prefill, service)
    view = View(metrics)
    in_flight = 0
    met = events = 0
    ttfts: list[float] = []
    timeline: list[tuple[float, int]] = []
    peak = 0

    def serve(rep: _Replica, now: float, item: tuple[float, float, float]) -> None:
        nonlocal met
        arrival, prefill, service = item
        rep.active += 1
        ttft = now - arrival + prefill
        view.ttft_times.append(now)  # when served (sorted; its prefill adds under a second)
        view.ttfts.append(ttft)
        if arrival >= 0:
            ttfts.append(ttft)
            met += ttft <= ttft_slo
        push(now + service, _COMPLETE, rep)

    def dispatch(now: float) -> None:
        while queue:
            free = [r for r in replicas if r.ready and not r.stopping and r.active < cap]
            if not free:
                return
            serve(min(free, key=lambda r: r.active), now, queue.popleft())

    def scale(now: float, want: int) -> None:
        nonlocal events, peak
        live = [r for r in replicas if not r.stopping]
        if want == len(live):
            return
        if now >= 0:
            events += 1
            timeline.append((now, want))
            peak = max(peak, want)
        if want > len(live):
            for _ in range(want - len(live)):
                rep = _Replica(now, model.startup_seconds <= 0)
                replicas.append(rep)
                if not rep.ready:
                    push(now + model.startup_seconds, _READY, rep)
            dispatch(now)
            return
        # Remove starting replicas first (newest first), then the least busy ready ones.
        victims = sorted(live, key=lambda r: (r.ready, r.active, -r.start))[: len(live) - want]
        for rep in victims:
            rep.stopping = True
            if rep.active == 0:
                rep.stop = now

    cap = model.max_concurrency
    push(start, _SCRAPE)
    # The replay starts with an empty system, which a running service never has: the policy first
    # decides once the metrics hold `history_seconds` of samples (a freshly started operator
    # reads Prometheus's history), or the empty start reads as no load at all.
    push(start + max(policy.interval, history_seconds), _DECIDE)
    i, n = 0, len(requests)
    while i < n or heap:
        if i < n and (not heap or requests[i].arrival < heap[0][0]):
            req = requests[i]
            i += 1
            now = req.arrival
            prefill, service = service_seconds(req, model)
            in_flight += 1
            queue.append((now, prefill, service))
            dispatch(now)
            continue
        now, kind, _, data = heapq.heappop(heap)
        if kind == _COMPLETE:
            rep = data
            assert isinstance(rep, _Replica)
            rep.active -= 1
            in_flight -= 1
            if rep.stopping:
                if rep.active == 0:
                    rep.stop = now
            else:
                dispatch(now)
        elif kind == _READY:
            rep = data
            assert isinstance(rep, _Replica)
            if not rep.stopping:
                rep.ready = True
                dispatch(now)
        elif kind == _SCRAPE:
            view.times.append(now)
            view.values.append(float(in_flight))
            if now < horizon:
                push(now + metrics.scrape_seconds, _SCRAPE)
        elif kind == _DECIDE:
            live = [r for r in replicas if not r.stopping]
            if now >= 0:  # the count held since before 0 counts too, not only scale events
                peak = max(peak, len(live))
            view.now, view.current = now, len(live)
            view.ready = sum(r.ready for r in live)
            scale(now, policy.decide(view))
            if now < horizon:
                push(now + policy.interval, _DECIDE)
    unserved = len(queue)
    billed = sum(
        max(0.0, min(r.stop if r.stop is not None else math.inf, horizon) - max(r.start, 0.0))
        for r in replicas
    )
    scored = sum(1 for r in requests if r.arrival >= 0)
    ttfts.sort()
    p99 = ttfts[int(0.99 * (len(ttfts) - 1))] if ttfts else math.inf
    if peak == 0:
        peak = max(1, sum(1 for r in replicas if r.stop is None or r.stop > 0))
    p99 = p99 if not unserved else math.inf
    return Result(policy.name, scored, met, billed, events, p99, peak, timeline)


def concurrency_schedule(
    requests: tuple[Request, ...], model: ReplicaModel, bucket: float, horizon: float
) -> list[int]:
    """Replicas per `bucket` seconds of [0, horizon) that would serve every request with no wait
    at all: the peak concurrency in the bucket (each request in service from arrival) / slots."""
    edges: list[tuple[float, int]] = []
    for req in requests:
        _, service = service_seconds(req, model)
        edges.append((req.arrival, 1))
        edges.append((req.arrival + service, -1))
    edges.sort(key=lambda e: (e[0], e[1]))  # departures before arrivals at the same time
    peaks = [0] * math.ceil(horizon / bucket)
    level = idx = 0
    for b in range(len(peaks)):
        while idx < len(edges) and edges[idx][0] < b * bucket:
            level += edges[idx][1]
            idx += 1
        peak = level
        while idx < len(edges) and edges[idx][0] < (b + 1) * bucket:
            level += edges[idx][1]
            idx += 1
            peak = max(peak, level)
        peaks[b] = peak
    return [max(1, math.ceil(p / model.max_concurrency)) for p in peaks]
