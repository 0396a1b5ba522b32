"""Serve configuration: the `args` of the Ray Serve application and the router's `user_config`.

The operator writes both into a RayService's `serveConfigV2`; `parse_app_args` and
`parse_router_user_config` validate them and raise `ServeConfigError` naming the field and the fix.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from drover_workers.common.config import WorkerModel, format_validation_error

VERSION_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


class ServeConfigError(ValueError):
    """The Serve application's args or user_config are invalid; `str()` says what to fix."""


class ServiceRef(WorkerModel):
    name: str = Field(min_length=1, description="InferenceService name; the public model id.")
    namespace: str = Field(default="default", min_length=1, description="Its namespace.")


class VersionSpec(WorkerModel):
    name: str = Field(description="Version id, e.g. `v1` or a short digest; names `model-<name>`.")
    model: str = Field(min_length=1, description="FoundationModel name this version serves.")
    model_path: str = Field(min_length=1, description="Directory with the HF-format weights.")
    adapter_path: str | None = Field(default=None, description="LoRA adapter directory (peft).")
    digest: str = Field(default="", description="Content digest of the weights (for status).")
    replicas: int = Field(default=1, ge=1, le=1000, description="Initial replica count.")

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not VERSION_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a valid version name; use 1-40 lowercase letters, digits and "
                "'-' (it becomes the deployment name model-<name>)"
            )
        return value


class RuntimeSpec(WorkerModel):
    max_batch_size: int = Field(default=8, ge=1, le=256, description="Dynamic batch size.")
    batch_wait_timeout_seconds: float = Field(
        default=0.0, ge=0, le=10, description="Idle replica's wait for company before a step."
    )
    max_tokens: int = Field(default=256, ge=1, description="Upper bound of max_tokens.")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    max_queued_requests: int = Field(
        default=64, ge=1, description="Requests per version a router replica holds before 429."
    )
    retry_after_seconds: int = Field(default=1, ge=1, description="Retry-After on 429/503.")
    max_surge_percent: int = Field(
        default=100,
        ge=0,
        le=100,
        description="Extra replicas during a rolling restart (an args change, e.g. a new "
        "version): with > 0 old replicas serve until their replacements are ready.",
    )


class RetrievalSpec(WorkerModel):
    index_path: str = Field(min_length=1, description="VectorIndex version directory.")
    embedder_path: str = Field(min_length=1, description="Embedding model directory.")
    top_k: int = Field(default=4, ge=1, le=50)


class AuthSpec(WorkerModel):
    api_keys_file: str | None = Field(default=None, description="File with one API key a line.")
    api_keys_env: str | None = Field(default=None, description="Env var with comma-separated keys.")

    @model_validator(mode="after")
    def _exactly_one(self) -> AuthSpec:
        if (self.api_keys_file is None) == (self.api_keys_env is None):
            raise ValueError("set exactly one of apiKeysFile or apiKeysEnv")
        return self


class FaultSpec(WorkerModel):
    """Deliberate faults for tests and the canary benchmark; all zero means off."""

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="Share of requests failed.")
    added_latency_seconds: float = Field(default=0.0, ge=0.0, le=600.0)
    startup_delay_seconds: float = Field(
        default=0.0, ge=0.0, le=86400.0, description="Extra warm-up before the version is ready."
    )


class ServeAppArgs(WorkerModel):
    service: ServiceRef
    task: Literal["text-generation", "embedding"] = "text-generation"
    versions: list[VersionSpec] = Field(min_length=1)
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    retrieval: RetrievalSpec | None = None
    auth: AuthSpec | None = None
    faults: dict[str, FaultSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_checks(self) -> ServeAppArgs:
        names = [v.name for v in self.versions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"versions: duplicate version name(s) {dupes}; names must be unique")
        unknown = sorted(set(self.faults) - set(names))
        if unknown:
            raise ValueError(f"faults: {unknown} are not versions; use one of {names}")
        if self.retrieval is not None and self.task != "text-generation":
            raise ValueError("retrieval: only a text-generation service can use retrieval")
        return self

    def version(self, name: str) -> VersionSpec:
        return next(v for v in self.versions if v.name == name)


class RouterUserConfig(WorkerModel):
    """What the operator changes in place: traffic weights in percent, per version name."""

    weights: dict[str, float] = Field(default_factory=dict)

    @field_validator("weights")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: w for k, w in value.items() if w < 0}
        if bad:
            raise ValueError(f"weights must be >= 0, got {bad}")
        return value


def _raise(what: str, exc: ValidationError) -> None:
    raise ServeConfigError(f"invalid {what}: {format_validation_error(exc)}") from None


def parse_app_args(args: dict[str, Any] | None) -> ServeAppArgs:
    """Validate the application's `args`; a ServeConfigError names every bad field."""
    if not isinstance(args, dict):
        raise ServeConfigError("invalid Serve args: expected a mapping with service and versions")
    try:
        return ServeAppArgs.model_validate(args)
    except ValidationError as exc:
        _raise("Serve args", exc)
        raise AssertionError("unreachable") from None


def parse_router_user_config(data: dict[str, Any] | None, versions: list[str]) -> RouterUserConfig:
    """Validate the router's user_config against the known versions."""
    try:
        cfg = RouterUserConfig.model_validate(data or {})
    except ValidationError as exc:
        _raise("router user_config", exc)
        raise AssertionError("unreachable") from None
    unknown = sorted(set(cfg.weights) - set(versions))
    if unknown:
        raise ServeConfigError(
            f"invalid router user_config: weights name unknown version(s) {unknown}; "
            f"known versions are {versions}"
        )
    return cfg


def default_weights(versions: list[str]) -> dict[str, float]:
    """Without a user_config every version gets an equal share."""
    return {name: 100.0 / len(versions) for name in versions}
