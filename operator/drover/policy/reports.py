"""Policy layer: read what a worker reported in its log.

Workers never touch the Kubernetes API; they print `::drover::progress {json}` while they run and
one `::drover::result {json}` at the end. The operator fetches the Ray job's log and these pure
functions turn it into the latest progress and the final result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PROGRESS = "::drover::progress "
RESULT = "::drover::result "


@dataclass(frozen=True)
class WorkerReport:
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    malformed: list[str] = field(default_factory=list)


def parse_worker_log(log: str) -> WorkerReport:
    """The progress so far (records merged, later keys win) and the result record, if any."""
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    malformed: list[str] = []
    for line in log.splitlines():
        text = line.strip()
        for marker in (PROGRESS, RESULT):
            pos = text.find(marker)
            if pos < 0:
                continue
            try:
                value = json.loads(text[pos + len(marker) :])
            except json.JSONDecodeError:
                malformed.append(text[:200])
                break
            if not isinstance(value, dict):
                malformed.append(text[:200])
            elif marker == PROGRESS:
                # Later records refine earlier ones: {"phase": "evaluating"} keeps the step count.
                progress = {**(progress or {}), **value}
            else:
                result = value
            break
    return WorkerReport(progress=progress, result=result, malformed=malformed)
