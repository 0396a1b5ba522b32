"""Pure parts of the Serve application: config validation, routing decisions, the OpenAI wire
format and the retrieval prompt. No Ray."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import pytest

from drover_workers.serve import protocol as oa
from drover_workers.serve.config import (
    RuntimeSpec,
    ServeConfigError,
    parse_model_args,
    parse_model_user_config,
    parse_router_args,
    parse_router_user_config,
    version_app_name,
)
from drover_workers.serve.engine import engine_kwargs
from drover_workers.serve.retrieval import augment, query_of
from drover_workers.serve.routing import (
    WeightedPicker,
    effective_weights,
    hold_until_ready,
    ready_from_status,
)

ROUTER_ARGS = {
    "service": {"name": "bot", "namespace": "ml"},
    "runtime": {"maxTokens": 64},
    "auth": {"apiKeysEnv": "KEYS"},
}
MODEL_ARGS = {
    "service": {"name": "bot", "namespace": "ml"},
    "version": {"name": "v2", "model": "m2", "modelPath": "/m/2"},
    "runtime": {"maxNumSeqs": 4},
    "faults": {"errorRate": 0.2},
}


def test_args_parse_with_camel_case_names_and_defaults() -> None:
    router = parse_router_args(ROUTER_ARGS)
    assert router.runtime.max_tokens == 64 and router.auth is not None
    assert router.task == "text-generation"
    model = parse_model_args(MODEL_ARGS)
    assert model.version.model_path == "/m/2"
    assert model.runtime.max_num_seqs == 4
    assert model.faults is not None and model.faults.error_rate == 0.2
    assert model.faults.added_latency_seconds == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"versions": [{"name": "v1"}]}, "versions: unknown field"),
        ({"task": "chat"}, "task: Input should be 'text-generation' or 'embedding'"),
        ({"runtime": {"maxBatchSize": 4}}, "runtime.maxBatchSize: unknown field"),
        ({"auth": {}}, "set exactly one of apiKeysFile or apiKeysEnv"),
        ({"service": {}}, "service.name: field required"),
    ],
)
def test_bad_router_args_name_the_field_and_the_fix(change: dict, message: str) -> None:
    with pytest.raises(ServeConfigError, match="invalid router args") as err:
        parse_router_args({**ROUTER_ARGS, **change})
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": None}, "version"),
        ({"faults": {"errorRate": 2}}, "faults.errorRate"),
        ({"version": {"name": "V 1", "model": "m", "modelPath": "/m"}}, "not a valid version"),
        ({"version": {"name": "v1", "model": "m"}}, "version.modelPath: field required"),
    ],
)
def test_bad_model_args_name_the_field_and_the_fix(change: dict, message: str) -> None:
    with pytest.raises(ServeConfigError, match="invalid model args") as err:
        parse_model_args({**MODEL_ARGS, **change})
    assert message in str(err.value)


def test_router_user_config_refuses_unknown_versions_and_negative_weights() -> None:
    cfg = parse_router_user_config({"versions": ["v1", "v2"], "weights": {"v1": 95, "v2": 5}})
    assert cfg.weights == {"v1": 95, "v2": 5} and cfg.versions == ["v1", "v2"]
    with pytest.raises(ServeConfigError, match="unknown version"):
        parse_router_user_config({"versions": ["v1", "v2"], "weights": {"v3": 5}})
    with pytest.raises(ServeConfigError, match=">= 0"):
        parse_router_user_config({"versions": ["v1"], "weights": {"v1": -1}})
    with pytest.raises(ServeConfigError, match="duplicate version name"):
        parse_router_user_config({"versions": ["v1", "v1"]})
    with pytest.raises(ServeConfigError, match="not a valid version name"):
        parse_router_user_config({"versions": ["V 1"]})


def test_routes_and_engine_adapters_name_known_versions_and_an_adapter() -> None:
    route = {"engine": "v1", "adapterPath": "/models/lora"}
    cfg = parse_router_user_config({"versions": ["v1", "v2"], "routes": {"v2": route}})
    assert cfg.routes["v2"].engine == "v1" and cfg.routes["v2"].adapter_path == "/models/lora"
    with pytest.raises(ServeConfigError, match=r"unknown version\(s\) \['v3'\]"):
        parse_router_user_config({"versions": ["v1"], "routes": {"v3": route}})
    with pytest.raises(ServeConfigError, match=r"routes\.v2\.adapterPath"):
        parse_router_user_config({"versions": ["v2"], "routes": {"v2": {"engine": "v1"}}})
    engine = parse_model_user_config(
        {"adapters": {"v2": {"adapterPath": "/a", "faults": {"errorRate": 0.5}}}}
    )
    assert engine.adapters["v2"].faults is not None and engine.adapters["v2"].faults.error_rate
    with pytest.raises(ServeConfigError, match="not a valid version"):
        parse_model_user_config({"adapters": {"V 2": {"adapterPath": "/a"}}})


def test_a_version_application_is_named_after_the_router_application() -> None:
    assert version_app_name("ml--bot--bot", "v1") == "ml--bot--bot-v1"


def test_picker_gives_exact_shares_over_a_window() -> None:
    picker = WeightedPicker()
    seen = Counter(picker.next_version({"v1": 90, "v2": 10}, {"v1", "v2"})[0] for _ in range(200))
    assert seen == Counter({"v1": 180, "v2": 20})


def test_picker_skips_versions_that_are_not_ready_and_renormalises() -> None:
    picker = WeightedPicker()
    weights = {"v1": 50, "v2": 50}
    seen = Counter(picker.next_version(weights, {"v1"})[0] for _ in range(10))
    assert seen == Counter({"v1": 10})
    assert effective_weights(weights, {"v1"}) == {"v1": 100.0, "v2": 0.0}


def test_picker_says_why_nothing_can_serve() -> None:
    picker = WeightedPicker()
    assert picker.next_version({"v1": 100}, set()) == (None, "no version is ready yet")
    version, reason = picker.next_version({"v1": 0, "v2": 100}, {"v1"})
    assert version is None
    assert "no ready version has traffic weight" in reason


APPS = {"v1": "bot-v1", "v2": "bot-v2", "v3": "bot-v3"}


def test_ready_means_a_running_replica_of_the_version_application() -> None:
    status = {
        "bot-v1": {"deployments": {"model": {"replica_states": {"RUNNING": 1, "STARTING": 1}}}},
        "bot-v2": {"deployments": {"model": {"replica_states": {"STARTING": 1}}}},
        "bot": {"deployments": {"router": {"replica_states": {"RUNNING": 1}}}},
    }
    assert ready_from_status(status, APPS) == {"v1"}


def test_readiness_holds_while_serve_rebuilds_an_application() -> None:
    # While Serve rebuilds an application it briefly lists no deployments; replicas still serve.
    assert ready_from_status({"bot-v1": {"deployments": {}}}, APPS, previous={"v1"}) == {"v1"}
    stopped = {"bot-v1": {"deployments": {"model": {"replica_states": {"STOPPING": 1}}}}}
    assert ready_from_status(stopped, {"v1": "bot-v1"}, previous={"v1"}) == set()


def test_completion_request_validation() -> None:
    parsed, stream = oa.parse_completion(
        {"prompt": ["hi"], "max_tokens": 5, "stop": "\n", "stream": True}, 64
    )
    assert parsed["prompt"] == "hi"
    assert parsed["stop"] == ["\n"]
    assert stream is True
    with pytest.raises(oa.ApiError) as err:
        oa.parse_completion({"prompt": "x", "top_p": 1.5}, 64)
    assert err.value.status == 400
    assert err.value.body["error"]["param"] == "top_p"
    with pytest.raises(oa.ApiError, match="'n' must be an integer between 1 and 8"):
        oa.parse_completion({"prompt": "x", "n": 9}, 64)


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ({"n": 3, "stop_token_ids": [0, 7]}, {"n": 3, "stop_token_ids": [0, 7]}),
        ({"logprobs": 2}, {"logprobs": 2}),
        ({"response_format": {"type": "json_object"}}, {"response_format": {"json_object": True}}),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"schema": {"type": "object"}},
                }
            },
            {"response_format": {"json": {"type": "object"}}},
        ),
        ({"response_format": {"type": "text"}}, {"response_format": None}),
    ],
)
def test_vllm_sampling_options_reach_the_engine_request(body: dict, expect: dict) -> None:
    parsed, _ = oa.parse_completion({"prompt": "x", **body}, 64)
    assert {k: parsed[k] for k in expect} == expect


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"stop_token_ids": ["a"]}, "stop_token_ids"),
        ({"logprobs": 21}, "logprobs"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format"),
    ],
)
def test_bad_vllm_sampling_options_name_their_field(body: dict, param: str) -> None:
    with pytest.raises(oa.ApiError) as err:
        oa.parse_completion({"prompt": "x", **body}, 64)
    assert err.value.body["error"]["param"] == param


def test_chat_logprobs_need_the_flag_and_come_back_in_chat_shape() -> None:
    messages = [{"role": "user", "content": "x"}]
    parsed, _ = oa.parse_chat({"messages": messages, "logprobs": True, "top_logprobs": 2}, 64)
    assert parsed["logprobs"] == 2
    with pytest.raises(oa.ApiError, match="needs 'logprobs': true"):
        oa.parse_chat({"messages": messages, "top_logprobs": 2}, 64)
    lp = {"tokens": ["Hi", "!"], "logprobs": [-0.1, -2.0], "top": [[("Hi", -0.1)], [("!", -2.0)]]}
    chat = oa.chat_logprobs(lp)
    assert chat is not None and chat["content"][0]["bytes"] == [72, 105]
    assert chat["content"][1]["top_logprobs"] == [{"token": "!", "logprob": -2.0, "bytes": [33]}]
    completion = oa.completion_logprobs(lp)
    assert completion is not None and completion["text_offset"] == [0, 2]


def test_chat_content_parts_are_joined_and_roles_checked() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    parsed, _ = oa.parse_chat({"messages": [{"role": "user", "content": parts}]}, 64)
    assert parsed["messages"] == [{"role": "user", "content": "ab"}]
    with pytest.raises(oa.ApiError, match="role must be one of"):
        oa.parse_chat({"messages": [{"role": "wizard", "content": "x"}]}, 64)


def test_only_an_assistant_turn_may_come_without_content() -> None:
    turns = [
        {"role": "user", "content": "hi"},
        {"role": "assistant"},
        {"role": "user", "content": "?"},
    ]
    parsed, _ = oa.parse_chat({"messages": turns}, 64)
    assert parsed["messages"][1] == {"role": "assistant", "content": ""}
    with pytest.raises(oa.ApiError, match=r"messages\[0\].content is required for a user message"):
        oa.parse_chat({"messages": [{"role": "user"}]}, 64)


@pytest.mark.parametrize(
    ("runtime", "lora", "expect", "absent"),
    [
        # Defaults: vLLM's own memory sizing, prefix caching and chunked prefill on, one device.
        (
            {},
            False,
            {"max_num_seqs": 16, "dtype": "auto", "enable_prefix_caching": True},
            [
                "max_model_len",
                "kv_cache_memory_bytes",
                "distributed_executor_backend",
                "enable_lora",
            ],
        ),
        # Every runtime field arrives under vLLM's own argument name.
        (
            {
                "maxNumSeqs": 64,
                "maxModelLen": 4096,
                "dtype": "bfloat16",
                "quantization": "awq",
                "gpuMemoryUtilization": 0.85,
                "kvCacheMemoryBytes": 1 << 30,
                "enablePrefixCaching": False,
                "enableChunkedPrefill": False,
            },
            False,
            {
                "max_num_seqs": 64,
                "max_model_len": 4096,
                "dtype": "bfloat16",
                "quantization": "awq",
                "gpu_memory_utilization": 0.85,
                "kv_cache_memory_bytes": 1 << 30,
                "enable_prefix_caching": False,
                "enable_chunked_prefill": False,
            },
            [],
        ),
        # Several GPUs per replica: vLLM's Ray executor in the replica's placement group.
        (
            {"tensorParallelSize": 4},
            False,
            {"tensor_parallel_size": 4, "distributed_executor_backend": "ray"},
            [],
        ),
        (
            {"tensorParallelSize": 2, "pipelineParallelSize": 2},
            False,
            {"pipeline_parallel_size": 2, "distributed_executor_backend": "ray"},
            [],
        ),
        # An adapter version: LoRA on, one adapter, the rank the runtime allows.
        (
            {"maxLoraRank": 64},
            True,
            {"enable_lora": True, "max_loras": 2, "max_lora_rank": 64},
            [],
        ),
    ],
)
def test_runtime_maps_onto_vllm_engine_arguments(
    runtime: dict, lora: bool, expect: dict, absent: list[str]
) -> None:
    kwargs = engine_kwargs("/models/m", RuntimeSpec.model_validate(runtime), lora=lora)
    assert kwargs["model"] == "/models/m"
    assert {k: kwargs.get(k) for k in expect} == expect
    assert [k for k in absent if k in kwargs] == []


def test_engine_arguments_are_ones_vllm_accepts() -> None:
    from vllm.engine.arg_utils import AsyncEngineArgs

    runtime = RuntimeSpec.model_validate({"tensorParallelSize": 2, "maxModelLen": 2048})
    args = AsyncEngineArgs(**engine_kwargs("/models/m", runtime, lora=True))
    assert args.tensor_parallel_size == 2 and args.max_model_len == 2048 and args.enable_lora


def test_retrieval_context_goes_before_the_question() -> None:
    sources = [{"source": "a.md", "text": "Alpha facts", "score": 0.9}]
    chat = {"messages": [{"role": "user", "content": "alpha?"}]}
    assert query_of(chat) == "alpha?"
    out = augment(chat, sources)
    assert out["messages"][0]["role"] == "system"
    assert "(a.md) Alpha facts" in out["messages"][0]["content"]
    prompt = augment({"prompt": "alpha?"}, sources)["prompt"]
    assert prompt.endswith("alpha?")
    assert "Alpha facts" in prompt


class _Clock:
    """A fake monotonic clock that `sleep` advances; `ready_at` is when a version appears."""

    def __init__(self, ready_at: float | None) -> None:
        self.now, self.ready_at, self.polls = 0.0, ready_at, 0

    async def ready(self) -> set[str]:
        self.polls += 1
        return {"v1"} if self.ready_at is not None and self.now >= self.ready_at else set()

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("ready_at", "hold", "expected", "waited"),
    [
        (0.0, 60, "v1", 0.0),  # ready already: no wait
        (7.3, 60, "v1", 7.5),  # answered at the first poll after the replica is ready
        (None, 2, None, 2.0),  # never ready: gives up at the deadline, not a poll later
        (2.0, 2, "v1", 2.0),  # ready exactly at the deadline: the last poll still finds it
    ],
)
def test_the_activator_holds_until_a_version_is_ready_or_the_deadline(
    ready_at, hold, expected, waited
) -> None:
    clock = _Clock(ready_at)
    picker = WeightedPicker()
    version = asyncio.run(
        hold_until_ready(
            clock.ready,
            lambda ready: picker.next_version({"v1": 100}, ready)[0],
            hold,
            poll_seconds=0.25,
            clock=lambda: clock.now,
            sleep=clock.sleep,
        )
    )
    assert version == expected
    assert clock.now == pytest.approx(waited)


def test_the_router_holds_only_when_scale_to_zero_says_so() -> None:
    assert parse_router_args(ROUTER_ARGS).runtime.hold_seconds == 0  # 503 at once
    held = {**ROUTER_ARGS, "runtime": {"maxTokens": 64, "holdSeconds": 300}}
    assert parse_router_args(held).runtime.hold_seconds == 300


def test_latency_buckets_are_finer_than_the_canary_analysis_margin() -> None:
    from drover.policy.sequential import LIMIT_MARGIN
    from drover_workers.serve.metrics import LATENCY_BUCKETS

    assert sorted(LATENCY_BUCKETS) == LATENCY_BUCKETS and LATENCY_BUCKETS[0] <= 0.005
    assert 2.0 in LATENCY_BUCKETS and LATENCY_BUCKETS[-1] >= 60
    widest = max(b / a for a, b in itertools.pairwise(LATENCY_BUCKETS))
    # R10: at most 1.28 apart (1.6 / 1.25), near the 1.2 margin; 2.5x (as before) is not.
    assert widest <= 1 + LIMIT_MARGIN + 0.1


def test_a_body_over_two_mebibytes_is_a_413_before_it_is_parsed() -> None:
    assert oa.load_json(b'{"prompt": "' + b"x" * (oa.MAX_BODY_BYTES - 20) + b'"}')
    with pytest.raises(oa.ApiError) as refused:
        oa.load_json(b"{" * (oa.MAX_BODY_BYTES + 1))
    assert refused.value.status == 413
    assert refused.value.body["error"]["code"] == "request_too_large"
