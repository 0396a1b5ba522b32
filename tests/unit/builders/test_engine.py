"""Builders: where a replica's vLLM engine runs (Serve options, placement group), what the
accelerator class lets it run (quantization, parallelism), and the engine arguments it gets."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.builders.conftest import load

from drover.api.common import AcceleratorRequest
from drover.api.inferenceservice import InferenceService, Quantization, RuntimeSpec
from drover.builders.engine import (
    check_context,
    check_engine_devices,
    check_quantization,
    engine_deployment_options,
    resolve_engine_placement,
    supported_quantizations,
)
from drover.builders.errors import SpecError
from drover.builders.raycluster import Placement
from drover.builders.serving import build_engine_args, build_rayservice, serve_config_of
from drover.builders.serving_plans import VersionPlan
from drover.config import AcceleratorClass

GPU = AcceleratorClass.model_validate({"resourceName": "nvidia.com/gpu", "memoryGiB": 24})
AMD = AcceleratorClass.model_validate({"resourceName": "amd.com/gpu"})
CPU = AcceleratorClass.model_validate({"resourceName": ""})
GPU_NO_FP8 = AcceleratorClass.model_validate(
    {"resourceName": "nvidia.com/gpu", "quantizations": ["awq", "gptq"]}
)
CPU_WITH_FP8 = AcceleratorClass.model_validate({"resourceName": "", "quantizations": ["fp8"]})
TPU = AcceleratorClass.model_validate({"resourceName": "google.com/tpu"})
CLASSES = {"l4": GPU, "mi300": AMD, "cpu": CPU, "v5e": TPU, "t4": GPU_NO_FP8}
ALL = {Quantization.AWQ, Quantization.GPTQ, Quantization.FP8}


def _runtime(**fields: Any) -> RuntimeSpec:
    return RuntimeSpec.model_validate(fields)


def _gpu(count: int) -> Placement:
    return Placement(class_name="l4", resource_name="nvidia.com/gpu", count=count)


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        pytest.param(GPU, ALL, id="gpu-class-runs-all-three"),
        pytest.param(AMD, ALL, id="amd-class-runs-all-three"),
        pytest.param(CPU, {Quantization.AWQ, Quantization.GPTQ}, id="cpu-class-no-fp8"),
        pytest.param(None, {Quantization.AWQ, Quantization.GPTQ}, id="no-accelerator-is-cpu"),
        pytest.param(GPU_NO_FP8, {Quantization.AWQ, Quantization.GPTQ}, id="listed-wins-on-gpu"),
        pytest.param(CPU_WITH_FP8, {Quantization.FP8}, id="listed-wins-on-cpu"),
    ],
)
def test_supported_quantizations_by_class(
    cls: AcceleratorClass | None, expected: set[Quantization]
) -> None:
    assert supported_quantizations(cls) == expected


@pytest.mark.parametrize(
    ("quantization", "cls", "refused"),
    [
        (None, CPU, False),
        (None, GPU_NO_FP8, False),
        (Quantization.AWQ, CPU, False),
        (Quantization.GPTQ, None, False),
        (Quantization.FP8, GPU, False),
        (Quantization.FP8, CPU, True),
        (Quantization.FP8, None, True),
        (Quantization.FP8, GPU_NO_FP8, True),
        (Quantization.AWQ, CPU_WITH_FP8, True),
    ],
)
def test_a_quantization_the_class_cannot_run_is_refused_naming_the_field(
    quantization: Quantization | None, cls: AcceleratorClass | None, refused: bool
) -> None:
    if not refused:
        check_quantization(quantization, cls, "c")
        return
    with pytest.raises(SpecError) as err:
        check_quantization(quantization, cls, "c")
    assert err.value.reason == "UnsupportedQuantization"
    assert err.value.field == "spec.runtime.quantization"
    assert err.value.message.startswith("spec.runtime.quantization: accelerator class c cannot")


@pytest.mark.parametrize(
    ("runtime", "placement", "expected"),
    [
        pytest.param(
            {}, Placement(class_name="cpu"), {"ray_actor_options": {"num_cpus": 1.0}}, id="cpu"
        ),
        pytest.param(
            {},
            _gpu(1),
            {"ray_actor_options": {"num_cpus": 1.0, "num_gpus": 1}},
            id="one-gpu-on-the-actor",
        ),
        pytest.param(
            {},
            _gpu(2),
            {"ray_actor_options": {"num_cpus": 1.0, "num_gpus": 2}},
            id="no-parallelism-keeps-the-count-on-the-actor",
        ),
        pytest.param(
            {"tensorParallelSize": 2},
            _gpu(2),
            {
                "ray_actor_options": {"num_cpus": 1.0},
                "placement_group_bundles": [{"CPU": 1.0, "GPU": 1}, {"GPU": 1}],
                "placement_group_strategy": "STRICT_PACK",
            },
            id="tensor-parallel-on-one-node",
        ),
        pytest.param(
            {"tensorParallelSize": 2, "pipelineParallelSize": 2},
            _gpu(4),
            {
                "ray_actor_options": {"num_cpus": 1.0},
                "placement_group_bundles": [{"CPU": 1.0, "GPU": 1}, *[{"GPU": 1}] * 3],
                "placement_group_strategy": "PACK",
            },
            id="pipeline-stages-may-span-nodes",
        ),
    ],
)
def test_engine_placement_follows_ray_serve_llm(
    runtime: dict[str, Any], placement: Placement, expected: dict[str, Any]
) -> None:
    # Ray Serve LLM's layout: N one-GPU bundles, the replica actor's CPUs merged into the first
    # (ray-project/ray python/ray/llm/_internal/serve/core/server/llm_server.py,
    # LLMServer.get_deployment_options and _merge_replica_actor_and_child_actor_bundles).
    assert engine_deployment_options(_runtime(**runtime), placement, replica_cpus=1.0) == expected


@pytest.mark.parametrize(
    ("runtime", "placement", "reason", "field"),
    [
        pytest.param(
            {},
            Placement(class_name="v5e", resource_name="google.com/tpu", count=4),
            "UnsupportedAccelerator",
            "spec.accelerator.class",
            id="tpu-class",
        ),
        pytest.param(
            {"tensorParallelSize": 2},
            Placement(class_name="cpu"),
            "InvalidParallelism",
            "spec.runtime.tensorParallelSize",
            id="parallel-on-cpu",
        ),
        pytest.param(
            {"pipelineParallelSize": 2},
            _gpu(4),
            "InvalidParallelism",
            "spec.runtime.tensorParallelSize",
            id="parallel-not-the-count",
        ),
        pytest.param(
            {"kvCacheMemory": "512Ki"},
            Placement(class_name="cpu"),
            "InvalidRuntime",
            "spec.runtime.kvCacheMemory",
            id="kv-cache-below-1Mi",
        ),
    ],
)
def test_an_engine_the_placement_cannot_hold_is_refused(
    runtime: dict[str, Any], placement: Placement, reason: str, field: str
) -> None:
    with pytest.raises(SpecError) as err:
        check_engine_devices(_runtime(**runtime), placement)
    assert (err.value.reason, err.value.field) == (reason, field)


@pytest.mark.parametrize(
    ("runtime", "placement"),
    [
        ({}, Placement(class_name="cpu")),
        ({"kvCacheMemory": "1Mi"}, Placement(class_name="cpu")),
        ({}, Placement(class_name="mi300", resource_name="amd.com/gpu", count=1)),
        ({"tensorParallelSize": 4}, _gpu(4)),
    ],
)
def test_an_engine_the_placement_holds_is_accepted(
    runtime: dict[str, Any], placement: Placement
) -> None:
    check_engine_devices(_runtime(**runtime), placement)


def test_resolving_the_engine_placement_checks_quantization_against_the_class() -> None:
    request = AcceleratorRequest.model_validate({"class": "cpu"})
    with pytest.raises(SpecError) as err:
        resolve_engine_placement(
            _runtime(quantization="fp8"), request, CLASSES, field="spec.accelerator"
        )
    assert err.value.field == "spec.runtime.quantization"
    placement = resolve_engine_placement(
        _runtime(quantization="awq"), request, CLASSES, field="spec.accelerator"
    )
    assert placement.class_name == "cpu"


def test_a_quantized_checkpoint_fits_where_its_16_bit_weights_do_not() -> None:
    request = AcceleratorRequest.model_validate({"class": "l4", "count": 1})
    thirty_b = 30_000_000_000  # 67 GiB at 16 bits, 17 GiB at 4 bits (with headroom)
    with pytest.raises(SpecError) as err:
        resolve_engine_placement(
            _runtime(), request, CLASSES, field="spec.accelerator", parameter_count=thirty_b
        )
    assert err.value.reason == "ModelTooLarge"
    placement = resolve_engine_placement(
        _runtime(quantization="awq"),
        request,
        CLASSES,
        field="spec.accelerator",
        parameter_count=thirty_b,
    )
    assert placement.count == 1


def test_engine_args_carry_vllm_names_and_leave_unset_values_to_vllm() -> None:
    assert build_engine_args(_runtime()) == {
        "maxNumSeqs": 16,
        "enablePrefixCaching": True,
        "enableChunkedPrefill": True,
        "tensorParallelSize": 1,
        "pipelineParallelSize": 1,
        "maxLoraRank": 16,
    }
    full = _runtime(
        maxNumSeqs=8,
        maxModelLen=4096,
        dtype="bfloat16",
        quantization="awq",
        gpuMemoryUtilization=0.85,
        kvCacheMemory="1.5Gi",
        enablePrefixCaching=False,
        enableChunkedPrefill=False,
        maxLoraRank=64,
        maxLoras=4,
    )
    assert build_engine_args(full) == {
        "maxNumSeqs": 8,
        "maxModelLen": 4096,
        "dtype": "bfloat16",
        "quantization": "awq",
        "gpuMemoryUtilization": 0.85,
        "kvCacheMemoryBytes": 1610612736,
        "enablePrefixCaching": False,
        "enableChunkedPrefill": False,
        "tensorParallelSize": 1,
        "pipelineParallelSize": 1,
        "maxLoraRank": 64,
        "maxLoras": 4,
    }


def test_engine_args_are_accepted_by_the_serving_worker() -> None:
    from drover_workers.serve.config import RuntimeSpec as WorkerRuntime

    full = _runtime(
        maxModelLen=4096,
        dtype="float16",
        quantization="gptq",
        gpuMemoryUtilization=0.5,
        kvCacheMemory="64Mi",
        tensorParallelSize=2,
        pipelineParallelSize=2,
        maxLoraRank=256,
        maxLoras=8,
    )
    for runtime in (_runtime(), full):
        args = build_engine_args(runtime)
        parsed = WorkerRuntime.model_validate(args).model_dump(by_alias=True, exclude_unset=True)
        assert parsed == args


def _tensor_parallel_service() -> InferenceService:
    doc = load("04-service.yaml")
    doc["spec"]["accelerator"] = {"class": "l4", "count": 2}
    doc["spec"]["runtime"] = {"tensorParallelSize": 2, "maxConcurrentRequests": 24}
    return InferenceService.model_validate(doc)


def test_a_tensor_parallel_service_reserves_its_gpus_in_a_placement_group() -> None:
    svc = _tensor_parallel_service()
    placement = resolve_engine_placement(
        svc.spec.runtime, svc.spec.accelerator, CLASSES, field="spec.accelerator"
    )
    plan = VersionPlan(model="m", digest="sha256:" + "ab" * 32, claim="c", path="p")
    rs = build_rayservice(svc, [plan], None, placement=placement, image="x")
    (deployment,) = serve_config_of(rs)["applications"][1]["deployments"]
    assert deployment["max_ongoing_requests"] == 24
    assert deployment["ray_actor_options"] == {"num_cpus": 1.0}
    # The replica actor's bundle also asks for its weights' claim (a pod that mounts it).
    assert deployment["placement_group_bundles"] == [
        {"CPU": 1.0, "GPU": 1, "drover-claim-c": 0.001},
        {"GPU": 1},
    ]
    assert deployment["placement_group_strategy"] == "STRICT_PACK"
    # One worker pod per replica, holding all of the engine's GPUs: STRICT_PACK fits one pod.
    (group,) = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "2"
    assert (group["replicas"], group["maxReplicas"]) == (1, 4)


def test_the_model_deployment_uses_ray_serve_fields_and_fits_its_first_bundle() -> None:
    from ray.serve.schema import DeploymentSchema, ServeDeploySchema

    svc = _tensor_parallel_service()
    placement = resolve_engine_placement(
        svc.spec.runtime, svc.spec.accelerator, CLASSES, field="spec.accelerator"
    )
    plan = VersionPlan(model="m", digest="sha256:" + "ab" * 32, claim="c", path="p")
    config = serve_config_of(build_rayservice(svc, [plan], None, placement=placement, image="x"))
    ServeDeploySchema.model_validate(config)  # types only: it ignores unknown keys
    (deployment,) = config["applications"][1]["deployments"]
    assert set(deployment) <= set(DeploymentSchema.model_fields)
    # Serve starts the replica actor in the first bundle, so that bundle must hold its CPUs.
    first = deployment["placement_group_bundles"][0]
    assert first["CPU"] >= deployment["ray_actor_options"]["num_cpus"]


@pytest.mark.parametrize(
    ("runtime", "context", "field"),
    [
        ({"maxModelLen": 8192, "maxTokens": 512}, 4096, "spec.runtime.maxModelLen"),
        ({"maxTokens": 4096}, 4096, "spec.runtime.maxTokens"),
        ({"maxModelLen": 1024, "maxTokens": 1024}, 4096, "spec.runtime.maxTokens"),
        ({"maxModelLen": 4096, "maxTokens": 512}, 4096, None),
        ({"maxTokens": 512}, 4096, None),
        ({"maxModelLen": 1 << 20, "maxTokens": 512}, None, None),  # context unknown: vLLM decides
    ],
)
def test_the_runtime_must_fit_the_models_context(
    runtime: dict[str, Any], context: int | None, field: str | None
) -> None:
    spec = RuntimeSpec.model_construct(**RuntimeSpec.model_validate({}).__dict__)
    for key, value in runtime.items():
        setattr(spec, {"maxModelLen": "max_model_len", "maxTokens": "max_tokens"}[key], value)
    if field is None:
        check_context(spec, context)
        return
    with pytest.raises(SpecError) as err:
        check_context(spec, context)
    assert err.value.field == field and err.value.reason == "ContextTooLong"
    assert "context" in err.value.message and "lower it" in err.value.message


def test_a_cpu_engine_gets_a_kv_cache_sized_from_its_pod_not_the_node() -> None:
    # vLLM's CPU backend takes gpu_memory_utilization of the node's memory (vllm/platforms/
    # cpu.py), far above a pod's limit: without kvCacheMemory the pod would be OOM-killed.
    from drover.builders.engine import kv_cache_bytes

    cpu = Placement(class_name="cpu", cpu="2", memory="8Gi")
    assert kv_cache_bytes(_runtime(), cpu, replica_cpus=1.0) == 1 << 30  # 8Gi / 4 / 2 engines
    assert kv_cache_bytes(_runtime(), cpu, replica_cpus=0.25) == 256 << 20  # 8 engines a pod
    assert kv_cache_bytes(_runtime(kvCacheMemory="64Mi"), cpu, replica_cpus=1.0) == 64 << 20
    assert kv_cache_bytes(_runtime(), _gpu(1), replica_cpus=1.0) is None  # gpuMemoryUtilization
    assert build_engine_args(_runtime(), 1 << 30)["kvCacheMemoryBytes"] == 1 << 30


def test_zero_replicas_is_serve_autoscaling_held_at_zero_since_serve_refuses_num_replicas_0() -> (
    None
):
    from pydantic import ValidationError
    from ray.serve.schema import DeploymentSchema

    from drover.builders.serving import replica_count

    with pytest.raises(ValidationError, match="num_replicas"):  # ray/serve/schema.py PositiveInt
        DeploymentSchema.model_validate({"name": "model", "num_replicas": 0})
    zero = DeploymentSchema.model_validate({"name": "model", **replica_count(0)})
    config = zero.autoscaling_config
    assert (config["min_replicas"], config["initial_replicas"], config["max_replicas"]) == (0, 0, 1)
    assert replica_count(3) == {"num_replicas": 3}
