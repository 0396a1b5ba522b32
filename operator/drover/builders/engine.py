"""Builders layer: where one InferenceService replica's vLLM engine runs, and what it can run there.

`resolve_engine_placement` is what the InferenceService handler calls: the accelerator class's
placement, refused with a `SpecError` naming the field when the class cannot run the runtime
(a quantization its devices lack, several devices on a CPU class, a device Ray does not schedule
as "GPU"). `engine_deployment_options` turns the placement into the Serve options of the model
deployment, the way Ray Serve LLM places a vLLM engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drover.api.common import AcceleratorRequest, quantity_bytes
from drover.api.inferenceservice import Quantization, RuntimeSpec
from drover.api.reasons import SpecReason
from drover.builders.errors import SpecError
from drover.builders.placement import resolve_placement
from drover.builders.raycluster import Placement
from drover.config import AcceleratorClass

# Kubernetes extended resources Ray schedules as its "GPU" resource (KubeRay sets the Ray node's
# GPU count from either limit). Others (google.com/tpu, ...) are not served yet.
RAY_GPU_RESOURCES = frozenset({"nvidia.com/gpu", "amd.com/gpu"})
# vLLM's CPU backend runs AWQ and GPTQ checkpoints but has no fp8 kernels.
CPU_QUANTIZATIONS = frozenset({Quantization.AWQ, Quantization.GPTQ})
# Bytes a parameter takes in memory: 16-bit weights, or the quantized format's (4-bit AWQ/GPTQ).
_BYTES_PER_PARAMETER = {
    None: 2.0,
    Quantization.AWQ: 0.5,
    Quantization.GPTQ: 0.5,
    Quantization.FP8: 1.0,
}
# The smallest KV cache the serving worker accepts (drover_workers.serve.config.RuntimeSpec).
MIN_KV_CACHE_BYTES = 1 << 20


def supported_quantizations(cls: AcceleratorClass | None) -> frozenset[Quantization]:
    """The quantized formats a class runs: its own list, else all on a GPU class and AWQ/GPTQ
    on a CPU-only class (`None`, no accelerator at all, is a CPU-only class)."""
    if cls is not None and cls.quantizations is not None:
        return frozenset(cls.quantizations)
    if cls is None or cls.is_cpu:
        return CPU_QUANTIZATIONS
    return frozenset(Quantization)


def check_quantization(
    quantization: Quantization | None, cls: AcceleratorClass | None, class_name: str
) -> None:
    """Refuse a quantization the class cannot run: a SpecError naming spec.runtime.quantization."""
    supported = supported_quantizations(cls)
    if quantization is None or quantization in supported:
        return
    runs = ", ".join(sorted(supported)) or "none"
    raise SpecError(
        SpecReason.UNSUPPORTED_QUANTIZATION,
        "spec.runtime.quantization",
        f"accelerator class {class_name} cannot run {quantization.value} checkpoints (it runs: "
        f"{runs}); serve a checkpoint in one of those, pick a class that lists "
        f"{quantization.value} in its quantizations, or add it to this class's quantizations",
    )


def check_engine_devices(runtime: RuntimeSpec, placement: Placement) -> None:
    """Refuse an engine layout the placement cannot give: a SpecError naming the field."""
    if placement.resource_name and placement.resource_name not in RAY_GPU_RESOURCES:
        raise SpecError(
            SpecReason.UNSUPPORTED_ACCELERATOR,
            "spec.accelerator.class",
            f"accelerator class {placement.class_name} requests {placement.resource_name}, which "
            f"the vLLM engine cannot use (it runs on {', '.join(sorted(RAY_GPU_RESOURCES))} or "
            "on CPUs): pick a GPU or CPU class",
        )
    devices = runtime.engine_devices
    if devices > 1 and not placement.resource_name:
        raise SpecError(
            SpecReason.INVALID_PARALLELISM,
            "spec.runtime.tensorParallelSize",
            f"tensorParallelSize x pipelineParallelSize is {devices} but accelerator class "
            f"{placement.class_name} has no GPUs to split the model across: set both to 1 or "
            "pick a GPU class",
        )
    if devices > 1 and placement.count != devices:
        raise SpecError(
            SpecReason.INVALID_PARALLELISM,
            "spec.runtime.tensorParallelSize",
            f"tensorParallelSize x pipelineParallelSize is {devices} but each replica gets "
            f"{placement.count} GPUs: set accelerator.count to {devices} or lower "
            "tensorParallelSize",
        )
    if runtime.kv_cache_memory and quantity_bytes(runtime.kv_cache_memory) < MIN_KV_CACHE_BYTES:
        raise SpecError(
            SpecReason.INVALID_RUNTIME,
            "spec.runtime.kvCacheMemory",
            f"{runtime.kv_cache_memory} holds no useful KV cache: set at least 1Mi (e.g. 64Mi "
            "for a small model on CPU), or remove it to size the cache by gpuMemoryUtilization",
        )


def check_context(runtime: RuntimeSpec, context_length: int | None) -> None:
    """`maxModelLen` (or, without it, `maxTokens`) must fit the model's own context, which the
    fetch recorded in the FoundationModel's status; vLLM would refuse to start otherwise."""
    if not context_length:
        return
    if runtime.max_model_len is not None and runtime.max_model_len > context_length:
        raise SpecError(
            SpecReason.CONTEXT_TOO_LONG,
            "spec.runtime.maxModelLen",
            f"runtime.maxModelLen {runtime.max_model_len} is above the model's context of "
            f"{context_length} tokens: lower it to {context_length} or less (or leave it unset)",
        )
    limit = runtime.max_model_len or context_length
    if runtime.max_tokens >= limit:
        raise SpecError(
            SpecReason.CONTEXT_TOO_LONG,
            "spec.runtime.maxTokens",
            f"runtime.maxTokens {runtime.max_tokens} leaves no room for a prompt in the "
            f"{limit}-token context: lower it below {limit}",
        )


def resolve_engine_placement(
    runtime: RuntimeSpec,
    request: AcceleratorRequest | None,
    classes: Mapping[str, AcceleratorClass],
    *,
    field: str,
    parameter_count: int | None = None,
) -> Placement:
    """The placement of a replica's engine for `request` (CPU when None), or a SpecError."""
    placement = resolve_placement(
        request,
        classes,
        field=field,
        parameter_count=parameter_count,
        bytes_per_parameter=_BYTES_PER_PARAMETER[runtime.quantization],
    )
    cls = classes.get(request.accelerator_class) if request is not None else None
    check_quantization(runtime.quantization, cls, placement.class_name)
    check_engine_devices(runtime, placement)
    return placement


def engine_deployment_options(
    runtime: RuntimeSpec, placement: Placement, *, replica_cpus: float
) -> dict[str, Any]:
    """The model deployment's Serve options that place its engine.

    One device or none: the replica actor holds them (`num_gpus`). Several (tensor x pipeline
    parallel N > 1): vLLM's Ray executor starts one worker per GPU in the replica's placement
    group, so the actor asks for no GPU and the deployment reserves N one-GPU bundles, the
    actor's CPUs added to the first. That is Ray Serve LLM's layout (ray-project/ray,
    python/ray/llm/_internal/serve: `LLMServer.get_deployment_options` and
    `_merge_replica_actor_and_child_actor_bundles` in core/server/llm_server.py,
    `VLLMEngineConfig.placement_bundles` / `placement_strategy` in the vLLM engine's models).
    Keeping the actor in a GPU bundle keeps it on a node with a worker, which vLLM's Ray
    executor requires ("Ray does not allocate any GPUs on the driver node"). STRICT_PACK keeps
    a tensor-parallel engine on one node; pipeline stages may span nodes (PACK).
    """
    actor: dict[str, Any] = {"num_cpus": replica_cpus}
    devices = runtime.engine_devices
    if not placement.resource_name or not placement.count:
        return {"ray_actor_options": actor}
    if devices == 1:
        return {"ray_actor_options": {**actor, "num_gpus": placement.count}}
    bundles: list[dict[str, float]] = [{"CPU": replica_cpus, "GPU": 1}]
    bundles += [{"GPU": 1} for _ in range(devices - 1)]
    return {
        "ray_actor_options": actor,
        "placement_group_bundles": bundles,
        "placement_group_strategy": "STRICT_PACK"
        if runtime.pipeline_parallel_size == 1
        else "PACK",
    }


# On a CPU-only class vLLM sizes its KV cache by gpu_memory_utilization of the node's whole
# memory (not the pod's limit), so an unset kvCacheMemory would reserve 90% of the node and the
# pod would be OOM-killed. Drover then gives the engines that fit one worker pod (by CPUs) this
# share of the pod's memory limit for their KV caches, split evenly; weights, activations and
# Python take the rest.
CPU_KV_CACHE_SHARE = 0.25


def kv_cache_bytes(
    runtime: RuntimeSpec, placement: Placement, *, replica_cpus: float
) -> int | None:
    """vLLM's kv_cache_memory_bytes for one engine: the spec's, else the CPU-class default, else
    None (a GPU engine sizes its cache by gpuMemoryUtilization)."""
    if runtime.kv_cache_memory:
        return quantity_bytes(runtime.kv_cache_memory)
    if placement.resource_name:
        return None
    per_pod = max(1, int(placement.cpus // replica_cpus))
    return max(
        MIN_KV_CACHE_BYTES, int(quantity_bytes(placement.memory) * CPU_KV_CACHE_SHARE) // per_pod
    )
