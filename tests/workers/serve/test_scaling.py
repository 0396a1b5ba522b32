"""Scaling a version by redeploying the config with a new num_replicas keeps its replica (no
restart): what the autoscaler does; and waking from zero replicas through the router's hold.
Runs last: it needs the CPU the never-ready v3 holds."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from serve_harness import API_KEY, HOLD_SECONDS, ServeHarness, metric_samples, metric_value

from drover.builders.serving import replica_count
from drover_workers.serve import metrics as m


def test_scaling_1_2_1_by_redeploying_the_config_keeps_the_existing_replica(
    serve_harness: ServeHarness,
) -> None:
    h = serve_harness
    h.apply("scaling")
    (original,) = h.running("model-v1")
    router = h.running("router")
    h.apply(
        "scaling",
        deployments=[{"name": "model-v1", "num_replicas": 2}],
        wait_replicas={"model-v1": 2},
    )
    two = h.running("model-v1")
    assert original in two
    assert len(two) == 2
    client = h.client()
    for _ in range(4):
        done = client.completions.create(model="chatbot:v1", prompt="Hi", max_tokens=1)
        assert done.model_extra["drover"]["version"] == "v1"
    h.apply("scaling", deployments=[{"name": "model-v1", "num_replicas": 1}])
    (left,) = h.running("model-v1")
    assert left in two  # one of the two kept running: no new replica was started
    assert h.running("router") == router


def test_a_service_at_zero_holds_a_request_as_load_and_answers_once_a_replica_is_up(
    serve_harness: ServeHarness,
) -> None:
    """The activator: with no replica, the router neither answers 503 nor drops the request; it
    counts it in flight on the version with the most weight (what wakes it from zero) and
    answers when a replica is ready."""
    h = serve_harness
    # What the operator's builder writes for zero (builders/serving.replica_count).
    zero = [{"name": "model-v1", **replica_count(0)}]
    h.apply("scaling", deployments=zero, wait_replicas={"model-v1": 0})
    assert h.running("model-v1") == []
    answer: dict[str, Any] = {}

    def ask() -> None:
        started = time.monotonic()
        resp = httpx.post(
            f"{h.base_url}/completions",
            json={"model": "chatbot", "prompt": "Hi", "max_tokens": 1},
            headers={"authorization": f"Bearer {API_KEY}"},
            timeout=HOLD_SECONDS + 30,
        )
        answer.update(status=resp.status_code, body=resp.json(), took=time.monotonic() - started)

    held = threading.Thread(target=ask, daemon=True)
    held.start()
    deadline = time.monotonic() + 60
    in_flight = 0.0
    while time.monotonic() < deadline and not in_flight:
        in_flight = metric_value(
            metric_samples(h.head.metrics_url), m.IN_FLIGHT_SERIES, version="v1"
        )
        time.sleep(1)
    assert in_flight == 1, "the held request is not counted in flight on v1"
    assert held.is_alive() and not answer  # still held: no 503
    h.apply("scaling", deployments=[{"name": "model-v1", "num_replicas": 1}])
    held.join(HOLD_SECONDS)
    assert answer["status"] == 200, answer
    assert answer["body"]["drover"]["version"] in ("v1", "v2")
