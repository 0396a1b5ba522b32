"""Benchmark: Drover's autoscaler against HPA, a KubeAI-style moving average, static and oracle.

Replays an LLM request trace (Azure format) through the replica model of bench/_sim.py, driving
Drover's real `drover.policy.autoscale.decide_replicas` with the spec defaults (its status is
written to JSON and read back at every decision, as the operator does through the API server),
and prints for each policy: SLO attainment (share of requests whose TTFT meets --ttft-slo),
replica-hours (and their ratio to the oracle) and scale events. Every policy reads the same
in-flight total (queued + served, scraped every --scrape-seconds, --metrics-delay old) with the
same --target per replica. The oracle knows the future and starts replicas instantly: per
--oracle-bucket it has just enough slots for every request in flight (its cost is that schedule);
static-peak holds the oracle's peak all along. A baseline that misses Drover's SLO is run again
at lower targets until it matches (rows `name@target`); each baseline's row at Drover's SLO (its
own when it already matches) is the comparison of cost at equal service.

The run repeats on variants of the trace (rotated by half, rate x2, rate x0.5) so the defaults
are not fitted to one shape, and shows a stress case (a sudden 5-minute doubling) where no
policy that waits --startup-seconds for a replica can meet the SLO. The trace's last --warmup
seconds are replayed first, unscored, so metrics and replica counts start settled.

    python bench/autoscale.py [--trace CSV] [--json] [--no-variants] [model options; see -h]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run from a checkout without an installed package too (the venv has it installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from _sim import MetricsModel, ReplicaModel, Result, View, concurrency_schedule, simulate
from _trace import (
    Request,
    Trace,
    TraceError,
    default_trace_path,
    load_trace,
    rotate,
    scale_rate,
    surge,
)
from drover.api.autoscaling import AutoscalingSignal, AutoscalingSpec, AutoscalingStatus
from drover.policy.autoscale import LoadSnapshot, decide_replicas

EPOCH = datetime(2023, 11, 16, 18, 0, tzinfo=UTC)
# SLO attainments this close (0.05 percentage points) count as equal.
SLO_TIE = 0.0005


class DroverPolicy:
    """Drover's decision function with a spec; status round-trips through JSON every time."""

    def __init__(self, spec: AutoscalingSpec, bounds: tuple[int, int], interval: float) -> None:
        self.name, self.spec, self.bounds, self.interval = "drover", spec, bounds, interval
        self.status_json: dict[str, Any] | None = None

    def decide(self, view: View) -> int:
        total = view.mean_total(self.spec.window_seconds)
        burst = view.mean_total(self.spec.panic.window_seconds)
        ready = max(view.ready, 1)
        snap = LoadSnapshot(
            signal=AutoscalingSignal.IN_FLIGHT_REQUESTS,
            value=None if total is None else total / ready,
            total=total,
            burst_total=burst,
            current_replicas=view.current,
            ready_replicas=view.ready,
            sample_time=EPOCH + timedelta(seconds=view.now),
        )
        status = None
        if self.status_json is not None:
            status = AutoscalingStatus.model_validate(self.status_json)
        decision = decide_replicas(snap, self.spec, self.bounds, status, snap.sample_time)
        self.status_json = decision.status.to_wire()
        return decision.desired_replicas


class HpaPolicy:
    """HPA v2 with its defaults, written independently of Drover's code: 15 s sync, 10%
    tolerance, scale-up 0 s window and max(100%, 4 pods) per 15 s, scale-down 300 s window and
    100% per 15 s; the metric is the latest in-flight total as an External AverageValue."""

    name = "hpa-default"
    interval = 15.0

    def __init__(self, target: float, bounds: tuple[int, int]) -> None:
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

    name = "kubeai-style"
    interval = 10.0

    def __init__(self, target: float, bounds: tuple[int, int]) -> None:
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


def with_warmup(trace: Trace, warmup: float) -> tuple[Request, ...]:
    """The trace preceded by its own last `warmup` seconds, moved to [-warmup, 0)."""
    tail = [r for r in trace.requests if r.arrival >= trace.duration - warmup]
    moved = [
        Request(r.arrival - trace.duration - 1e-3, r.context_tokens, r.generated_tokens)
        for r in tail
    ]
    return tuple(moved) + trace.requests


def run_trace(trace: Trace, args: argparse.Namespace) -> dict[str, Any]:
    model = ReplicaModel(
        args.max_concurrency, args.decode_tps, args.prefill_tps, args.startup_seconds
    )
    metrics = MetricsModel(args.scrape_seconds, args.metrics_delay)
    horizon = trace.duration + 1.0
    requests = with_warmup(trace, args.warmup)
    start = -args.warmup
    schedule = concurrency_schedule(requests, model, args.oracle_bucket, horizon)
    warm = concurrency_schedule(
        tuple(
            Request(r.arrival + args.warmup, r.context_tokens, r.generated_tokens)
            for r in requests
            if r.arrival < 0
        ),
        model,
        args.oracle_bucket,
        args.warmup,
    )
    bounds = (args.min_replicas, args.max_replicas)
    spec = AutoscalingSpec(target=args.target)
    policies = [
        DroverPolicy(spec, bounds, args.sync_seconds),
        HpaPolicy(args.target, bounds),
        KubeAiPolicy(args.target, bounds),
        SchedulePolicy("static-peak", horizon, [max(schedule)]),
    ]
    results: list[Result] = []
    for pol in policies:
        initial = max(schedule) if pol.name == "static-peak" else max(warm)
        results.append(
            simulate(requests, pol, model, metrics, initial, args.ttft_slo, horizon, start)
        )
    # Equal-SLO view: a baseline that misses Drover's SLO at the shared target is run again at
    # lower targets (steps of 0.5) until it matches, to compare replica-hours at equal service.
    drover = results[0]
    at_equal_slo: dict[str, str] = {}  # baseline → its row at Drover's SLO
    for cls in (HpaPolicy, KubeAiPolicy):
        base = next(r for r in results if r.name == cls.name)
        target = args.target
        while base.slo_attainment < drover.slo_attainment - SLO_TIE and target > 1:
            target -= 0.5
            base = simulate(
                requests, cls(target, bounds), model, metrics, max(warm), args.ttft_slo,
                horizon, start,
            )  # fmt: skip
            base.name = f"{cls.name}@{target:g}"
        if base.name != cls.name:
            results.append(base)
        at_equal_slo[cls.name] = base.name
    oracle_model = ReplicaModel(args.max_concurrency, args.decode_tps, args.prefill_tps, 0.0)
    oracle = simulate(
        requests, SchedulePolicy("oracle", args.oracle_bucket, schedule), oracle_model,
        metrics, schedule[0], args.ttft_slo, horizon, start,
    )  # fmt: skip
    # The oracle's cost is its schedule itself (requests could move off a removed replica).
    oracle.replica_seconds = sum(schedule) * args.oracle_bucket
    results.append(oracle)
    rows = {
        r.name: {
            "slo_attainment": round(r.slo_attainment, 5),
            "replica_hours": round(r.replica_hours, 3),
            "vs_oracle": round(r.replica_seconds / oracle.replica_seconds, 3),
            "scale_events": r.scale_events,
            "ttft_p99_s": round(r.ttft_p99, 2),
            "peak_replicas": r.peak_replicas,
        }
        for r in results
    }
    d, h, k = rows["drover"], rows["hpa-default"], rows["kubeai-style"]
    goals = {
        "slo_at_least_99pct": d["slo_attainment"] >= 0.99,
        "replica_hours_within_1.2x_oracle": d["vs_oracle"] <= 1.2,
        "slo_not_below_hpa_and_kubeai": d["slo_attainment"]
        >= max(h["slo_attainment"], k["slo_attainment"]) - SLO_TIE,
        "replica_hours_below_hpa_and_kubeai": d["replica_hours"]
        <= min(h["replica_hours"], k["replica_hours"]),
        "replica_hours_below_baselines_at_equal_slo": all(
            d["replica_hours"] <= rows[n]["replica_hours"] for n in at_equal_slo.values()
        ),
        "fewer_scale_events_than_hpa": d["scale_events"] < h["scale_events"],
    }
    return {
        "trace": trace.source,
        "requests": len(trace.requests),
        "policies": rows,
        "goals": goals,
        "equal_slo_rows": at_equal_slo,
        "note": _cheaper_only_by_missing(rows, at_equal_slo, goals),
    }


def _cheaper_only_by_missing(
    rows: dict[str, dict[str, Any]], at_equal_slo: dict[str, str], goals: dict[str, bool]
) -> str | None:
    """Why the literal cost goal is missed when Drover still wins at equal SLO (else None)."""
    if goals["replica_hours_below_hpa_and_kubeai"]:
        return None
    if not goals["replica_hours_below_baselines_at_equal_slo"]:
        return None
    d = rows["drover"]
    return "; ".join(
        f"{base} is cheaper only by missing {1 - rows[base]['slo_attainment']:.2%} of requests "
        f"(drover {1 - d['slo_attainment']:.2%}); at Drover's SLO it costs "
        f"{rows[row]['replica_hours']:.2f} h ({row}) vs drover's {d['replica_hours']:.2f} h"
        for base, row in at_equal_slo.items()
        if rows[base]["replica_hours"] < d["replica_hours"]
    )


def _print(report: dict[str, Any]) -> None:
    print(f"\n{report['trace']} ({report['requests']} requests)")
    print(
        f"  {'policy':<18}{'SLO met':>9}{'replica-h':>11}{'x oracle':>10}{'events':>8}"
        f"{'TTFT p99':>10}{'peak':>6}"
    )
    for name, r in report["policies"].items():
        print(
            f"  {name:<18}{r['slo_attainment']:>9.2%}{r['replica_hours']:>11.2f}"
            f"{r['vs_oracle']:>10.2f}{r['scale_events']:>8}{r['ttft_p99_s']:>9.2f}s"
            f"{r['peak_replicas']:>6}"
        )
    equal = ", ".join(
        f"{row} {report['policies'][row]['replica_hours']:.2f} h"
        for row in report["equal_slo_rows"].values()
    )
    drover_h = report["policies"]["drover"]["replica_hours"]
    print(f"  at Drover's SLO or better: {equal} (drover {drover_h:.2f} h)")
    if report["note"]:
        print(f"  why: {report['note']}")
    missed = [g for g, ok in report["goals"].items() if not ok]
    print("  goals: " + ("all met" if not missed else "MISSED " + ", ".join(missed)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    class Fmt(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        pass

    p = argparse.ArgumentParser(description=__doc__, formatter_class=Fmt)
    p.add_argument("--trace", default=None, help="CSV: TIMESTAMP,ContextTokens,GeneratedTokens")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--no-variants", action="store_true", help="skip rotated/rescaled copies")
    p.add_argument("--max-context", type=int, default=8192, help="clip longer prompts (tokens)")
    p.add_argument("--max-concurrency", type=int, default=8, help="slots per replica (batch)")
    p.add_argument(
        "--decode-tps", type=float, default=200.0,
        help="generated tokens/s per replica at full batch (per sequence: / max-concurrency)",
    )  # fmt: skip
    p.add_argument("--prefill-tps", type=float, default=8000.0, help="prompt tokens/s per slot")
    p.add_argument("--startup-seconds", type=float, default=120.0, help="replica start-up delay")
    p.add_argument("--scrape-seconds", type=float, default=10.0, help="Prometheus scrape period")
    p.add_argument("--metrics-delay", type=float, default=10.0, help="age of the newest sample")
    p.add_argument("--sync-seconds", type=float, default=15.0, help="Drover's decision period")
    p.add_argument(
        "--target", type=float, default=6.0, help="in-flight per replica, every policy (75%% of 8)"
    )
    p.add_argument("--min-replicas", type=int, default=1, help="replicas.min for every policy")
    p.add_argument("--max-replicas", type=int, default=64, help="replicas.max for every policy")
    p.add_argument("--ttft-slo", type=float, default=2.0, help="SLO: TTFT at most this (s)")
    p.add_argument(
        "--warmup", type=float, default=900.0,
        help="replay the trace's last N s before it, unscored, so metrics have history",
    )  # fmt: skip
    p.add_argument("--oracle-bucket", type=float, default=60.0, help="oracle's decision period")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = args.trace or default_trace_path()
    try:
        trace = load_trace(path, max_context=args.max_context)
    except TraceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    traces = [trace]
    if not args.no_variants:
        traces += [rotate(trace, 0.5), scale_rate(trace, 2), scale_rate(trace, 0.5)]
    reports = [run_trace(t, args) for t in traces]
    stress = []
    if not args.no_variants:
        # A stress case, not a goal: no policy whose replicas take --startup-seconds to start can
        # serve a sudden doubling within a 2 s TTFT (the oracle starts replicas instantly).
        stress = [run_trace(surge(trace, trace.duration * 0.6), args)]
    out = {
        "trace_notes": list(trace.notes),
        "model": {k: v for k, v in vars(args).items() if k not in ("json", "trace")},
        "slo": f"TTFT <= {args.ttft_slo}s",
        "runs": reports,
        "stress": stress,
        "all_goals_met": all(all(r["goals"].values()) for r in reports),
        "seconds": 0.0,
    }
    out["seconds"] = round(time.perf_counter() - began, 1)
    if args.json:
        print(json.dumps(out))
        return 0
    print("trace: " + "; ".join(trace.notes))
    print(
        f"SLO: TTFT <= {args.ttft_slo}s; replica-hours billed from start-up to drain over the "
        f"trace; target {args.target:g} in-flight per replica for every policy"
    )
    for report in reports:
        _print(report)
    for report in stress:
        print(
            "\nstress case (goals not expected: replicas take "
            f"{args.startup_seconds:g}s to start, the oracle none):",
            end="",
        )
        _print(report)
    verdict = "all goals met" if out["all_goals_met"] else "SOME GOALS MISSED (see above)"
    print(f"\n{verdict} on the trace and its variants; {out['seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
