"""Every example manifest is accepted by its generated CRD (schema + CEL) and by the models,
and the API server's defaulting agrees with the models' defaults. The two chains are checked as
chains: examples/pipeline/ (the local stack's, run by `make demo` and the e2e tests) and
examples/cluster/ (the quick start on kind: real hub models, checked here and by the builder
tests, never run on these machines)."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import (
    EXAMPLES_DIR,
    apply_defaults,
    cel_violations,
    example_files,
    load_crds,
    load_documents,
    root_schema,
    schema_errors,
)

from drover.api import parse_resource

CRDS = load_crds()
DOCS = [
    pytest.param(doc, id=f"{path.relative_to(EXAMPLES_DIR)}#{i}")
    for path in example_files()
    for i, doc in enumerate(load_documents(path))
]


# The whole-chain examples: numbered steps, each chain on its own covering every kind.
CHAINS = ("pipeline", "cluster")


def chain_documents(chain: str) -> list[dict]:
    return [d for p in sorted((EXAMPLES_DIR / chain).glob("*.yaml")) for d in load_documents(p)]


def test_examples_cover_every_kind_and_the_chains() -> None:
    kinds = {doc.values[0]["kind"] for doc in DOCS}
    assert kinds == set(CRDS)
    for kind in ("foundationmodel", "finetunejob", "vectorindex", "inferenceservice"):
        assert (EXAMPLES_DIR / f"{kind}.yaml").exists()
    for chain in CHAINS:
        steps = sorted(p.name for p in (EXAMPLES_DIR / chain).glob("*.yaml"))
        assert [s[:3] for s in steps] == ["00-", "01-", "02-", "03-", "04-"], chain
        assert {d["kind"] for d in chain_documents(chain)} == set(CRDS), chain


@pytest.mark.parametrize("doc", DOCS)
def test_example_passes_crd_schema_before_and_after_defaulting(doc: dict) -> None:
    crd = CRDS[doc["kind"]]
    assert schema_errors(doc, crd) == []
    assert schema_errors(apply_defaults(doc, root_schema(crd)), crd) == []


@pytest.mark.parametrize("doc", DOCS)
def test_example_passes_crd_cel_rules(doc: dict) -> None:
    schema = root_schema(CRDS[doc["kind"]])
    assert cel_violations(apply_defaults(doc, schema), schema) == []


@pytest.mark.parametrize("doc", DOCS)
def test_api_server_defaults_equal_model_defaults(doc: dict) -> None:
    schema = root_schema(CRDS[doc["kind"]])
    defaulted = apply_defaults(doc, schema)
    model = parse_resource(doc)
    assert model.to_wire()["spec"] == defaulted["spec"]


@pytest.mark.parametrize("doc", DOCS)
def test_model_output_is_accepted_by_its_crd(doc: dict) -> None:
    wire = parse_resource(doc).to_wire()
    assert schema_errors(wire, CRDS[doc["kind"]]) == []


@pytest.mark.parametrize("chain", CHAINS)
def test_chain_references_resolve_within_the_chain(chain: str) -> None:
    docs = chain_documents(chain)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    produced = {
        ("FoundationModel", d["spec"]["output"]["modelName"])
        for d in docs
        if d["kind"] == "FineTuneJob"
    }
    refs = []
    for d in docs:
        spec = d["spec"]
        if d["kind"] == "FineTuneJob":
            refs.append(("FoundationModel", spec["baseModel"]["name"]))
        if d["kind"] == "VectorIndex":
            refs.append(("FoundationModel", spec["embeddingModel"]["name"]))
        if d["kind"] == "InferenceService":
            refs.append(("FoundationModel", spec["model"]["name"]))
            refs.append(("VectorIndex", spec["retrieval"]["vectorIndex"]["name"]))
            if "adapter" in spec:
                refs.append(("FoundationModel", spec["adapter"]["name"]))
    assert refs and all(r in names | produced for r in refs)
    embedders = [
        d for d in docs if d["kind"] == "FoundationModel" and d["spec"]["task"] == "embedding"
    ]
    assert embedders, f"the {chain} chain needs an embedding model for its index"


def test_examples_stay_in_the_default_namespace() -> None:
    for path in example_files():
        for doc in load_documents(path):
            assert doc["metadata"].get("namespace", "default") == "default", Path(path).name


def _hub_uris(docs: list[dict]) -> list[str]:
    """Every hf:// URI the documents fetch: model sources, datasets and documents."""
    uris = []
    for d in docs:
        spec = d["spec"]
        uris += [spec.get("source", {}).get("uri", "")]
        uris += [spec.get("dataset", {}).get("uri", "")]
        uris += [(spec.get("evaluation") or {}).get("dataset", {}).get("uri", "")]
    return [u for u in uris if u.startswith("hf://")]


def test_the_pipeline_uses_the_local_hub_and_the_cluster_chain_the_real_one() -> None:
    # The local stack's hub serves drover-local/* only: the cluster chain (real hub models such
    # as Qwen) must never be what `make demo` or the e2e tests apply, and vice versa.
    local = _hub_uris(chain_documents("pipeline"))
    real = _hub_uris(chain_documents("cluster"))
    assert local and all("/drover-local/" in u for u in local)
    assert real and not any("drover-local" in u for u in real)
    assert "hf://Qwen/Qwen2.5-0.5B-Instruct@main" in real


def test_the_chains_can_share_a_namespace() -> None:
    pipeline, cluster = (
        {(d["kind"], d["metadata"]["name"]) for d in chain_documents(c)} for c in CHAINS
    )
    produced = {
        ("FoundationModel", d["spec"]["output"]["modelName"])
        for c in CHAINS
        for d in chain_documents(c)
        if d["kind"] == "FineTuneJob"
    }
    assert not pipeline & cluster
    assert not produced & (pipeline | cluster)


def test_the_cluster_chain_fits_one_kind_node_on_the_charts_default_classes() -> None:
    # kind's default StorageClass (rancher local-path) offers ReadWriteOnce only, and the chart
    # installs the cpu accelerator class alone.
    from drover.config import OperatorConfig

    classes = set(OperatorConfig().accelerator_classes)
    for d in chain_documents("cluster"):
        spec, name = d["spec"], d["metadata"]["name"]
        for storage in (spec.get("cache"), spec.get("storage")):
            if storage is not None:
                assert storage.get("accessMode", "ReadWriteOnce") == "ReadWriteOnce", name
        requests = [spec.get("accelerator"), spec.get("resources", {}).get("accelerator")]
        assert {r["class"] for r in requests if r} <= classes, name
        if d["kind"] == "FineTuneJob":
            assert spec["resources"]["workers"] == 1, name
