"""Scaling a version by redeploying the config with a new num_replicas keeps its replica (no
restart): what the autoscaler does. Runs last: it needs the CPU the never-ready v3 holds."""

from __future__ import annotations

from serve_harness import ServeHarness


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
