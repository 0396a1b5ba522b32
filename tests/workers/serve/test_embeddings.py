"""An embedding service: `POST /v1/embeddings` with the real MiniLM model behind the router.
Runs after the chat tests (it replaces the application; see conftest)."""

from __future__ import annotations

import math

import httpx
import openai
import pytest
from serve_harness import ServeHarness


def test_embeddings_are_normalised_and_similar_texts_are_closer(
    serve_harness: ServeHarness,
) -> None:
    serve_harness.apply("embedding")
    client = openai.OpenAI(base_url=serve_harness.base_url, api_key="unused", max_retries=0)
    texts = ["How do I get a refund?", "Refunds go back to the card.", "GPU quota for teams"]
    raw = client.embeddings.with_raw_response.create(model="embedder", input=texts)
    done = raw.parse()
    assert raw.headers["x-drover-version"] == "e1"
    vectors = [d.embedding for d in done.data]
    assert [d.index for d in done.data] == [0, 1, 2]
    assert len(vectors[0]) == 384
    assert math.isclose(sum(x * x for x in vectors[0]), 1.0, rel_tol=1e-4)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
    assert done.usage.prompt_tokens > 0
    floats = httpx.post(
        f"{serve_harness.base_url}/embeddings",
        json={"model": "embedder", "input": texts[0], "encoding_format": "float"},
        timeout=60,
    ).json()
    assert [round(x, 4) for x in floats["data"][0]["embedding"]] == [
        round(x, 4) for x in vectors[0]
    ]
    with pytest.raises(openai.BadRequestError, match="serves an embedding model"):
        client.completions.create(model="embedder", prompt="x")
    # Its feedback is off (and an embedding service takes none): 404 naming the field to set.
    with pytest.raises(openai.NotFoundError, match=r"spec\.feedback\.enabled"):
        client.post("/feedback", body={"response_id": "drover-x", "rating": 1}, cast_to=object)
