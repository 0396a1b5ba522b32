"""Feedback without Ray: the redactors, the bounded answer store, the body's validation, the
record and the append-only log (drover_workers.serve.feedback and serve.redact)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drover_workers.serve.config import ServeConfigError, parse_router_args
from drover_workers.serve.feedback import (
    Answer,
    AnswerStore,
    Feedback,
    FeedbackArgs,
    FeedbackLog,
    build_record,
    parse_rating,
)
from drover_workers.serve.protocol import ApiError
from drover_workers.serve.redact import BUILTIN_REDACTORS, Redactor

ALL = list(BUILTIN_REDACTORS)
SERVICE = {"name": "chatbot", "namespace": "ml"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe+x@example.co.uk now", "mail [EMAIL] now"),
        ("card 4111 1111 1111 1111, exp 12/29", "card [CARD], exp 12/29"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("pay to DE89 3704 0044 0532 0130 00 today", "pay to [IBAN] today"),
        ("call +1 415-555-0100 or (415) 555-0100", "call [PHONE] or [PHONE]"),
        ("ring 0151 2345 6789", "ring [PHONE]"),
        ("from 192.168.1.20 at once", "from [IP] at once"),
        # Not personal data: dates, versions, small numbers, prices stay.
        (
            "on 2026-12-07, v1.2.3, 14 days, 3 to 5 days, 1,299.00 EUR, order 12345",
            "on 2026-12-07, v1.2.3, 14 days, 3 to 5 days, 1,299.00 EUR, order 12345",
        ),
    ],
)
def test_builtin_redactors(text: str, expected: str) -> None:
    assert Redactor(ALL).text(text) == expected


def test_service_patterns_run_after_the_builtin_ones_and_only_chosen_builtins_run() -> None:
    redactor = Redactor(["email"], [("employee-id", r"EMP-[0-9]{6}")])
    text = "EMP-123456 (jane@corp.example, +1 415-555-0100)"
    assert redactor.text(text) == "[EMPLOYEE-ID] ([EMAIL], +1 415-555-0100)"
    nested = {"messages": [{"role": "user", "content": "I am jane@corp.example"}], "n": 1}
    assert redactor.value(nested) == {
        "messages": [{"role": "user", "content": "I am [EMAIL]"}],
        "n": 1,
    }


def test_bad_patterns_and_redactors_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="unknown redactor"):
        Redactor(["ssn"])
    args = {"service": {"name": "chatbot"}, "feedback": {"path": "/fb", "redact": []}}
    args["feedback"]["redact"] = [{"name": "x", "pattern": "(unclosed"}]
    with pytest.raises(ServeConfigError, match=r"feedback\.redact\.0\.pattern.*not a valid"):
        parse_router_args(args)
    args["feedback"]["redact"] = [{"name": "x", "pattern": "a*"}]
    with pytest.raises(ServeConfigError, match="matches the empty string"):
        parse_router_args(args)
    args = {"service": {"name": "e"}, "task": "embedding", "feedback": {"path": "/fb"}}
    with pytest.raises(ServeConfigError, match="only a text-generation service takes feedback"):
        parse_router_args(args)


def _answer(text: str = "hi", prompt: str = "p") -> Answer:
    return Answer("completion", {"prompt": prompt}, (text,), "chatbot", "v1")


def test_store_forgets_the_oldest_beyond_its_count_and_its_characters() -> None:
    store = AnswerStore(limit=3)
    for i in range(5):
        store.add(f"r{i}", _answer())
    assert len(store) == 3 and store.get("r0") is None and store.get("r4") is not None
    size = _answer("x" * 100).size
    store = AnswerStore(limit=100, max_chars=size * 2)
    for i in range(3):
        store.add(f"r{i}", _answer("x" * 100))
    assert [store.get(f"r{i}") is not None for i in range(3)] == [False, True, True]
    assert store.chars == size * 2
    store.add("huge", _answer("x" * size * 3))  # larger than the whole store: not kept
    assert store.get("huge") is None and len(store) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 1}, "response_id"),
        ({"response_id": "", "rating": 1}, "response_id"),
        ({"response_id": "r", "rating": 5}, "rating"),
        ({"response_id": "r", "rating": True}, "rating"),
        ({"response_id": "r"}, "rating"),
        ({"response_id": "r", "rating": -1, "correction": "  "}, "correction"),
        ({"response_id": "r", "rating": -1, "correction": 3}, "correction"),
        ({"response_id": "r", "rating": 1, "comment": "x"}, "comment"),
    ],
)
def test_invalid_feedback_is_a_400_naming_the_field(body: dict, field: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_rating(body)
    assert caught.value.status == 400
    assert caught.value.body["error"]["param"] == field


def test_record_holds_redacted_request_response_and_correction() -> None:
    answer = Answer(
        "chat",
        {"messages": [{"role": "user", "content": "I'm bob@example.com, refund?"}]},
        ("Call +44 20 7946 0958.", "second choice"),
        "chatbot",
        "v2",
        ("refunds.md",),
    )
    rating = parse_rating({"response_id": "drover-1", "rating": -1, "correction": "Mail a@b.io"})
    when = datetime(2026, 12, 7, 19, 50, tzinfo=UTC)
    record = build_record(answer, rating, Redactor(ALL), SERVICE, when)
    assert record == {
        "object": "drover.feedback",
        "response_id": "drover-1",
        "time": "2026-12-07T19:50:00Z",
        "service": SERVICE,
        "model": "chatbot",
        "version": "v2",
        "kind": "chat",
        "request": {"messages": [{"role": "user", "content": "I'm [EMAIL], refund?"}]},
        "response": "Call [PHONE].",
        "rating": -1,
        "correction": "Mail [EMAIL]",
        "sources": ["refunds.md"],
    }


def test_log_appends_whole_lines_per_day_and_replica(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "fb", "replica-a")
    day1, day2 = datetime(2026, 12, 7, 23, 59, tzinfo=UTC), datetime(2026, 12, 8, 0, 1, tzinfo=UTC)
    first = log.append({"n": 1}, day1)
    assert log.append({"n": 2, "text": "ü"}, day1) == first
    second = log.append({"n": 3}, day2)
    assert first == tmp_path / "fb" / "2026-12-07" / "replica-a.jsonl"
    assert second == tmp_path / "fb" / "2026-12-08" / "replica-a.jsonl"
    assert [json.loads(line) for line in first.read_text("utf-8").splitlines()] == [
        {"n": 1},
        {"n": 2, "text": "ü"},
    ]


def test_desk_when_off_unknown_and_on(tmp_path: Path) -> None:
    off = Feedback(None, SERVICE, "r")
    off.remember("drover-1", "chat", {"messages": []}, ["x"], model="m", version="v1")
    with pytest.raises(ApiError, match=r"spec\.feedback\.enabled") as caught:
        asyncio.run(off.submit({"response_id": "drover-1", "rating": 1}))
    assert caught.value.status == 404
    desk = Feedback(FeedbackArgs(path=str(tmp_path)), SERVICE, "r")
    with pytest.raises(ApiError) as caught:
        asyncio.run(desk.submit({"response_id": "drover-nope", "rating": 1}))
    assert caught.value.status == 404 and caught.value.body["error"]["param"] == "response_id"
    desk.remember("drover-2", "embedding", {}, [], model="m", version="v1")  # not remembered
    desk.remember("drover-3", "completion", {"prompt": "Hi"}, ["Hello"], model="m", version="v1")
    assert len(desk.store or []) == 1
    done = asyncio.run(desk.submit({"response_id": "drover-3", "rating": 1}))
    assert done == {"object": "feedback", "response_id": "drover-3", "stored": True}
    (stored,) = [json.loads(p.read_text()) for p in tmp_path.rglob("*.jsonl")]
    assert stored["request"] == {"prompt": "Hi"} and stored["response"] == "Hello"


def test_a_streamed_answer_is_remembered_once_the_stream_ends(tmp_path: Path) -> None:
    desk = Feedback(FeedbackArgs(path=str(tmp_path)), SERVICE, "r")

    async def pieces(fail: bool):
        yield {"choices": [{"index": 0, "text": "Hel"}]}
        if fail:
            raise RuntimeError("engine died")
        yield {"choices": [{"index": 0, "text": "lo", "finish_reason": "stop"}], "usage": {}}

    async def consume(rid: str, fail: bool) -> list:
        tapped = desk.tap(rid, "completion", {"prompt": "Hi"}, pieces(fail), model="m", version="v")
        return [p async for p in tapped]

    assert len(asyncio.run(consume("drover-ok", False))) == 2
    with pytest.raises(RuntimeError):
        asyncio.run(consume("drover-bad", True))
    assert desk.store is not None
    assert desk.store.get("drover-ok").texts == ("Hello",)  # type: ignore[union-attr]
    assert desk.store.get("drover-bad") is None
