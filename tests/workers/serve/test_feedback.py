"""Feedback over HTTP on a real local Ray Serve, through the official `openai` client: an answer's
`id` (plain and streamed) rated with `POST /v1/feedback`, the redacted record on disk, and the
OpenAI-shaped errors (unknown id, invalid body, no API key)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from serve_harness import ServeHarness


def _records(root: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(root.rglob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            record = json.loads(line)
            out[record["response_id"]] = record
    return out


def _rate(chatbot: ServeHarness, body: dict[str, Any], **kw: Any) -> Any:
    return chatbot.client(**kw).post("/feedback", body=body, cast_to=object)


def test_a_rated_chat_answer_is_stored_redacted(chatbot: ServeHarness) -> None:
    raw = chatbot.client().chat.completions.with_raw_response.create(
        model="chatbot",
        messages=[{"role": "user", "content": "I am jane@corp.example (EMP-4711), refund?"}],
        max_tokens=5,
        temperature=0,
    )
    done = raw.parse()
    stored = _rate(
        chatbot,
        {"response_id": done.id, "rating": -1, "correction": "Call +1 415-555-0100, Jane."},
    )
    assert stored == {"object": "feedback", "response_id": done.id, "stored": True}
    record = _records(chatbot.feedback)[done.id]
    assert record["kind"] == "chat" and record["model"] == "chatbot"
    assert record["version"] == raw.headers["x-drover-version"]
    assert record["request"] == {
        "messages": [{"role": "user", "content": "I am [EMAIL] ([EMP]), refund?"}]
    }
    assert record["response"] == done.choices[0].message.content
    assert record["rating"] == -1 and record["correction"] == "Call [PHONE], Jane."
    assert record["sources"]  # the service retrieves: the sources' names, not their text
    text = "".join(p.read_text("utf-8") for p in chatbot.feedback.rglob("*.jsonl"))
    assert "jane@corp.example" not in text and "4711" not in text and "555-0100" not in text


def test_a_streamed_completion_is_remembered_under_its_chunks_id(chatbot: ServeHarness) -> None:
    stream = chatbot.client().completions.create(
        model="chatbot:v1", prompt="Shipping takes", max_tokens=6, temperature=0, stream=True
    )
    chunks = list(stream)
    rid = chunks[0].id
    assert {c.id for c in chunks} == {rid}
    _rate(chatbot, {"response_id": rid, "rating": 1})
    record = _records(chatbot.feedback)[rid]
    assert record["request"] == {"prompt": "Shipping takes"}
    assert record["response"] == "".join(c.choices[0].text for c in chunks)
    assert record["version"] == "v1" and record["rating"] == 1 and record["correction"] is None


def test_feedback_errors_are_openai_shaped(chatbot: ServeHarness) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        _rate(chatbot, {"response_id": "drover-000000000000000000000000", "rating": 1})
    assert unknown.value.body["param"] == "response_id"  # type: ignore[index]
    assert unknown.value.body["code"] == "response_not_found"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as invalid:
        _rate(chatbot, {"response_id": "drover-x", "rating": 5})
    assert invalid.value.body["param"] == "rating"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError):
        _rate(chatbot, {"response_id": "drover-x", "rating": 1}, api_key="sk-wrong")
