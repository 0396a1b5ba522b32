"""Worker configuration: one pydantic base (camelCase, extra forbidden) and the loader.

Configuration comes from `--config PATH` (JSON or YAML) or the `DROVER_WORKER_CONFIG` env var
(JSON, or `@PATH`). A bad document exits 2 with a `::drover::result` error naming the field.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from drover_workers.common.report import emit_line

ENV_VAR = "DROVER_WORKER_CONFIG"
EXIT_BAD_CONFIG = 2

C = TypeVar("C", bound=BaseModel)


class WorkerModel(BaseModel):
    """Base of every worker config section: camelCase keys, unknown keys refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", protected_namespaces=()
    )


class ConfigError(Exception):
    """The configuration document is missing, unreadable or invalid; `str()` says what to fix."""


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: `field.path: message`, with the camelCase names the user wrote."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling"
        elif err["type"] == "missing":
            msg = "field required"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def read_document(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The raw configuration mapping from `--config PATH` or `$DROVER_WORKER_CONFIG`."""
    parser = argparse.ArgumentParser(add_help=True)
    parser.add_argument("--config", help="configuration file (JSON or YAML)")
    args, _ = parser.parse_known_args(argv)
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise ConfigError(f"--config {path}: no such file")
        text, origin = path.read_text(encoding="utf-8"), str(path)
    elif os.environ.get(ENV_VAR):
        text, origin = os.environ[ENV_VAR], f"${ENV_VAR}"
        if text.startswith("@"):
            text, origin = Path(text[1:]).read_text(encoding="utf-8"), text[1:]
    else:
        raise ConfigError(
            f"no configuration: pass --config PATH or set {ENV_VAR} to a JSON document"
        )
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid JSON/YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: the configuration must be a mapping, got {type(data).__name__}"
        )
    return data


def parse_config(model: type[C], data: dict[str, Any]) -> C:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {format_validation_error(exc)}") from None


def load_config(model: type[C], argv: Sequence[str] | None = None) -> C:
    """Load and validate; on failure print the error result line and exit 2 (no traceback)."""
    try:
        return parse_config(model, read_document(argv))
    except (ConfigError, OSError) as exc:
        emit_line("result", {"error": str(exc), "reason": "InvalidConfig"})
        print(f"drover worker: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_CONFIG) from None


def dump_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))
