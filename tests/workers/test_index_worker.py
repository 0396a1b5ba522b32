"""index worker with the real MiniLM embedder: retrieval by topic, chunking, index types,
versions side by side, Ray tasks, bad configuration."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from drover_workers.index.documents import Document, chunk_document
from drover_workers.index.store import IndexReader, latest_version_path, versions

QUERIES = {
    "How many days does delivery take?": "shipping.md",
    "How can my team get more accelerators for training?": "gpu-quota.md",
    "I want my money back for an order": "refunds.md",
    "How often should the coffee machine be descaled?": "office-coffee.txt",
    "How much paid time off do employees get?": "vacation.md",
    "I forgot my login password": "passwords.md",
}


def _config(handbook, minilm, out, **over):
    return {
        "documentsPath": str(handbook),
        "embedderPath": str(minilm),
        "chunking": {"size": 32, "overlap": 8},
        "index": {"type": "flat", "metric": "cosine"},
        "outputRoot": str(out),
        "parallelism": "local",
        **over,
    }


def test_a_query_about_a_topic_retrieves_that_document_first(
    handbook, minilm, tmp_path, run_inprocess
):
    run = run_inprocess("index", _config(handbook, minilm, tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    result = run.result
    assert result["version"] == 1 and result["documents"] == 6
    assert result["chunks"] >= 6 and result["dimensions"] == 384
    path = Path(result["path"])
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["embedderDigest"].startswith("sha256:")
    assert manifest["index"] == {"type": "flat", "metric": "cosine"}
    reader = IndexReader(path)
    hits = reader.query(list(QUERIES), k=3)
    assert [h[0].doc_id for h in hits] == list(QUERIES.values())
    assert all(h[0].score > h[-1].score for h in hits)
    assert hits[2][0].text in (handbook / "refunds.md").read_text()  # an exact slice


@pytest.mark.parametrize(("kind", "metric"), [("hnsw", "cosine"), ("ivf", "l2"), ("hnsw", "ip")])
def test_approximate_indexes_and_other_metrics_find_the_same_top_document(
    handbook, minilm, tmp_path, run_inprocess, kind, metric
):
    run = run_inprocess(
        "index", _config(handbook, minilm, tmp_path, index={"type": kind, "metric": metric})
    )
    assert run.returncode == 0, run.stderr[-3000:]
    reader = IndexReader(run.result["path"])
    assert reader.manifest["index"]["type"] == kind
    assert [h[0].doc_id for h in reader.query(list(QUERIES), k=2)] == list(QUERIES.values())


def test_new_versions_are_written_beside_the_old_ones(handbook, minilm, tmp_path, run_inprocess):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("refunds.md", "shipping.md"):
        (docs / name).write_text((handbook / name).read_text())
    out = tmp_path / "index"
    first = run_inprocess("index", _config(docs, minilm, out))
    (docs / "vacation.md").write_text((handbook / "vacation.md").read_text())
    second = run_inprocess("index", _config(docs, minilm, out, previousVersion=1))
    assert (first.result["version"], second.result["version"]) == (1, 2)
    assert versions(out) == [1, 2] and latest_version_path(out) == out / "v2"
    v1, v2 = IndexReader(out / "v1"), IndexReader(out / "v2")
    assert (v1.manifest["documents"], v2.manifest["documents"]) == (2, 3)
    query = v1.embed(["paid vacation days"])
    assert v2.search(query, 1)[0][0].doc_id == "vacation.md"
    assert v1.search(query, 1)[0][0].doc_id != "vacation.md"
    retried = run_inprocess("index", _config(docs, minilm, out, previousVersion=1))
    assert retried.result["version"] == 2 and retried.result["reused"] is True


def test_jsonl_documents_keep_their_ids_and_sources(minilm, tmp_path, run_inprocess):
    rows = [
        {"id": "kb-1", "text": "Bananas are yellow fruit rich in potassium.", "source": "f.pdf"},
        {"id": "kb-2", "text": "Rust is a systems programming language.", "lang": "en"},
    ]
    docs = tmp_path / "kb.jsonl"
    docs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = run_inprocess("index", _config(docs, minilm, tmp_path / "out"))
    reader = IndexReader(run.result["path"])
    hit = reader.query(["a tropical fruit"], 1)[0][0]
    assert (hit.doc_id, hit.source) == ("kb-1", "f.pdf")


def test_chunks_hold_at_most_size_tokens_and_overlap(minilm):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm)
    text = " ".join(f"word{i}" for i in range(200))
    chunks = chunk_document(Document("d", text, "d"), tokenizer, size=40, overlap=10)
    assert len(chunks) > 3
    for a, b in itertools.pairwise(chunks):
        assert len(tokenizer(a.text, add_special_tokens=False)["input_ids"]) <= 40
        assert a.text.split()[-1] in b.text
    assert chunks[-1].text.endswith("word199")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"chunking": {"size": 16, "overlap": 16}},
            "chunking: Value error, overlap (16) must be smaller",
        ),
        ({"index": {"type": "annoy"}}, "index.type: Input should be 'flat', 'hnsw' or 'ivf'"),
        ({"outputRoot": None}, "outputRoot: Input should be a valid string"),
    ],
)
def test_bad_index_config_exits_2_naming_the_field(
    handbook, minilm, tmp_path, run_worker, change, expected
):
    run = run_worker("index", _config(handbook, minilm, tmp_path, **change))
    assert run.returncode == 2
    assert expected in run.result["error"], run.result


def test_chunk_size_above_the_embedder_limit_is_capped_with_a_warning(
    handbook, minilm, tmp_path, run_inprocess
):
    config = _config(handbook, minilm, tmp_path, chunking={"size": 600, "overlap": 0})
    run = run_inprocess("index", config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "chunking.size 600 exceeds the embedder's limit of 510" in run.result["warnings"][0]
    manifest = json.loads((Path(run.result["path"]) / "manifest.json").read_text())
    assert manifest["chunking"]["effectiveSize"] == 510
    assert run.result["chunks"] == run.result["documents"]  # every short doc fits one chunk


def test_operator_shaped_config_with_documents_include_and_exact_version(
    handbook, minilm, tmp_path, run_inprocess
):
    config = _config(handbook, minilm, tmp_path, version=3, index={"type": "ivf", "ivfLists": 2})
    del config["documentsPath"]
    config["documents"] = {"uri": f"file://{handbook}", "include": ["**/*.md"]}
    run = run_inprocess("index", config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result["version"] == 3 and run.result["path"].endswith("/v3")
    assert run.result["documents"] == 5  # office-coffee.txt is not included
    assert run.result["index"]["nlist"] == 2


@pytest.mark.slow
def test_ray_tasks_embed_the_same_vectors_as_in_process(
    handbook, minilm, tmp_path, run_inprocess, ray_local
):
    local = run_inprocess("index", _config(handbook, minilm, tmp_path / "a", batchSize=4))
    ray_run = run_inprocess(
        "index", _config(handbook, minilm, tmp_path / "b", batchSize=4, parallelism="ray")
    )
    assert ray_run.returncode == 0, ray_run.stderr[-3000:]
    assert (
        json.loads((Path(ray_run.result["path"]) / "manifest.json").read_text())["embeddedWith"]
        == "ray"
    )
    a, b = IndexReader(local.result["path"]), IndexReader(ray_run.result["path"])
    qa, qb = a.index.reconstruct_n(0, a.index.ntotal), b.index.reconstruct_n(0, b.index.ntotal)
    np.testing.assert_allclose(qa, qb, atol=1e-5)


def test_embedder_fetched_from_the_hub_gives_its_digest_to_the_index(
    hub, handbook, tmp_path, run_inprocess
):
    fetch = run_inprocess(
        "fetch",
        {"source": {"uri": "hf://drover-local/all-minilm-l6-v2@main"},
         "cacheRoot": str(tmp_path / "models"), "name": "minilm", "hfEndpoint": hub.url},
    )  # fmt: skip
    assert fetch.returncode == 0, fetch.stderr[-3000:]
    assert (Path(fetch.result["path"]) / "1_Pooling" / "config.json").is_file()
    docs = "hf://datasets/drover-local/handbook@main"
    config = _config(handbook, fetch.result["path"], tmp_path / "index", hfEndpoint=hub.url)
    config["documentsPath"] = docs
    run = run_inprocess("index", config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result["embedderDigest"] == fetch.result["digest"]
    assert run.result["documents"] == 6
