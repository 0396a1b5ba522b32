"""Benchmarks: load an LLM request trace in the Azure format, and derive variants of it.

Shared by bench/autoscale.py and the canary benchmark. The format is the Azure LLM inference
trace 2023 (Splitwise, ISCA 2024): a CSV with a header and the columns TIMESTAMP,
ContextTokens, GeneratedTokens; any CSV with those columns works.

Absurd rows are handled, and counted in `Trace.notes`: a row with an unparsable timestamp or a
non-positive token count is dropped; a context longer than `max_context` (default 8192, the
context window a served model would have; the conversation trace has one 14050-token prompt) is
clipped to it, as a server would truncate or reject it; generated tokens above
`max_generated` (default 4096) are clipped the same way. Rows are sorted by time.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

__all__ = [
    "DEFAULT_TRACE",
    "Request",
    "Trace",
    "TraceError",
    "default_trace_path",
    "load_trace",
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
