"""Pure parts of the Serve application: config validation, routing decisions, the OpenAI wire
format and the retrieval prompt. No Ray."""

from __future__ import annotations

from collections import Counter

import pytest

from drover_workers.serve import protocol as oa
from drover_workers.serve.config import (
    ServeConfigError,
    parse_app_args,
    parse_router_user_config,
)
from drover_workers.serve.engine import cut_at_stop
from drover_workers.serve.retrieval import augment, query_of
from drover_workers.serve.routing import WeightedPicker, effective_weights, ready_from_status

ARGS = {
    "service": {"name": "bot", "namespace": "ml"},
    "versions": [
        {"name": "v1", "model": "m", "modelPath": "/m/1"},
        {"name": "v2", "model": "m2", "modelPath": "/m/2", "adapterPath": "/a", "replicas": 2},
    ],
    "faults": {"v2": {"errorRate": 0.2}},
}


def test_args_parse_with_camel_case_names_and_defaults() -> None:
    cfg = parse_app_args(ARGS)
    assert cfg.version("v2").adapter_path == "/a"
    assert cfg.version("v2").replicas == 2
    assert cfg.runtime.max_batch_size == 8
    assert cfg.faults["v2"].error_rate == 0.2
    assert cfg.faults["v2"].added_latency_seconds == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"versions": []}, "versions: List should have at least 1 item"),
        ({"task": "chat"}, "task: Input should be 'text-generation' or 'embedding'"),
        ({"faults": {"v9": {"errorRate": 0.1}}}, "faults: ['v9'] are not versions"),
        ({"faults": {"v1": {"errorRate": 2}}}, "faults.v1.errorRate"),
        ({"runtime": {"maxBatchSiz": 4}}, "runtime.maxBatchSiz: unknown field"),
        ({"auth": {}}, "set exactly one of apiKeysFile or apiKeysEnv"),
        ({"service": {}}, "service.name: field required"),
    ],
)
def test_bad_args_name_the_field_and_the_fix(change: dict, message: str) -> None:
    with pytest.raises(ServeConfigError, match="invalid Serve args") as err:
        parse_app_args({**ARGS, **change})
    assert message in str(err.value)


def test_duplicate_and_invalid_version_names_are_refused() -> None:
    dup = {**ARGS, "versions": [ARGS["versions"][0], ARGS["versions"][0]]}
    with pytest.raises(ServeConfigError, match="duplicate version name"):
        parse_app_args(dup)
    bad = {**ARGS, "versions": [{"name": "V 1", "model": "m", "modelPath": "/m"}]}
    with pytest.raises(ServeConfigError, match="not a valid version name"):
        parse_app_args(bad)


def test_router_user_config_refuses_unknown_versions_and_negative_weights() -> None:
    assert parse_router_user_config({"weights": {"v1": 95, "v2": 5}}, ["v1", "v2"]).weights == {
        "v1": 95,
        "v2": 5,
    }
    with pytest.raises(ServeConfigError, match="unknown version"):
        parse_router_user_config({"weights": {"v3": 5}}, ["v1", "v2"])
    with pytest.raises(ServeConfigError, match=">= 0"):
        parse_router_user_config({"weights": {"v1": -1}}, ["v1"])


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


def test_ready_means_a_running_replica() -> None:
    status = {
        "model-v1": {"replica_states": {"RUNNING": 1, "STARTING": 1}},
        "model-v2": {"replica_states": {"STARTING": 1}},
        "router": {"replica_states": {"RUNNING": 1}},
    }
    assert ready_from_status(status, ["v1", "v2", "v3"]) == {"v1"}


def test_readiness_holds_while_serve_rebuilds_the_application() -> None:
    # During an args change serve.status() briefly lists no deployments; replicas still serve.
    assert ready_from_status({}, ["v1", "v2"], previous={"v1"}) == {"v1"}
    stopped = {"model-v1": {"replica_states": {"STOPPING": 1}}}
    assert ready_from_status(stopped, ["v1"], previous={"v1"}) == set()


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
    with pytest.raises(oa.ApiError, match="n' must be 1"):
        oa.parse_completion({"prompt": "x", "n": 2}, 64)


def test_chat_content_parts_are_joined_and_roles_checked() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    parsed, _ = oa.parse_chat({"messages": [{"role": "user", "content": parts}]}, 64)
    assert parsed["messages"] == [{"role": "user", "content": "ab"}]
    with pytest.raises(oa.ApiError, match="role must be one of"):
        oa.parse_chat({"messages": [{"role": "wizard", "content": "x"}]}, 64)


def test_stop_sequences_cut_the_text() -> None:
    assert cut_at_stop("hello world. more", [".", "zz"]) == ("hello world", True)
    assert cut_at_stop("hello", ["."]) == ("hello", False)


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
