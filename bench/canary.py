"""Benchmark: Drover's sequential canary analysis against fixed-window thresholds (Drover's
previous analysis, Flagger's and Argo Rollouts' typical settings), on every workload in one run.

Workloads: the conversation trace time-compressed by each of --speeds (10: ~55 req/s, 3: ~17,
1: ~5.5, the sparse case), and its bursty variants from bench/_trace.py (`bursty`: idle gaps
plus 4x bursts; `mmpp`: a Markov-modulated Poisson process with the trace's request lengths)
at each of --bursty-speeds. Each is replayed (cycled as needed) through a stable and a canary
version behind a smooth weighted router (latency from the replica model of bench/_sim.py with
noise; --base-error-rate of requests fail on any version; every answer streamed), and drives
Drover's real `drover.policy.rollout.next_rollout` every --tick seconds (the rollout status
round-trips through JSON at every decision, as the operator stores it in the API server). The
analysis sees what Prometheus would hold: counts and the router's histogram buckets per version;
Drover's warm-up also times its prompts' first tokens and token gaps on both versions, as the
operator does (`drover.k8s.serving.warm_up`).

Policies, as rollout specs on the same state machine and metrics (errorRate <= 1%, latency,
TTFT and inter-token p95 against 1.5 x stable): `drover`, its defaults judged by the sequential
test; `drover-fixed`, the same spec judged window by window against the thresholds with
failureLimit 1 (Drover before #15); `flagger` (interval 60 s, stepWeight 10 to maxWeight 50,
threshold 5, no warm-up, no sample gate) and `argo-rollouts` (setWeight 10, 20, ... 90 with 60 s
pauses, failureLimit 4), both judged window by window.

Goals (#15), for Drover on every workload: no good version rolled back; versions with >= 5%
errors or >= 1.5x latency rolled back within 2 analysis intervals of their first traffic with
<= 1% of the rollout's requests on them. Good versions' promotion time is reported, not a goal
(sparse traffic holds a step until the evidence decides). Each figure is over --runs start
points of the workload.

    python bench/canary.py [--trace CSV] [--json] [--speeds 10,3,1] [--bursty-speeds 3] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from _canary_sim import VERSIONS, Run, Version, replay
from _trace import Trace, TraceError, burstiness, bursty, default_trace_path, load_trace, mmpp
from drover.api.rollout import Analysis, RolloutSpec, RolloutStep, Warmup

SEQUENTIAL = {"drover"}  # the other policies judge each window against its thresholds


@dataclass(frozen=True)
class Workload:
    name: str
    trace: Trace
    speed: float


def policies(args: argparse.Namespace) -> dict[str, RolloutSpec]:
    typical = Analysis(interval_seconds=60, failure_limit=4, min_requests=1)
    drover = RolloutSpec()
    if args.steps:
        steps = [tuple(map(int, s.split(":"))) for s in args.steps.split(",")]
        drover.steps = [RolloutStep(weight=w, pause_seconds=p) for w, p in steps]
    for field in ("interval_seconds", "failure_limit", "min_requests"):
        if getattr(args, field) is not None:
            setattr(drover.analysis, field, getattr(args, field))
    if args.warmup_requests is not None:
        drover.warmup.requests = args.warmup_requests
    RolloutSpec.model_validate(drover.model_dump())  # the overrides obey the API's rules
    fixed = drover.model_copy(deep=True)
    fixed.analysis.failure_limit = 1
    return {
        "drover": drover,
        "drover-fixed": fixed,
        "flagger": RolloutSpec(
            steps=[RolloutStep(weight=w, pause_seconds=60) for w in range(10, 51, 10)],
            warmup=Warmup(requests=0),
            analysis=typical,
        ),
        "argo-rollouts": RolloutSpec(
            steps=[RolloutStep(weight=w, pause_seconds=60) for w in range(10, 91, 10)],
            warmup=Warmup(requests=0),
            analysis=typical,
        ),
    }


def summarise(version: Version, runs: list[dict[str, Any]], interval: int) -> dict[str, Any]:
    rolled_back = sum(r["outcome"] == "RolledBack" for r in runs)
    promoted = sum(r["outcome"] == "Promoted" for r in runs)
    promotions = [r["seconds_from_ready"] for r in runs if r["outcome"] == "Promoted"]
    row: dict[str, Any] = {
        "version": version.name,
        "good": version.good,
        "runs": len(runs),
        "promoted": promoted,
        "rolled_back": rolled_back,
        "held": len(runs) - promoted - rolled_back,
        "median_seconds_to_promote": statistics.median(promotions) if promotions else None,
        "median_seconds_from_ready": statistics.median(r["seconds_from_ready"] for r in runs),
        "max_seconds_from_ready": max(r["seconds_from_ready"] for r in runs),
        "max_intervals_from_traffic": max(r["intervals_from_traffic"] for r in runs),
        "max_canary_share": max(r["canary_share"] for r in runs),
        "canary_requests": sum(r["canary_requests"] for r in runs),
        "failed_requests": sum(r["failed_requests"] for r in runs),
        "interval_seconds": interval,
    }
    if version.good:
        row["goal_met"] = rolled_back == 0
    else:
        row["goal_met"] = (
            rolled_back == len(runs)
            and row["max_intervals_from_traffic"] <= 2
            and row["max_canary_share"] <= 0.01
        )
    return row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trace", default=None, help="CSV: TIMESTAMP,ContextTokens,GeneratedTokens")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--speeds",
        default="10,3,1",
        help="time compressions of the trace (10: ~55 req/s, 3: ~17, 1: ~5.5 on the conv trace)",
    )
    p.add_argument(
        "--bursty-speeds",
        default="3",
        help="time compressions of the bursty variants (bursty, mmpp); empty: none",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the bursty variants")
    p.add_argument("--runs", type=int, default=5, help="start points of the workload per cell")
    p.add_argument("--tick", type=float, default=5.0, help="the operator's decision period (s)")
    p.add_argument(
        "--base-error-rate",
        type=float,
        default=0.002,
        help="share of requests failing on any version (timeouts, client aborts)",
    )
    p.add_argument("--warmup-requests", type=int, help="override Drover's warmup.requests")
    p.add_argument("--steps", help="override Drover's steps, e.g. 1:60,10:60,50:60 (weight:pause)")
    p.add_argument("--interval-seconds", type=int, help="override Drover's analysis interval")
    p.add_argument("--failure-limit", type=int, help="override Drover's failureLimit")
    p.add_argument("--min-requests", type=int, help="override Drover's minRequests")
    return p.parse_args(argv)


def workloads(trace: Trace, args: argparse.Namespace) -> list[Workload]:
    speeds = [float(x) for x in args.speeds.split(",") if x.strip()]
    bursty_speeds = [float(x) for x in args.bursty_speeds.split(",") if x.strip()]
    out = [Workload(f"conv x{s:g}", trace, s) for s in speeds]
    variants = (("bursty", bursty(trace, args.seed)), ("mmpp", mmpp(trace, args.seed)))
    for name, variant in variants:
        out += [Workload(f"{name} x{s:g}", variant, s) for s in bursty_speeds]
    return out


def run_workload(load: Workload, args: argparse.Namespace) -> dict[str, Any]:
    """Every policy on every version on one workload."""
    replays = [replay(load.trace, load.speed, k / args.runs) for k in range(args.runs)]
    table: list[dict[str, Any]] = []
    for name, spec in policies(args).items():
        for v_index, version in enumerate(VERSIONS):
            runs = [
                Run(
                    spec, version, arrivals, args, 1000 * v_index + k, sequential=name in SEQUENTIAL
                ).run()
                for k, arrivals in enumerate(replays)
            ]
            row = summarise(version, runs, spec.analysis.interval_seconds)
            table.append({"policy": name, **row})
    shape = burstiness(load.trace)
    return {
        "workload": load.name,
        "speed": load.speed,
        "mean_requests_per_second": round(shape["rate"] * load.speed, 1),
        "peak_to_median_per_minute": shape["peak_median"],
        "idle_minutes": shape["idle_minutes"],
        "rows": table,
        "ratios_vs_flagger": _ratios(table),
        "drover_goals_met": all(r["goal_met"] for r in table if r["policy"] == "drover"),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        trace = load_trace(args.trace or default_trace_path())
        loads = workloads(trace, args)
    except TraceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError:
        print(
            f"error: --speeds {args.speeds!r} / --bursty-speeds {args.bursty_speeds!r}: give "
            "numbers, e.g. 10,3,1",
            file=sys.stderr,
        )
        return 2
    try:
        policies(args)
    except (ValueError, ValidationError) as exc:  # a bad --steps/--interval-seconds/... override
        print(f"error: the Drover overrides are not a valid rollout spec: {exc}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    reports = [run_workload(load, args) for load in loads]
    out = {
        "trace_notes": list(trace.notes),
        "runs_per_cell": args.runs,
        "workloads": reports,
        "drover_goals_met": {r["workload"]: r["drover_goals_met"] for r in reports},
        "seconds": round(time.perf_counter() - began, 1),
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print("trace: " + "; ".join(trace.notes))
    for report in reports:
        _print(report)
    _print_goals(reports)
    print(f"\n{out['seconds']}s")
    return 0


def _ratios(table: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Drover's detection time and bad-version share over Flagger's, per bad version."""
    by = {(r["policy"], r["version"]): r for r in table}
    out: dict[str, dict[str, float | None]] = {}
    for version in VERSIONS:
        if version.good:
            continue
        d, f = by[("drover", version.name)], by[("flagger", version.name)]
        out[version.name] = {
            "seconds": _ratio(d["max_seconds_from_ready"], f["max_seconds_from_ready"]),
            "share": _ratio(d["max_canary_share"], f["max_canary_share"]),
        }
    return out


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _print(out: dict[str, Any]) -> None:
    print(
        f"\n== {out['workload']}: {out['mean_requests_per_second']} req/s on average, "
        f"per-minute peak/median {out['peak_to_median_per_minute']}, "
        f"{out['idle_minutes']} idle minutes; canary ready 20 s after deploy\n"
        "P/R/H: promoted, rolled back, held at the horizon (30 min); promote s: median from "
        "ready; int.: analysis intervals\nfrom the first canary request to the rollback (max); "
        "bad %: share of the rollout's requests on the bad version (max)"
    )
    head = (
        f"{'policy':<14}{'version':<19}{'P/R/H':<10}{'promote s':>10}{'rollback s':>11}"
        f"{'int.':>7}{'bad %':>8}{'failed':>8}{'goal':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in out["rows"]:
        result = f"{r['promoted']}/{r['rolled_back']}/{r['held']}"
        promote = r["median_seconds_to_promote"]
        share = "-" if r["good"] else f"{100 * r['max_canary_share']:.2f}"
        back = "-" if r["good"] else f"{r['max_seconds_from_ready']:.0f}"
        ints = "-" if r["good"] else f"{r['max_intervals_from_traffic']:.2f}"
        print(
            f"{r['policy']:<14}{r['version']:<19}{result:<10}"
            f"{'-' if promote is None else f'{promote:.0f}':>10}{back:>11}"
            f"{ints:>7}{share:>8}{r['failed_requests']:>8}"
            f"{'yes' if r['goal_met'] else 'NO':>6}"
        )
    print("Drover / Flagger (max time to rollback, max share of requests on the bad version):")
    for name, ratio in out["ratios_vs_flagger"].items():
        print(f"  {name:<18} time x{ratio['seconds']}  share x{ratio['share']}")


def _print_goals(reports: list[dict[str, Any]]) -> None:
    print("\n== #15 goals for Drover, per workload")
    for report in reports:
        rows = [r for r in report["rows"] if r["policy"] == "drover"]
        missed = [r["version"] for r in rows if not r["goal_met"]]
        verdict = "every goal met" if not missed else "missed: " + ", ".join(missed)
        print(f"  {report['workload']:<12}{report['mean_requests_per_second']:>7} req/s  {verdict}")


if __name__ == "__main__":
    sys.exit(main())
