"""Benchmark: Drover's canary rollout defaults against Flagger's and Argo Rollouts' typical ones.

Replays an LLM request trace (Azure format, time-compressed by each of --speeds, cycled as
needed) through a stable and a canary version behind a smooth weighted router (latency from the
replica model of bench/_sim.py with noise; --base-error-rate of requests fail on any version),
and drives Drover's real `drover.policy.rollout.next_rollout` and `drover.policy.analysis` every
--tick seconds (the rollout status round-trips through JSON at every decision, as the operator
stores it in the API server). Each version is good, or bad with an injected fault. The same
state machine runs three policies, written as rollout specs: Drover's defaults; Flagger's typical
canary (interval 60 s, stepWeight 10 to maxWeight 50, threshold 5, no warm-up, no sample gate);
Argo Rollouts' typical steps (setWeight 10, 20, ... 90 with 60 s pauses, background analysis
every 60 s, failureLimit 4, i.e. rolled back at the 5th failure). All check the same metrics
(errorRate <= 1%, p95 latency and TTFT <= 1.5 x stable), so only the schedule differs. Drover's
warm-up requests take the shapes of recent traffic, capped at warmup.maxTokens.

For bad versions it reports the time from the canary being ready to the rollback (seconds and
analysis intervals) and the share of the requests served during the rollout that hit the bad
version; for good ones, whether they were promoted, how long it took and how many requests
failed. Each figure is over --runs start points of the trace. Goal: bad versions rolled back
within 2 analysis intervals with <= 1% of requests on them; good ones promoted with none failed.

    python bench/canary.py [--trace CSV] [--json] [--speeds 10,3] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from pydantic import ValidationError

from _canary_sim import VERSIONS, Run, Version, replay
from _trace import Trace, TraceError, default_trace_path, load_trace
from drover.api.rollout import Analysis, RolloutSpec, RolloutStep, Warmup


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
    return {
        "drover": drover,
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
    row: dict[str, Any] = {
        "version": version.name,
        "good": version.good,
        "runs": len(runs),
        "promoted": promoted,
        "rolled_back": rolled_back,
        "median_seconds_from_ready": statistics.median(r["seconds_from_ready"] for r in runs),
        "max_seconds_from_ready": max(r["seconds_from_ready"] for r in runs),
        "max_intervals_from_traffic": max(r["intervals_from_traffic"] for r in runs),
        "max_canary_share": max(r["canary_share"] for r in runs),
        "canary_requests": sum(r["canary_requests"] for r in runs),
        "failed_requests": sum(r["failed_requests"] for r in runs),
        "interval_seconds": interval,
    }
    if version.good:
        row["goal_met"] = promoted == len(runs) and row["failed_requests"] == 0
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
        default="10,3",
        help="time compressions of the trace, one table each (10: ~55 req/s, 3: ~17 req/s)",
    )
    p.add_argument("--runs", type=int, default=5, help="start points of the trace per cell")
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


def run_speed(trace: Trace, speed: float, args: argparse.Namespace) -> dict[str, Any]:
    """Every policy on every version at one replay speed."""
    replays = [replay(trace, speed, k / args.runs) for k in range(args.runs)]
    table: list[dict[str, Any]] = []
    for name, spec in policies(args).items():
        for v_index, version in enumerate(VERSIONS):
            runs = [
                Run(spec, version, arrivals, args, seed=1000 * v_index + k).run()
                for k, arrivals in enumerate(replays)
            ]
            row = summarise(version, runs, spec.analysis.interval_seconds)
            table.append({"policy": name, **row})
    return {
        "speed": speed,
        "mean_requests_per_second": round(len(trace.requests) / (trace.duration / speed), 1),
        "rows": table,
        "ratios_vs_flagger": _ratios(table),
        "drover_goals_met": all(r["goal_met"] for r in table if r["policy"] == "drover"),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        trace = load_trace(args.trace or default_trace_path())
        speeds = [float(x) for x in args.speeds.split(",")]
    except TraceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError:
        print(f"error: --speeds {args.speeds!r}: give numbers, e.g. 10,3", file=sys.stderr)
        return 2
    try:
        policies(args)
    except (ValueError, ValidationError) as exc:  # a bad --steps/--interval-seconds/... override
        print(f"error: the Drover overrides are not a valid rollout spec: {exc}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    reports = [run_speed(trace, speed, args) for speed in speeds]
    out = {
        "trace_notes": list(trace.notes),
        "runs_per_cell": args.runs,
        "speeds": reports,
        "drover_goals_met": {str(r["speed"]): r["drover_goals_met"] for r in reports},
        "seconds": round(time.perf_counter() - began, 1),
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print("trace: " + "; ".join(trace.notes))
    for report in reports:
        _print(report)
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
        f"\n== trace replayed x{out['speed']:g} ({out['mean_requests_per_second']} req/s on "
        "average); canary ready 20 s after deploy\n"
        "median/max s: from ready to rollback or promotion; int.: analysis intervals from the "
        "first canary request (max);\nbad %: share of the rollout's requests served by the bad "
        "version (max); failed: requests failed by the fault or by routing"
    )
    head = (
        f"{'policy':<14}{'version':<19}{'result':<12}{'median s':>9}{'max s':>7}"
        f"{'int.':>9}{'bad %':>10}{'failed':>8}{'goal':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in out["rows"]:
        result = f"{r['promoted']}P/{r['rolled_back']}R of {r['runs']}"
        share = "-" if r["good"] else f"{100 * r['max_canary_share']:.2f}"
        print(
            f"{r['policy']:<14}{r['version']:<19}{result:<12}"
            f"{r['median_seconds_from_ready']:>9.0f}{r['max_seconds_from_ready']:>7.0f}"
            f"{r['max_intervals_from_traffic']:>9.2f}{share:>10}{r['failed_requests']:>8}"
            f"{'yes' if r['goal_met'] else 'NO':>6}"
        )
    print("\nDrover / Flagger (max time to rollback, max share of requests on the bad version):")
    for name, ratio in out["ratios_vs_flagger"].items():
        print(f"  {name:<18} time x{ratio['seconds']}  share x{ratio['share']}")
    verdict = "Drover meets every goal" if out["drover_goals_met"] else "Drover misses a goal"
    print(f"{verdict} at {out['mean_requests_per_second']} req/s")


if __name__ == "__main__":
    sys.exit(main())
