"""Serve configuration: the args of the router and version applications, the router's user_config.

The operator writes them into a RayService's `serveConfigV2`: one router application `<svc>`
(`RouterArgs`, never changed by a rollout) and one application `<svc>-<version>` per live version
(`ModelArgs`). `parse_router_args`, `parse_model_args` and `parse_router_user_config` validate them
and raise `ServeConfigError` naming the field and the fix.
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator

from drover_workers.common.config import WorkerModel, format_validation_error
from drover_workers.serve.feedback import FeedbackArgs

WorkerModelT = TypeVar("WorkerModelT", bound=WorkerModel)
MODEL_DEPLOYMENT = "model"  # the one deployment of every version application
VERSION_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


class ServeConfigError(ValueError):
    """The Serve application's args or user_config are invalid; `str()` says what to fix."""


class ServiceRef(WorkerModel):
    name: str = Field(min_length=1, description="InferenceService name; the public model id.")
    namespace: str = Field(default="default", min_length=1, description="Its namespace.")


class VersionSpec(WorkerModel):
    name: str = Field(
        description="Version id, e.g. `v1` or a short digest; names the application <svc>-<name>."
    )
    model: str = Field(min_length=1, description="FoundationModel name this version serves.")
    model_path: str = Field(min_length=1, description="Directory with the HF-format weights.")
    digest: str = Field(default="", description="Content digest of the weights (for status).")

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        return check_version_name(value)


def check_version_name(value: str) -> str:
    if not VERSION_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid version name; use 1-40 lowercase letters, digits and "
            "'-' (it names the version's application <svc>-<name>)"
        )
    return value


def version_app_name(router_app: str, version: str) -> str:
    """A version's Serve application: the router's application name, a dash, the version."""
    return f"{router_app}-{version}"


class RuntimeSpec(WorkerModel):
    """How a version's replicas run the model: vLLM's engine arguments (camelCase) plus the
    router's limits. The operator writes it from `InferenceService.spec.runtime`."""

    max_num_seqs: int = Field(default=16, ge=1, le=1024, description="vLLM max_num_seqs.")
    max_model_len: int | None = Field(default=None, ge=16, description="vLLM max_model_len.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    quantization: Literal["awq", "gptq", "fp8"] | None = None
    gpu_memory_utilization: float | None = Field(default=None, gt=0, lt=1)
    kv_cache_memory_bytes: int | None = Field(
        default=None, ge=1 << 20, description="vLLM kv_cache_memory_bytes (wins over the share)."
    )
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    pipeline_parallel_size: int = Field(default=1, ge=1, le=64)
    max_lora_rank: Literal[8, 16, 32, 64, 128, 256] = 16
    max_loras: int = Field(
        default=2,
        ge=0,
        le=64,
        description="LoRA adapters one engine step can mix (vLLM max_loras); 0 turns LoRA off.",
    )
    max_tokens: int = Field(default=256, ge=1, description="Upper bound of max_tokens.")
    max_queued_requests: int = Field(
        default=64, ge=1, description="Requests per version a router replica holds before 429."
    )
    retry_after_seconds: int = Field(default=1, ge=1, description="Retry-After on 429/503.")
    hold_seconds: float = Field(
        default=0,
        ge=0,
        le=3600,
        description="While no version is ready (a service waking from zero), the router holds "
        "each request up to this long, counted as in flight (the autoscaler's wake signal), "
        "instead of answering 503 at once; 0 answers 503 at once.",
    )
    replica_routing: Literal["prefix-aware", "power-of-two-choices"] = Field(
        default="prefix-aware",
        description="How a version's replicas are picked (the model deployment's "
        "request_router_config). In the router's args because a router's handles keep the "
        "request router they were built with: a change restarts the router (and, through the "
        "model deployment's request_router_config, the engines).",
    )
    max_surge_percent: int = Field(
        default=100,
        ge=0,
        le=100,
        description="Extra replicas during a rolling restart of one application (a change of "
        "its args): with > 0 old replicas serve until their replacements are ready.",
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


class RouterArgs(WorkerModel):
    """The router application's args: only what a rollout never changes (no version in here)."""

    service: ServiceRef
    task: Literal["text-generation", "embedding"] = "text-generation"
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    retrieval: RetrievalSpec | None = None
    auth: AuthSpec | None = None
    feedback: FeedbackArgs | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> RouterArgs:
        if self.retrieval is not None and self.task != "text-generation":
            raise ValueError("retrieval: only a text-generation service can use retrieval")
        if self.feedback is not None and self.task != "text-generation":
            raise ValueError("feedback: only a text-generation service takes feedback")
        return self


class ModelArgs(WorkerModel):
    """One version application's args: that version's weights and how to run them."""

    service: ServiceRef
    task: Literal["text-generation", "embedding"] = "text-generation"
    version: VersionSpec
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    faults: FaultSpec | None = None


class AdapterVersion(WorkerModel):
    """A LoRA version served on a base engine: its adapter and its faults (tests only)."""

    adapter_path: str = Field(min_length=1, description="LoRA adapter directory (peft).")
    faults: FaultSpec | None = None


class ModelUserConfig(WorkerModel):
    """A version application's in-place settings: faults of its own version, and the LoRA
    versions its engine serves now (adapters no longer listed are unloaded)."""

    faults: FaultSpec | None = None
    adapters: dict[str, AdapterVersion] = Field(default_factory=dict)

    @field_validator("adapters")
    @classmethod
    def _names(cls, value: dict[str, AdapterVersion]) -> dict[str, AdapterVersion]:
        for name in value:
            check_version_name(name)
        return value


class AdapterRoute(WorkerModel):
    """Where the router sends a LoRA version: the engine of another version application."""

    engine: str = Field(
        description="The version application (base weights) whose engine serves it."
    )
    adapter_path: str = Field(min_length=1, description="LoRA adapter directory (peft).")

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str) -> str:
        return check_version_name(value)


class RouterUserConfig(WorkerModel):
    """What the operator changes in place: the live versions, their weights in percent, and the
    LoRA versions that run on another version application's engine."""

    versions: list[str] = Field(default_factory=list, description="Live version names.")
    weights: dict[str, float] = Field(default_factory=dict)
    routes: dict[str, AdapterRoute] = Field(default_factory=dict)

    @field_validator("versions")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            check_version_name(name)
        dupes = sorted({n for n in value if value.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate version name(s) {dupes}; names must be unique")
        return value

    @field_validator("weights")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: w for k, w in value.items() if w < 0}
        if bad:
            raise ValueError(f"weights must be >= 0, got {bad}")
        return value

    @model_validator(mode="after")
    def _known(self) -> RouterUserConfig:
        unknown = sorted((set(self.weights) | set(self.routes)) - set(self.versions))
        if unknown:
            raise ValueError(
                f"weights or routes name unknown version(s) {unknown}; list them in versions "
                f"(now {self.versions})"
            )
        return self


def _raise(what: str, exc: ValidationError) -> None:
    raise ServeConfigError(f"invalid {what}: {format_validation_error(exc)}") from None


def _parse(model: type[WorkerModelT], what: str, data: Any) -> WorkerModelT:
    if not isinstance(data, dict):
        raise ServeConfigError(f"invalid {what}: expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        _raise(what, exc)
        raise AssertionError("unreachable") from None


def parse_router_args(args: dict[str, Any] | None) -> RouterArgs:
    """Validate the router application's `args`; a ServeConfigError names every bad field."""
    return _parse(RouterArgs, "router args", args)


def parse_model_args(args: dict[str, Any] | None) -> ModelArgs:
    """Validate a version application's `args`; a ServeConfigError names every bad field."""
    return _parse(ModelArgs, "model args", args)


def parse_router_user_config(data: dict[str, Any] | None) -> RouterUserConfig:
    """Validate the router's user_config (live versions, weights, adapter routes)."""
    return _parse(RouterUserConfig, "router user_config", data or {})


def parse_model_user_config(data: dict[str, Any] | None) -> ModelUserConfig:
    """Validate a version application's user_config (faults, LoRA versions on its engine)."""
    return _parse(ModelUserConfig, "model user_config", data or {})


def default_weights(versions: list[str]) -> dict[str, float]:
    """Without weights every version gets an equal share."""
    return {name: 100.0 / len(versions) for name in versions}
