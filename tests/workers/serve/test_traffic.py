"""Traffic split between versions: weights from the router's user_config, applied in place, and
never to a version that is not ready (v3 of the main configuration never finishes warming up)."""

from __future__ import annotations

from collections import Counter

import httpx
from serve_harness import API_KEY, ServeHarness


def _versions(chatbot: ServeHarness, n: int) -> Counter[str]:
    client = chatbot.client()
    seen: Counter[str] = Counter()
    for _ in range(n):
        raw = client.completions.with_raw_response.create(
            model="chatbot", prompt="Hi", max_tokens=1
        )
        assert raw.http_response.status_code == 200
        seen[raw.headers["x-drover-version"]] += 1
    return seen


def test_traffic_split_90_10_over_200_requests(chatbot: ServeHarness) -> None:
    seen = _versions(chatbot, 200)
    assert set(seen) <= {"v1", "v2"}
    assert abs(seen["v2"] / 200 - 0.10) <= 0.03
    assert seen["v1"] + seen["v2"] == 200


def test_new_weights_apply_in_place_without_restarting_replicas(chatbot: ServeHarness) -> None:
    before = {d: chatbot.running(d) for d in ("router", "model-v1", "model-v2")}
    try:
        chatbot.apply("main", weights={"v1": 0, "v2": 100, "v3": 0})
        assert _versions(chatbot, 20) == Counter({"v2": 20})
        assert {d: chatbot.running(d) for d in before} == before
    finally:
        chatbot.apply("main")


def test_a_version_that_is_not_ready_gets_no_traffic(chatbot: ServeHarness) -> None:
    try:
        chatbot.apply("main", weights={"v1": 50, "v2": 0, "v3": 50})
        health = httpx.get(f"{chatbot.head.serve_url}/chatbot/healthz", timeout=30).json()
        assert health["ready"] == ["v1", "v2"]
        assert health["weights"] == {"v1": 100.0, "v2": 0.0, "v3": 0.0}
        assert _versions(chatbot, 30) == Counter({"v1": 30})
    finally:
        chatbot.apply("main")


def test_no_ready_version_answers_503_with_retry_after(chatbot: ServeHarness) -> None:
    headers = {"authorization": f"Bearer {API_KEY}"}
    pinned = httpx.post(
        f"{chatbot.base_url}/completions",
        json={"model": "chatbot:v3", "prompt": "x"},
        headers=headers,
        timeout=30,
    )
    assert pinned.status_code == 503
    assert pinned.headers["retry-after"] == "1"
    assert pinned.json()["error"]["code"] == "version_not_ready"
    try:
        chatbot.apply("main", weights={"v1": 0, "v2": 0, "v3": 100})
        resp = httpx.post(
            f"{chatbot.base_url}/completions",
            json={"model": "chatbot", "prompt": "x"},
            headers=headers,
            timeout=30,
        )
        assert resp.status_code == 503
        assert int(resp.headers["retry-after"]) >= 1
        assert resp.json()["error"]["type"] == "server_error"
    finally:
        chatbot.apply("main")
