"""Operator configuration loader: the mounted YAML plus `DROVER_*` environment overrides.

`load_config` reads the YAML file the chart mounts (`DROVER_CONFIG`, default
/etc/drover/config.yaml), applies `DROVER_*` environment overrides, and validates the result
(`drover.config.OperatorConfig`); any mistake is a `ConfigError` whose message names the key and
the fix. Called once by `drover run`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from drover.config import ConfigError, OperatorConfig

DEFAULT_CONFIG_PATH = "/etc/drover/config.yaml"
CONFIG_PATH_ENV = "DROVER_CONFIG"

# Environment variable -> (key path in the config, how to read the string).
ENV_OVERRIDES: dict[str, tuple[tuple[str, ...], str]] = {
    "DROVER_NAMESPACES": (("watchNamespaces",), "list"),
    "DROVER_PROMETHEUS_URL": (("prometheus", "url"), "str"),
    "DROVER_PROMETHEUS_TIMEOUT_SECONDS": (("prometheus", "timeoutSeconds"), "str"),
    "DROVER_IMAGE_WORKERS": (("images", "workers"), "str"),
    "DROVER_IMAGE_WORKERS_CPU": (("images", "workersCpu"), "str"),
    "DROVER_IMAGE_PULL_POLICY": (("images", "pullPolicy"), "str"),
    "DROVER_SERVING_URL_TEMPLATE": (("serving", "urlTemplate"), "str"),
    "DROVER_SERVING_REPLICA_CPUS": (("serving", "replicaCpus"), "str"),
    "DROVER_HEALTH_PORT": (("operator", "healthPort"), "str"),
    "DROVER_METRICS_PORT": (("operator", "metricsPort"), "str"),
    "DROVER_PEERING_NAME": (("operator", "peeringName"), "str"),
    "DROVER_PEERING_PRIORITY": (("operator", "peeringPriority"), "str"),
    "DROVER_READ_SECRETS": (("operator", "readSecrets"), "str"),
    "DROVER_DEPENDENCY_RETRY_SECONDS": (("reconcile", "dependencyRetrySeconds"), "str"),
    "DROVER_PROGRESS_POLL_SECONDS": (("reconcile", "progressPollSeconds"), "str"),
    "DROVER_AUTOSCALE_INTERVAL_SECONDS": (("reconcile", "autoscaleIntervalSeconds"), "str"),
}


def load_config(path: str | None, environ: Mapping[str, str]) -> OperatorConfig:
    """Read, override and validate the configuration; raise `ConfigError` on any mistake.

    `path` None means `$DROVER_CONFIG`, else /etc/drover/config.yaml. A missing file at the
    default path gives the defaults; a path someone named explicitly must exist.
    """
    explicit = path is not None or bool(environ.get(CONFIG_PATH_ENV))
    path = path or environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH
    raw = _read_file(path, explicit)
    overridden = _apply_env(raw, environ)
    try:
        return OperatorConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path, overridden)) from None


def _read_file(path: str, explicit: bool) -> dict[str, Any]:
    if not os.path.exists(path):
        if explicit:
            raise ConfigError(
                f"operator config file {path} does not exist; fix {CONFIG_PATH_ENV} (or the "
                "path given) to point at the mounted config.yaml, or unset it to use defaults"
            )
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(
            f"operator config {path} is not valid YAML{line}: {getattr(exc, 'problem', exc)}; "
            "fix the chart values under `config`"
        ) from None
    except OSError as exc:
        raise ConfigError(f"operator config {path} cannot be read: {exc.strerror}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"operator config {path} must be a YAML mapping of keys such as prometheus, "
            f"acceleratorClasses; found a {type(data).__name__}"
        )
    return data


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Write set `DROVER_*` variables into `raw`; return key path -> variable for messages."""
    used: dict[tuple[str, ...], str] = {}
    for var, (keys, kind) in ENV_OVERRIDES.items():
        if var not in environ:
            continue
        text = environ[var].strip()
        value: Any = text
        if kind == "list":
            value = [] if text in ("", "*") else [p.strip() for p in text.split(",") if p.strip()]
        target = raw
        for key in keys[:-1]:
            child = target.get(key)
            if not isinstance(child, dict):
                child = {}
                target[key] = child
            target = child
        target[keys[-1]] = value
        used[keys] = var
    return used


def _explain(exc: ValidationError, path: str, overridden: Mapping[tuple[str, ...], str]) -> str:
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "is not a known key; remove it or fix its spelling (keys are camelCase)"
        source = next((var for keys, var in overridden.items() if loc[: len(keys)] == keys), None)
        origin = f"environment variable {source}" if source else f"{path} (the chart values)"
        given = error.get("input")
        shown = "" if isinstance(given, dict | list) else f" (got {given!r})"
        problems.append(f"{key}: {message}{shown}; fix it in {origin}")
    return "invalid operator configuration:\n  " + "\n  ".join(problems)
