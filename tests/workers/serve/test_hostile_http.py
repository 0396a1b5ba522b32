"""Malformed and hostile HTTP to the router's OpenAI-compatible API (#16): each gets an
OpenAI-shaped 4xx, and the replica answers a normal request afterwards."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from serve_harness import API_KEY, ServeHarness, metric_samples, metric_value

from drover_workers.serve import metrics as m

HEADERS = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}


def _post(chatbot: ServeHarness, path: str, content: bytes) -> httpx.Response:
    return httpx.post(f"{chatbot.base_url}{path}", content=content, headers=HEADERS, timeout=120)


def _assert_openai_error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text[:300]
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


def _still_answers(chatbot: ServeHarness) -> None:
    done = chatbot.client().completions.create(model="chatbot", prompt="Hi", max_tokens=2)
    assert done.choices[0].text is not None


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/completions", {"model": "chatbot", "prompt": "x", "max_tokens": -1}, "max_tokens"),
        ("/completions", {"model": "chatbot", "prompt": "x", "n": 0}, "n"),
        ("/completions", {"model": "chatbot", "prompt": ["x", 3]}, "prompt"),
        (
            "/chat/completions",
            {"model": "chatbot", "messages": [{"role": "wizard", "content": "hi"}]},
            "messages",
        ),
        ("/chat/completions", {"model": "chatbot", "messages": [{"role": "user"}]}, "messages"),
        ("/chat/completions", {"model": "chatbot", "messages": "hi"}, "messages"),
        ("/completions", [1, 2, 3], None),
    ],
)
def test_malformed_bodies_are_openai_shaped_400s(
    chatbot: ServeHarness, path: str, body: object, param: str | None
) -> None:
    error = _assert_openai_error(_post(chatbot, path, json.dumps(body).encode()), 400)
    if param is not None:
        assert error["param"] == param, error


def test_a_ten_megabyte_body_is_refused_and_the_replica_stays_healthy(
    chatbot: ServeHarness,
) -> None:
    huge = json.dumps({"model": "chatbot", "prompt": "word " * (2 << 20), "max_tokens": 1})
    assert len(huge) > 10_000_000
    for body in (huge.encode(), b"{" * 10_000_000):
        error = _assert_openai_error(_post(chatbot, "/completions", body), 413)
        assert error["code"] == "request_too_large"
    _still_answers(chatbot)


async def _open_and_cut(url: str, count: int) -> int:
    """`count` concurrent streams, each cut by the client after its first bytes (or its error)."""
    body = {
        "model": "chatbot",
        "prompt": "Tell me about shipping",
        "max_tokens": 64,
        "stream": True,
    }
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    cut = 0
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one() -> None:
            nonlocal cut
            async with client.stream("POST", url, json=body, headers=HEADERS) as resp:
                async for _ in resp.aiter_bytes():
                    break  # the client goes away mid-stream
            cut += 1

        await asyncio.gather(*(one() for _ in range(count)))
    return cut


def test_a_thousand_streams_cut_by_their_clients_leave_the_replica_healthy(
    chatbot: ServeHarness,
) -> None:
    assert asyncio.run(_open_and_cut(f"{chatbot.base_url}/completions", 1000)) == 1000
    _still_answers(chatbot)
    # Nothing is left counted in flight once the cut requests are gone (the gauge is exported
    # every few seconds, so wait for it to settle).

    def in_flight() -> float:
        samples = metric_samples(chatbot.head.metrics_url)
        return metric_value(samples, m.IN_FLIGHT_SERIES)

    deadline = time.monotonic() + 90
    while in_flight() > 0 and time.monotonic() < deadline:
        time.sleep(2)
    assert in_flight() == 0
