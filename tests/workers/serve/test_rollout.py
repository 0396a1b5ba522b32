"""Adding a canary version adds its own Serve application and changes only the router's
user_config (in place), so neither the stable version's replicas nor the router's restart, and a
client under load sees no failed request."""

from __future__ import annotations

import threading
import time
from collections import Counter

import openai
from serve_harness import API_KEY, ServeHarness


def test_adding_a_canary_version_fails_no_request(serve_harness: ServeHarness) -> None:
    h = serve_harness
    h.apply("stable")  # v1 alone (router + v1 = 1 of the 2 CPUs; no surge is needed any more)
    before = h.running("model-v1")
    router = h.running("router")
    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        client = h.client()
        while not stop.is_set():
            try:
                client.completions.create(model="chatbot", prompt="Hi", max_tokens=1)
                outcomes["ok"] += 1
            except openai.APIError as exc:
                outcomes[f"{type(exc).__name__} {getattr(exc, 'message', exc)}"] += 1
            time.sleep(0.05)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        h.apply("canary", weights={"v1": 100, "v3": 0}, timeout=300)
        time.sleep(2)
    finally:
        stop.set()
        thread.join(timeout=120)
    assert set(outcomes) == {"ok"}, outcomes  # no request failed ...
    assert h.running("model-v3")
    # ... and the stable version and the router kept their replicas: nothing of theirs changed.
    assert before and h.running("model-v1") == before
    assert router and h.running("router") == router
    assert outcomes["ok"] >= 20


def test_the_operator_times_a_streamed_answer_on_each_version(serve_harness: ServeHarness) -> None:
    """The warm-up's timing client (drover.k8s.serving.timed_chat) against the real router: a
    streamed answer pinned to each version gives its time to first token and mean gap between
    tokens; a version the router does not have is a failure (None), as in the warm-up's count."""
    from drover.k8s.serving import timed_chat

    h = serve_harness
    url = h.base_url.removesuffix("/v1")
    for version in ("v1", "v3"):
        timed = timed_chat(url, "chatbot", version, "Hello", max_tokens=8, api_key=API_KEY)
        assert timed is not None, version
        ttft, gap = timed
        assert ttft > 0 and (gap is None or gap >= 0), (version, timed)
    assert timed_chat(url, "chatbot", "v9", "Hello", max_tokens=8, api_key=API_KEY) is None
