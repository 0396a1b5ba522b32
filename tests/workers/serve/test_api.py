"""The router's OpenAI-compatible API on a real local Ray Serve, through the official client."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest
from serve_harness import API_KEY, ServeHarness


def test_models_lists_the_service_and_each_version(chatbot: ServeHarness) -> None:
    ids = [m.id for m in chatbot.client().models.list()]
    assert ids == ["chatbot", "chatbot:v1", "chatbot:v2", "chatbot:v3"]


def test_completion_returns_text_usage_and_the_answering_version(chatbot: ServeHarness) -> None:
    raw = chatbot.client().completions.with_raw_response.create(
        model="chatbot", prompt="Refunds are", max_tokens=5, temperature=0
    )
    done = raw.parse()
    assert done.object == "text_completion"
    assert done.choices[0].text
    assert done.usage.completion_tokens == 5
    assert done.choices[0].finish_reason == "length"
    version = raw.headers["x-drover-version"]
    assert version in {"v1", "v2"}
    assert done.model_extra["drover"]["version"] == version


def test_chat_completion_answers_as_assistant(chatbot: ServeHarness) -> None:
    done = chatbot.client().chat.completions.create(
        model="chatbot",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=4,
        temperature=0.7,
        top_p=0.9,
        seed=7,
    )
    assert done.object == "chat.completion"
    assert done.choices[0].message.role == "assistant"
    assert done.usage.prompt_tokens > 0
    assert 1 <= done.usage.completion_tokens <= 4


def test_stream_yields_openai_chunks_ending_with_done(chatbot: ServeHarness) -> None:
    stream = chatbot.client().chat.completions.create(
        model="chatbot:v1",
        messages=[{"role": "user", "content": "Tell me about shipping"}],
        max_tokens=6,
        temperature=0,
        stream=True,
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in {"length", "stop"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text
    full = chatbot.client().chat.completions.create(
        model="chatbot:v1",
        messages=[{"role": "user", "content": "Tell me about shipping"}],
        max_tokens=6,
        temperature=0,
    )
    assert text == full.choices[0].message.content  # greedy: streaming and batch agree
    with httpx.stream(
        "POST",
        f"{chatbot.base_url}/completions",
        headers={"authorization": f"Bearer {API_KEY}"},
        json={"model": "chatbot", "prompt": "Hello", "max_tokens": 3, "stream": True},
        timeout=60,
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in resp.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][len("data: ") :])["object"] == "text_completion"


def test_pinned_versions_answer_and_the_adapter_changes_the_output(chatbot: ServeHarness) -> None:
    client = chatbot.client()
    answers = {}
    for version in ("v1", "v2"):
        done = client.completions.create(
            model=f"chatbot:{version}", prompt="Open Settings", max_tokens=8, temperature=0
        )
        assert done.model_extra["drover"]["version"] == version
        answers[version] = done.choices[0].text
    assert answers["v1"] != answers["v2"]


def test_a_lora_version_runs_on_its_base_versions_replicas(chatbot: ServeHarness) -> None:
    status = chatbot.status()["applications"]
    assert "chatbot-app-v2" not in status  # no application, so no replica, of its own
    engine = chatbot.running("model-v1")
    assert engine and chatbot.running("model-v2") == engine
    stream = chatbot.client().chat.completions.create(
        model="chatbot:v2",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=6,
        temperature=0,
        stream=True,
    )
    chunks = list(stream)
    assert chunks[0].model_extra["drover"]["version"] == "v2"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_rag_answer_carries_the_source_of_the_matching_document(chatbot: ServeHarness) -> None:
    done = chatbot.client().chat.completions.create(
        model="chatbot",
        messages=[{"role": "user", "content": "How many A100 GPUs may my team use at once?"}],
        max_tokens=4,
    )
    sources = done.model_extra["drover"]["sources"]
    assert sources[0]["source"] == "gpu-quota.md"
    assert len(sources) == 2
    assert "A100" in sources[0]["text"]
    # The retrieved context is in the prompt the model saw.
    plain = chatbot.client().completions.create(model="chatbot:v1", prompt="x", max_tokens=1)
    assert done.usage.prompt_tokens > plain.usage.prompt_tokens + 20


def _post(
    chatbot: ServeHarness, path: str, body: object, key: str | None = API_KEY
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{chatbot.base_url}{path}", content=content, headers=headers, timeout=60)


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "chatbot"}, 400, "prompt"),
        ({"model": "chatbot", "prompt": "x", "temperature": 5}, 400, "temperature"),
        ({"model": "chatbot", "prompt": "x", "max_tokens": 10_000}, 400, "max_tokens"),
        ({"model": "chatbot", "prompt": "x", "stream": "yes"}, 400, "stream"),
        ({"model": "chatbot", "prompt": "word " * 1200, "max_tokens": 8}, 400, "prompt"),
        ({"prompt": "x"}, 400, "model"),
        ({"model": "gpt-4", "prompt": "x"}, 404, "model"),
        (b"{not json", 400, None),
    ],
)
def test_bad_requests_get_openai_shaped_errors(
    chatbot: ServeHarness, body: object, status: int, param: str | None
) -> None:
    resp = _post(chatbot, "/completions", body)
    assert resp.status_code == status
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert error["message"]


def test_missing_or_wrong_api_key_is_refused_with_401(chatbot: ServeHarness) -> None:
    body = {"model": "chatbot", "prompt": "x"}
    for key in (None, "sk-wrong"):
        resp = _post(chatbot, "/completions", body, key=key)
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        chatbot.client(api_key="sk-wrong").models.list()


def test_client_errors_raise_the_matching_openai_exceptions(chatbot: ServeHarness) -> None:
    client = chatbot.client()
    with pytest.raises(openai.NotFoundError) as missing:
        client.completions.create(model="nope", prompt="x")
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="chatbot", messages=[])
    with pytest.raises(openai.BadRequestError, match="serves a text-generation model"):
        client.embeddings.create(model="chatbot", input="x")


def test_vllm_options_n_logprobs_stop_token_ids_and_a_json_schema(chatbot: ServeHarness) -> None:
    client = chatbot.client()
    done = client.completions.create(
        model="chatbot:v1", prompt="Refunds are", max_tokens=4, n=2, logprobs=2, seed=1
    )
    assert [c.index for c in done.choices] == [0, 1]
    lp = done.choices[0].logprobs
    assert lp is not None and len(lp.tokens) == len(lp.token_logprobs) == 4
    assert all(len(top) <= 2 for top in lp.top_logprobs)
    assert done.usage.completion_tokens == 8  # both choices count
    chat = client.chat.completions.create(
        model="chatbot:v2",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=3,
        logprobs=True,
        top_logprobs=1,
    )
    content = chat.choices[0].logprobs.content
    assert content and content[0].logprob <= 0 and len(content[0].top_logprobs) == 1
    # Every id a stop token: the first generated token ends the answer, whichever it is.
    vocab = len(
        json.loads((Path(chatbot.models["base"]) / "tokenizer.json").read_text())["model"]["vocab"]
    )
    stopped = client.completions.create(
        model="chatbot:v1",
        prompt="Open Settings",
        max_tokens=8,
        extra_body={"stop_token_ids": list(range(vocab))},
    )
    assert stopped.choices[0].finish_reason == "stop" and stopped.usage.completion_tokens <= 1
    # A random model writes only what the schema's grammar allows: the answer without its
    # whitespace is (a prefix of) one of the two documents, and a finished answer parses.
    schema = {
        "type": "object",
        "properties": {"answer": {"enum": ["yes", "no"]}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    shaped = client.chat.completions.create(
        model="chatbot:v1",
        messages=[{"role": "user", "content": "Reply in JSON"}],
        max_tokens=64,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    text = shaped.choices[0].message.content or ""
    compact = "".join(text.split())
    assert compact and any(d.startswith(compact) for d in ('{"answer":"yes"}', '{"answer":"no"}'))
    if shaped.choices[0].finish_reason == "stop":
        assert json.loads(text)["answer"] in ("yes", "no")
