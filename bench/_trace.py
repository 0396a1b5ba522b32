"""Benchmarks: load an LLM request trace in the Azure format, and derive variants of it.

Shared by bench/autoscale.py and the canary benchmark. The format is the Azure LLM inference
trace 2023 (Splitwise, ISCA 2024): a CSV with a header and the columns TIMESTAMP,
ContextTokens, GeneratedTokens; any CSV with those columns works.

Absurd rows are handled, and counted in `Trace.notes`: a row with an unparsable timestamp or a
non-positive token count is dropped; a context longer than `max_context` (default 8192, the
context window a served model would have; the conversation trace has one 14050-token prompt) is
clipped to it, as a server would truncate or reject it; generated tokens above
`max_generated` (default 4096) are clipped the same way. Rows are sorted by time.

Variants: `rotate`, `scale_rate` and `surge` reshape the trace's own requests; `inject_bursts`,
`idle_gaps` and `bursty` make it burstier; `mmpp` draws new arrivals from a Markov-modulated
Poisson process with the trace's own request lengths. Every random variant takes a seed and is
deterministic. `burstiness` measures what a variant did (the figures #15 reports for traces).

Measured with seed 0 on the Azure 2023 conversation trace (5.5 requests/s, 3502 s):

| variant | req/s | per-minute peak/median | idle minutes | max in 10 s |
|---|---|---|---|---|
| the trace | 5.53 | 1.56 | 0 | 98 |
| `inject_bursts` (6 bursts of +4x the mean rate for 10 s) | 5.91 | 2.08 | 0 | 302 |
| `idle_gaps` (4 gaps of 150 s) | 4.60 | 1.68 | 5 | 98 |
| `bursty` (both) | 4.92 | 2.20 | 4 | 230 |
| `mmpp` (BURSTY_MMPP at the trace's mean rate), seed 0 | 6.58 | 5.82 | 7 | 281 |
| `mmpp`, seed 1 | 5.00 | 6.14 | 16 | 285 |

For comparison, #15's second real Azure trace: per-minute peak/median 5.6, whole idle minutes,
over 300 requests inside 10 s.
"""

from __future__ import annotations

import csv
import math
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

__all__ = [
    "BURSTY_MMPP",
    "DEFAULT_TRACE",
    "MmppState",
    "Request",
    "Trace",
    "TraceError",
    "burstiness",
    "bursty",
    "default_trace_path",
    "idle_gaps",
    "inject_bursts",
    "load_trace",
    "mmpp",
    "rotate",
    "scale_rate",
    "surge",
]

DEFAULT_TRACE = "azure-llm-inference-trace-2023-conv.csv"
_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


class TraceError(Exception):
    """A trace that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Request:
    """One request: seconds since the trace's first request, prompt and output lengths."""

    arrival: float
    context_tokens: int
    generated_tokens: int


@dataclass(frozen=True)
class Trace:
    requests: tuple[Request, ...]
    source: str
    notes: tuple[str, ...] = field(default=())

    @property
    def duration(self) -> float:
        return self.requests[-1].arrival if self.requests else 0.0


def default_trace_path() -> Path:
    """`../shared/data/<conv trace>` relative to the repository (bench/ is one level down)."""
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data" / DEFAULT_TRACE


def _parse_time(text: str) -> float:
    # The Azure trace writes 7 fractional digits, which datetime.fromisoformat does not accept.
    head, _, frac = text.strip().partition(".")
    seconds = datetime.fromisoformat(head).timestamp()
    return seconds + (float("0." + frac) if frac else 0.0)


def load_trace(path: Path | str, max_context: int = 8192, max_generated: int = 4096) -> Trace:
    """Read a trace; raise TraceError with a clear message when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise TraceError(
            f"trace {path} not found: pass --trace PATH to a CSV with the columns "
            f"{', '.join(_COLUMNS)} (the default is ../shared/data/{DEFAULT_TRACE} beside the repo)"
        )
    rows: list[tuple[float, int, int]] = []
    dropped = clipped_ctx = clipped_gen = 0
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise TraceError(
                f"trace {path} lacks the column(s) {', '.join(missing)}: the header must be "
                f"{','.join(_COLUMNS)}"
            )
        for row in reader:
            try:
                t = _parse_time(row["TIMESTAMP"])
                ctx, gen = int(row["ContextTokens"]), int(row["GeneratedTokens"])
            except (TypeError, ValueError):
                dropped += 1
                continue
            if ctx <= 0 or gen <= 0:
                dropped += 1
                continue
            if ctx > max_context:
                ctx, clipped_ctx = max_context, clipped_ctx + 1
            if gen > max_generated:
                gen, clipped_gen = max_generated, clipped_gen + 1
            rows.append((t, ctx, gen))
    if not rows:
        raise TraceError(f"trace {path} has no usable rows (dropped {dropped})")
    rows.sort()
    t0 = rows[0][0]
    notes = [
        f"{len(rows)} requests over {rows[-1][0] - t0:.0f}s",
        f"dropped {dropped} unparsable or non-positive rows",
        f"clipped {clipped_ctx} contexts to {max_context} tokens",
        f"clipped {clipped_gen} outputs to {max_generated} tokens",
    ]
    requests = tuple(Request(t - t0, ctx, gen) for t, ctx, gen in rows)
    return Trace(requests, str(path), tuple(notes))


def rotate(trace: Trace, fraction: float) -> Trace:
    """The same requests with time shifted by `fraction` of the duration, wrapping around."""
    span = trace.duration + 1e-3
    shift = span * fraction
    moved = sorted(
        (replace(r, arrival=(r.arrival + shift) % span) for r in trace.requests),
        key=lambda r: r.arrival,
    )
    return Trace(tuple(moved), f"{trace.source} rotated {fraction:.0%}", trace.notes)


def scale_rate(trace: Trace, factor: float) -> Trace:
    """Rate x`factor`: factor 2 overlays the trace with itself rotated by half (same length);
    a factor below 1 keeps every request whose index falls on the thinned grid."""
    if factor >= 1:
        copies = [trace.requests]
        for k in range(1, round(factor)):
            copies.append(rotate(trace, k / round(factor)).requests)
        merged = sorted((r for c in copies for r in c), key=lambda r: r.arrival)
        return Trace(tuple(merged), f"{trace.source} rate x{round(factor)}", trace.notes)
    kept = [r for i, r in enumerate(trace.requests) if int(i * factor) != int((i - 1) * factor)]
    return Trace(tuple(kept), f"{trace.source} rate x{factor:g}", trace.notes)


def surge(trace: Trace, at: float, length: float = 300.0) -> Trace:
    """Add a sudden surge: the requests of [at - length, at) played again from `at`, so the
    rate roughly doubles for `length` seconds starting at a sharp edge."""
    extra = [
        replace(r, arrival=r.arrival + length)
        for r in trace.requests
        if at - length <= r.arrival < at
    ]
    merged = sorted((*trace.requests, *extra), key=lambda r: r.arrival)
    return Trace(tuple(merged), f"{trace.source} + {length:.0f}s surge at {at:.0f}s", trace.notes)


# --- bursty variants ---------------------------------------------------------------------------


def burstiness(trace: Trace) -> dict[str, float]:
    """What #15 reports of a trace: mean rate (requests/s), per-minute peak/median, whole idle
    minutes (no request at all) and the most requests inside any aligned 10 s."""
    if not trace.requests:
        return {"rate": 0.0, "peak_median": 0.0, "idle_minutes": 0, "max_10s": 0}
    minutes = Counter(int(r.arrival // 60) for r in trace.requests)
    per_minute = [minutes.get(m, 0) for m in range(int(trace.duration // 60) + 1)]
    tens = Counter(int(r.arrival // 10) for r in trace.requests)
    median = statistics.median(per_minute)
    return {
        "rate": round(len(trace.requests) / max(trace.duration, 1e-9), 2),
        "peak_median": round(max(per_minute) / median, 2) if median else math.inf,
        "idle_minutes": sum(1 for n in per_minute if n == 0),
        "max_10s": max(tens.values()),
    }


def _lengths(trace: Trace, rng: random.Random) -> tuple[int, int]:
    """One (context, generated) pair drawn from the trace's own requests."""
    req = trace.requests[rng.randrange(len(trace.requests))]
    return req.context_tokens, req.generated_tokens


def inject_bursts(
    trace: Trace, seed: int = 0, count: int = 6, factor: float = 4.0, span: float = 10.0
) -> Trace:
    """Add `count` bursts at seeded random times (never in the first or last 5%): in each, for
    `span` seconds, extra requests (lengths drawn from the trace) that raise the rate to
    `factor` x the trace's mean rate on top of what the trace already has there.

    The default (6 bursts of 4x for 10 s: ~220 extra requests each, ~270 in 10 s) echoes the
    second Azure trace of #15, which had over 300 requests inside 10 s."""
    rng = random.Random(seed)
    rate = len(trace.requests) / max(trace.duration, 1e-9)
    extra_per_burst = round(rate * span * factor)
    extra: list[Request] = []
    for _ in range(count):
        at = rng.uniform(0.05, 0.95) * trace.duration
        for _ in range(extra_per_burst):
            ctx, gen = _lengths(trace, rng)
            extra.append(Request(at + rng.uniform(0, span), ctx, gen))
    merged = sorted((*trace.requests, *extra), key=lambda r: r.arrival)
    name = f"{trace.source} + {count} bursts {factor:g}x/{span:g}s seed {seed}"
    return Trace(tuple(merged), name, trace.notes)


def idle_gaps(trace: Trace, seed: int = 0, count: int = 4, length: float = 150.0) -> Trace:
    """Drop every request inside `count` seeded gaps of `length` seconds (never overlapping,
    never at the very start or end): whole idle minutes, as the second Azure trace of #15 has,
    after which load returns at once at its former level."""
    rng = random.Random(seed)
    gaps: list[tuple[float, float]] = []
    tries = 0
    while len(gaps) < count and tries < 1000:
        tries += 1
        at = rng.uniform(0.05, 0.95) * trace.duration - length / 2
        if all(at + length <= a or at >= b for a, b in gaps):
            gaps.append((at, at + length))
    kept = tuple(r for r in trace.requests if not any(a <= r.arrival < b for a, b in gaps))
    name = f"{trace.source} + {len(gaps)} idle gaps of {length:g}s seed {seed}"
    return Trace(kept, name, trace.notes)


def bursty(trace: Trace, seed: int = 0) -> Trace:
    """`idle_gaps` then `inject_bursts` with their defaults: lulls and sharp bursts together."""
    out = inject_bursts(idle_gaps(trace, seed), seed)
    return Trace(out.requests, f"{trace.source} bursty (gaps + bursts) seed {seed}", trace.notes)


@dataclass(frozen=True)
class MmppState:
    """One state of a Markov-modulated Poisson process: its rate as a multiple of the mean
    rate asked for, and its mean dwell time (exponential) in seconds."""

    name: str
    rate_multiple: float
    mean_dwell: float


# Three states (the next one drawn uniformly among the others on each change). Calibrated so a
# run reproduces what #15 reports of the second real Azure LLM trace (per-minute peak/median
# 5.6, whole idle minutes, ~300 requests inside 10 s) and what BurstGPT (Wang et al., KDD 2025,
# arXiv:2401.17644) found across 10.31M Azure OpenAI requests over 213 days: arrivals far
# burstier than Poisson (BurstGPT models them with a Gamma distribution rather than an
# exponential one) with concurrency that swings by service and hour. Splitwise (Patel et al.,
# ISCA 2024), the source of the conversation trace, shows the conversation workload as the
# smoothest of its traces, which is why the conversation trace alone under-tests an autoscaler.
BURSTY_MMPP: tuple[MmppState, ...] = (
    MmppState("idle", 0.0, 90.0),
    MmppState("steady", 0.8, 240.0),
    MmppState("burst", 4.5, 45.0),
)


def mmpp(
    lengths: Trace,
    seed: int = 0,
    duration: float | None = None,
    mean_rate: float | None = None,
    states: Sequence[MmppState] = BURSTY_MMPP,
) -> Trace:
    """Arrivals from a Markov-modulated Poisson process over `duration` seconds (default: the
    trace's), with request lengths drawn from `lengths` (a loaded trace).

    `mean_rate` (default: the trace's mean rate) is the rate a state of rate_multiple 1 has;
    the process's long-run mean is that times the dwell-weighted mean multiple (1.05 for
    BURSTY_MMPP), so a run has about the trace's load in bursts and lulls."""
    rng = random.Random(seed)
    horizon = lengths.duration if duration is None else duration
    rate = len(lengths.requests) / max(lengths.duration, 1e-9) if mean_rate is None else mean_rate
    out: list[Request] = []
    t, state = 0.0, 1  # start steady
    while t < horizon:
        st = states[state]
        end = min(t + rng.expovariate(1 / st.mean_dwell), horizon)
        lam = rate * st.rate_multiple
        if lam > 0:
            t += rng.expovariate(lam)
            while t < end:
                ctx, gen = _lengths(lengths, rng)
                out.append(Request(t, ctx, gen))
                t += rng.expovariate(lam)
        t = end
        state = rng.choice([i for i in range(len(states)) if i != state])
    name = f"MMPP {'/'.join(s.name for s in states)} seed {seed} (lengths of {lengths.source})"
    notes = (f"{len(out)} requests over {horizon:.0f}s", *lengths.notes[1:])
    return Trace(tuple(out), name, notes)
