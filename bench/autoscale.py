"""Benchmark: Drover's autoscaler (target and SLO mode) against HPA, a KubeAI-style moving
average, static provisioning and the oracle, on the conversation trace and its bursty variants.

Replays an LLM request trace (Azure format) through the replica model of bench/_sim.py, driving
Drover's real `drover.policy.autoscale.decide_replicas` (its status is written to JSON and read
back at every decision, as the operator does through the API server) twice: `drover` with the
spec defaults at --target in-flight per replica, and `drover-slo` given only the SLO
(`slo: {ttftSeconds: --ttft-slo, attainment: --attainment}`; it reads what the handler reads:
the peak short-window in-flight total over its planning span and the TTFT attainment). HPA's
defaults (`hpa@T`) and a KubeAI-style 10-minute moving average (`kubeai@T`) run at every
--baseline-targets T. Every policy reads the same in-flight total (queued + served, scraped every
--scrape-seconds, --metrics-delay old). The oracle knows the future and starts replicas
instantly: per --oracle-bucket it has just enough slots for every request in flight (its cost is
that schedule); static-peak holds the oracle's peak all along.

For each run it prints SLO attainment (share of requests whose TTFT meets --ttft-slo; `*` marks
those meeting --attainment), replica-hours (and their ratio to the oracle's), scale events, TTFT
p99 and peak replicas, and issue #15's goals for SLO mode: it meets the attainment wherever the
oracle does; it is the cheapest of the policies that meet it (the oracle aside); no baseline at
any target is at least as good on SLO (within 0.05 points) and cheaper.

Runs: the trace, rotated by half, rate x2, rate x0.5 (#7), and the bursty variants of
bench/_trace.py (#15): burst injection, idle gaps, both, and two seeded MMPP traces; then a
stress case (a sudden 5-minute doubling) where no policy that waits --startup-seconds for a
replica can be expected to meet the SLO. The trace's last --warmup seconds are replayed first,
unscored, so metrics and replica counts start settled.

    python bench/autoscale.py [--trace CSV] [--json] [--no-variants] [--seed N] [see -h]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

# Run from a checkout without an installed package too (the venv has it installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from _policies import DroverPolicy, HpaPolicy, KubeAiPolicy, SchedulePolicy
from _sim import MetricsModel, ReplicaModel, Result, concurrency_schedule, simulate
from _trace import (
    Request,
    Trace,
    TraceError,
    burstiness,
    bursty,
    default_trace_path,
    idle_gaps,
    inject_bursts,
    load_trace,
    mmpp,
    rotate,
    scale_rate,
    surge,
)
from drover.api.autoscaling import AutoscalingSpec

# SLO attainments this close (0.05 percentage points) count as equal.
SLO_TIE = 0.0005


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
    slo = {"ttftSeconds": args.ttft_slo, "attainment": args.attainment}
    policies: list[Any] = [
        DroverPolicy(AutoscalingSpec(target=args.target), bounds, args.sync_seconds,
                     args.max_concurrency),
        DroverPolicy(AutoscalingSpec.model_validate({"slo": slo}), bounds, args.sync_seconds,
                     args.max_concurrency, name="drover-slo"),
        *(cls(t, bounds) for cls in (HpaPolicy, KubeAiPolicy) for t in args.baseline_targets),
        SchedulePolicy("static-peak", horizon, [max(schedule)]),
    ]  # fmt: skip
    results: list[Result] = []
    for pol in policies:
        initial = max(schedule) if pol.name == "static-peak" else max(warm)
        results.append(
            simulate(requests, pol, model, metrics, initial, args.ttft_slo, horizon, start)
        )
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
    return {
        "trace": trace.source,
        "requests": len(trace.requests),
        "burstiness": burstiness(trace),
        "policies": rows,
        "goals": goals_of(rows, args.attainment),
    }


def goals_of(rows: dict[str, dict[str, Any]], goal: float) -> dict[str, bool | None]:
    """Issue #15's goals for SLO mode on one trace (None: does not apply, the oracle misses).

    Meeting the SLO means an attainment >= `goal`; the oracle is no competitor (it knows the
    future and starts replicas instantly), so it only says whether the goal is reachable."""
    slo = rows["drover-slo"]
    meets = {n: r for n, r in rows.items() if n != "oracle" and r["slo_attainment"] >= goal}
    reachable = rows["oracle"]["slo_attainment"] >= goal
    cheapest = min((r["replica_hours"] for r in meets.values()), default=None)
    dominated_by = [
        n
        for n, r in rows.items()
        if n not in ("oracle", "drover-slo", "drover")
        and r["slo_attainment"] >= slo["slo_attainment"] - SLO_TIE
        and r["replica_hours"] < slo["replica_hours"]
    ]
    return {
        "slo_mode_meets_attainment": slo["slo_attainment"] >= goal if reachable else None,
        "slo_mode_cheapest_that_meets": (
            slo["slo_attainment"] >= goal and slo["replica_hours"] <= cheapest
            if reachable and cheapest is not None
            else None
        ),
        "no_baseline_better_on_both": not dominated_by,
    }


def _print(report: dict[str, Any], goal: float) -> None:
    b = report["burstiness"]
    print(
        f"\n{report['trace']} ({report['requests']} requests; {b['rate']} req/s, per-minute "
        f"peak/median {b['peak_median']}, {b['idle_minutes']} idle minutes, "
        f"max {b['max_10s']} in 10 s)"
    )
    print(
        f"  {'policy':<14}{'SLO met':>9}{'replica-h':>11}{'x oracle':>10}{'events':>8}"
        f"{'TTFT p99':>10}{'peak':>6}"
    )
    for name, r in report["policies"].items():
        mark = "*" if r["slo_attainment"] >= goal and name != "oracle" else " "
        print(
            f"  {name:<14}{r['slo_attainment']:>8.2%}{mark}{r['replica_hours']:>11.2f}"
            f"{r['vs_oracle']:>10.2f}{r['scale_events']:>8}{r['ttft_p99_s']:>9.2f}s"
            f"{r['peak_replicas']:>6}"
        )
    shown = {True: "met", False: "MISSED", None: "n/a (the oracle misses it too)"}
    print("  goals: " + "; ".join(f"{g} {shown[v]}" for g, v in report["goals"].items()))


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
        "--attainment", type=float, default=0.99, help="SLO: share of requests that must meet it"
    )
    p.add_argument(
        "--baseline-targets", type=float, nargs="+", default=[2.5, 4.0, 5.0, 6.0],
        help="in-flight per replica for HPA and the KubeAI-style average, one run each",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the bursty variants")
    p.add_argument(
        "--warmup", type=float, default=900.0,
        help="replay the trace's last N s before it, unscored, so metrics have history",
    )  # fmt: skip
    p.add_argument("--oracle-bucket", type=float, default=60.0, help="oracle's decision period")
    return p.parse_args(argv)


def variants(trace: Trace, seed: int) -> list[Trace]:
    """The trace, its reshaped copies (#7) and its bursty variants (#15), seeded."""
    return [
        trace,
        rotate(trace, 0.5),
        scale_rate(trace, 2),
        scale_rate(trace, 0.5),
        inject_bursts(trace, seed),
        idle_gaps(trace, seed),
        bursty(trace, seed),
        mmpp(trace, seed),
        mmpp(trace, seed + 1),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = args.trace or default_trace_path()
    try:
        trace = load_trace(path, max_context=args.max_context)
    except TraceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    traces = [trace] if args.no_variants else variants(trace, args.seed)
    reports = [run_trace(t, args) for t in traces]
    stress = []
    if not args.no_variants:
        # A stress case, not a goal: no policy whose replicas take --startup-seconds to start can
        # serve a sudden doubling within a 2 s TTFT (the oracle starts replicas instantly).
        stress = [run_trace(surge(trace, trace.duration * 0.6), args)]
    out = {
        "trace_notes": list(trace.notes),
        "model": {k: v for k, v in vars(args).items() if k not in ("json", "trace")},
        "slo": f"TTFT <= {args.ttft_slo}s for {args.attainment:.0%} of requests",
        "runs": reports,
        "stress": stress,
        "all_goals_met": all(v is not False for r in reports for v in r["goals"].values()),
        "seconds": 0.0,
    }
    out["seconds"] = round(time.perf_counter() - began, 1)
    if args.json:
        print(json.dumps(out))
        return 0
    print("trace: " + "; ".join(trace.notes))
    print(
        f"SLO: TTFT <= {args.ttft_slo}s for {args.attainment:.0%} of requests (* meets it); "
        f"replica-hours billed from start-up to drain; drover at target {args.target:g}, "
        f"drover-slo given only the SLO, baselines at the targets in their names"
    )
    for report in reports:
        _print(report, args.attainment)
    for report in stress:
        print(
            "\nstress case (goals not expected: replicas take "
            f"{args.startup_seconds:g}s to start, the oracle none):",
            end="",
        )
        _print(report, args.attainment)
    verdict = "all goals met" if out["all_goals_met"] else "SOME GOALS MISSED (see above)"
    print(f"\n{verdict} on the trace and its variants; {out['seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
