"""The worker entrypoint shape: load config, run, report exactly one result, choose the exit code.

Known failures raise `WorkerError(reason, message)`; anything else is reported as reason `Error`
with its message (the traceback goes to stderr for the logs, never into the result).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from drover_workers.common.config import load_config
from drover_workers.common.report import Reporter

C = TypeVar("C", bound=BaseModel)


class WorkerError(Exception):
    """A failure with a CamelCase reason the operator puts into a condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def run_worker(
    config_model: type[C],
    body: Callable[[C, Reporter], dict[str, Any]],
    output_dir_of: Callable[[C], str | None],
    argv: Sequence[str] | None = None,
) -> int:
    config = load_config(config_model, argv)
    reporter = Reporter(output_dir_of(config))
    try:
        result = body(config, reporter)
    except WorkerError as exc:
        reporter.failure(exc.reason, str(exc))
        return 1
    except KeyboardInterrupt:
        reporter.failure("Interrupted", "interrupted")
        return 130
    except Exception as exc:  # the job must always end with a result line
        traceback.print_exc(file=sys.stderr)
        reporter.failure("Error", f"{type(exc).__name__}: {exc}")
        return 1
    reporter.result(result)
    return 0
