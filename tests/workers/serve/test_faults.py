"""Fault injection (for tests and the canary benchmark): off unless set, in place via the model
deployment's user_config, failing about the configured share of a version's requests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
from serve_harness import API_KEY, ServeHarness


def _errors(chatbot: ServeHarness, model: str, n: int) -> int:
    client = chatbot.client()
    failed = 0
    for _ in range(n):
        try:
            client.completions.create(model=model, prompt="Hi", max_tokens=1)
        except openai.InternalServerError as exc:
            assert exc.status_code == 500
            assert exc.body["type"] == "server_error"
            failed += 1
    return failed


def test_fault_injection_fails_about_the_set_share_of_one_version(chatbot: ServeHarness) -> None:
    assert _errors(chatbot, "chatbot:v2", 10) == 0  # off unless set
    before = chatbot.running("model-v2")
    faults = {"name": "model-v2", "user_config": {"faults": {"errorRate": 0.5}}}
    try:
        chatbot.apply("main", deployments=[faults])
        failed = _errors(chatbot, "chatbot:v2", 80)
        assert 25 <= failed <= 55, failed  # binomial(80, 0.5): mean 40, sd 4.5
        assert _errors(chatbot, "chatbot:v1", 10) == 0
        assert chatbot.running("model-v2") == before  # changed in place
    finally:
        chatbot.apply("main")
    assert _errors(chatbot, "chatbot:v2", 10) == 0


def test_a_full_version_queue_answers_429_with_retry_after(chatbot: ServeHarness) -> None:
    slow = {"name": "model-v2", "user_config": {"faults": {"addedLatencySeconds": 3}}}

    def call(_: int) -> httpx.Response:
        return httpx.post(
            f"{chatbot.base_url}/completions",
            json={"model": "chatbot:v2", "prompt": "Hi", "max_tokens": 1},
            headers={"authorization": f"Bearer {API_KEY}"},
            timeout=60,
        )

    try:
        chatbot.apply("main", deployments=[slow])
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(call, range(8)))
    finally:
        chatbot.apply("main")
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) >= 1
    assert codes.count(429) >= 1
    assert set(codes) == {200, 429}
    limited = next(r for r in answers if r.status_code == 429)
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["error"]["type"] == "rate_limit_error"
