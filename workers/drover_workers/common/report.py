"""Progress and result reporting: `::drover::progress {json}` / `::drover::result {json}` lines.

The operator reads these lines from the Ray job's logs; the same documents are written as
`progress.json` and `result.json` into the worker's output directory.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

PREFIX = "::drover::"


def emit_line(kind: str, payload: dict[str, Any]) -> None:
    sys.stdout.write(f"{PREFIX}{kind} {json.dumps(payload, sort_keys=True, default=str)}\n")
    sys.stdout.flush()


def parse_lines(text: str) -> list[tuple[str, dict[str, Any]]]:
    """All `::drover::` lines of a log, as (kind, payload); what the operator does with Ray logs."""
    out = []
    for line in text.splitlines():
        if line.startswith(PREFIX):
            kind, _, body = line[len(PREFIX) :].partition(" ")
            out.append((kind, json.loads(body)))
    return out


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


class Reporter:
    """Emits progress (at most one line per `min_interval` seconds unless forced) and results."""

    def __init__(self, output_dir: str | Path | None = None, min_interval: float = 1.0) -> None:
        self.output_dir = Path(output_dir) if output_dir else None
        self.min_interval = min_interval
        self._last = 0.0
        self.result_sent = False
        self.emit = True  # False inside Ray Train workers: files only (the driver relays them)

    def progress(self, force: bool = False, **fields: Any) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        if self.emit:
            emit_line("progress", fields)
        if self.output_dir:
            _write_json_atomic(self.output_dir / "progress.json", fields)

    def result(self, payload: dict[str, Any]) -> None:
        if self.result_sent:
            return
        self.result_sent = True
        if self.output_dir:
            _write_json_atomic(self.output_dir / "result.json", payload)
        emit_line("result", payload)

    def failure(self, reason: str, error: str) -> None:
        self.result({"error": error, "reason": reason})
