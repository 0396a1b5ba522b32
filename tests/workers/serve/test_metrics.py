"""Per-version Prometheus metrics reach the Ray node's metrics export port under the names the
autoscaler and the canary analysis query (drover_workers.serve.metrics)."""

from __future__ import annotations

import contextlib
import time

import openai
from serve_harness import ServeHarness
from serve_harness import metric_samples as _samples
from serve_harness import metric_value as _value

from drover_workers.serve import metrics as m


def test_metrics_appear_with_service_namespace_and_version_labels(chatbot: ServeHarness) -> None:
    client = chatbot.client()
    for version in ("v1", "v2"):
        for _ in range(3):
            client.completions.create(model=f"chatbot:{version}", prompt="Hi", max_tokens=2)
    list(client.completions.create(model="chatbot:v2", prompt="Hi", max_tokens=2, stream=True))
    with contextlib.suppress(openai.NotFoundError):
        client.completions.create(model="nope", prompt="x")
    base = {"service": "chatbot", "namespace": "ml"}
    deadline = time.monotonic() + 90
    while True:
        samples = _samples(chatbot.head.metrics_url)
        ok = _value(samples, m.REQUESTS_SERIES, version="v2", code="200", **base) >= 4
        if ok or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert _value(samples, m.REQUESTS_SERIES, version="v1", code="200", **base) >= 3
    assert _value(samples, m.REQUESTS_SERIES, version="v2", code="200", **base) >= 4
    assert _value(samples, m.REQUESTS_SERIES, version="none", code="404", **base) >= 1
    assert _value(samples, m.REQUEST_LATENCY_SERIES + "_count", version="v1", **base) >= 3
    assert _value(samples, m.TIME_TO_FIRST_TOKEN_SERIES + "_count", version="v2", **base) >= 4
    assert _value(samples, m.REQUEST_LATENCY_SERIES + "_bucket", version="v1", le="+Inf") >= 3
    assert _value(samples, m.GENERATED_TOKENS_SERIES, version="v2", **base) >= 8
    assert _value(samples, m.PROMPT_TOKENS_SERIES, version="v1", **base) >= 3
    # The drift test's histograms: one prompt length per answered request, and (the service
    # retrieves) the cosine distance of each prompt to its nearest chunk, at most 1 here.
    assert _value(samples, m.PROMPT_LENGTH_SERIES + "_count", version="v1", **base) >= 3
    assert _value(samples, m.PROMPT_DISTANCE_SERIES + "_count", version="v2", **base) >= 4
    assert _value(samples, m.PROMPT_DISTANCE_SERIES + "_bucket", version="v1", le="1.0") >= 3
    names = {n for n, lab, _ in samples if lab.get("version") == "v1"}
    assert {m.IN_FLIGHT_SERIES, m.QUEUE_DEPTH_SERIES} <= names
    # The streamed answer's inter-token latency (2 tokens: one gap), per version.
    assert _value(samples, m.INTER_TOKEN_LATENCY_SERIES + "_count", version="v2", **base) >= 1
    # vLLM's own engine series, with the engine's labels (v2 runs on v1's engine).
    engine = {n for n, lab, _ in samples if lab.get("version") == "v1" and n.startswith("ray_vllm")}
    assert {"ray_vllm_num_requests_waiting", "ray_vllm_kv_cache_usage_perc"} <= engine
    assert "ray_vllm_time_to_first_token_seconds_count" in engine
