"""Scaling a version by redeploying the config with a new num_replicas keeps its replica (no
restart): what the autoscaler does; waking from zero replicas through the router's hold; and
Drover's replica router keeping a prefix or a session on its replica. Runs last: it needs the
CPU the never-ready v3 holds."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
from serve_harness import API_KEY, HOLD_SECONDS, ServeHarness, metric_samples, metric_value

from drover.api.inferenceservice import ReplicaRouting
from drover.builders.serving import REQUEST_ROUTER_CLASSES, replica_count
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


def _answered(h: ServeHarness) -> dict[str, float]:
    """vLLM's finished requests per v1 replica."""
    out: dict[str, float] = {}
    for name, labels, value in metric_samples(h.head.metrics_url):
        if name == "ray_vllm_request_success_total" and labels.get("version") == "v1":
            out[labels["ReplicaId"]] = out.get(labels["ReplicaId"], 0.0) + value
    return out


def _hits(h: ServeHarness) -> dict[str, float]:
    """The router's count of v1 requests sent to their preferred replica, by outcome."""
    samples = metric_samples(h.head.metrics_url)
    return {
        o: metric_value(samples, m.REPLICA_ROUTING_SERIES, version="v1", outcome=o)
        for o in ("prefix_hit", "session_hit")
    }


def test_requests_sharing_a_prefix_or_a_session_go_back_to_their_replica(
    serve_harness: ServeHarness,
) -> None:
    """Drover's replica router on real Serve: the model deployment names it in its
    request_router_config (Ray Serve's extension point, ray/serve/_private/request_router/
    request_router.py `RequestRouter.choose_replicas`, called back through `on_request_routed`),
    and the router passes the client's session as the handle's session_id. With two idle
    replicas, every request after the first of a prefix or of a session goes to the replica that
    answered the first (vLLM's own count of finished requests per replica says where)."""
    h = serve_harness
    routing = {  # what the operator writes (builders/serving.build_request_router_config)
        "request_router_class": REQUEST_ROUTER_CLASSES[ReplicaRouting.PREFIX_AWARE],
        "request_router_kwargs": {"service": "chatbot", "namespace": "ml", "version": "v1"},
        "request_routing_stats_period_s": 1.0,
    }
    h.apply(
        "scaling",
        deployments=[{"name": "model-v1", "num_replicas": 2, "request_router_config": routing}],
        wait_replicas={"model-v1": 2},
    )

    time.sleep(12)  # let Ray export what the harness itself sent
    before, hits_before = _answered(h), _hits(h)
    client = h.client()
    shared = f"[{uuid.uuid4().hex}] " + "The refund policy of the shop, in full. " * 16
    for question in ("How long?", "Which card?", "Where?", "Who pays?", "Why?"):
        client.completions.create(model="chatbot:v1", prompt=shared + question, max_tokens=1)
    session = {"x-session-id": f"s-{uuid.uuid4().hex}"}
    for question in ("Hi", "Refunds?", "Thanks"):
        client.chat.completions.create(
            model="chatbot:v1",
            messages=[{"role": "user", "content": question}],
            max_tokens=1,
            extra_headers=session,
        )
    deadline, counts, got = time.monotonic() + 60, [0.0], {"prefix_hit": 0.0, "session_hit": 0.0}
    while time.monotonic() < deadline:  # Ray exports metrics every few seconds
        after = _answered(h)
        counts = sorted((n - before.get(r, 0.0) for r, n in after.items()), reverse=True)
        got = {o: n - hits_before[o] for o, n in _hits(h).items()}
        if sum(counts) >= 8 and got["prefix_hit"] >= 4 and got["session_hit"] >= 2:
            break
        time.sleep(2)
    # Every prompt after the first of its prefix, and every turn after the first of its session,
    # went to the preferred replica; the 5 prompts of the prefix all landed on one replica.
    assert got["prefix_hit"] >= 4 and got["session_hit"] >= 2, got
    assert counts[0] >= 5, counts
