"""Every example manifest is accepted by its generated CRD (schema + CEL) and by the models,
and the API server's defaulting agrees with the models' defaults."""

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


def test_examples_cover_every_kind_and_the_pipeline() -> None:
    kinds = {doc.values[0]["kind"] for doc in DOCS}
    assert kinds == set(CRDS)
    for kind in ("foundationmodel", "finetunejob", "vectorindex", "inferenceservice"):
        assert (EXAMPLES_DIR / f"{kind}.yaml").exists()
    steps = sorted(p.name for p in (EXAMPLES_DIR / "pipeline").glob("*.yaml"))
    assert [s[:3] for s in steps] == ["00-", "01-", "02-", "03-", "04-"]


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


def test_pipeline_references_resolve_within_the_pipeline() -> None:
    docs = [
        d for p in sorted((EXAMPLES_DIR / "pipeline").glob("*.yaml")) for d in load_documents(p)
    ]
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
    assert refs and all(r in names | produced for r in refs)
    embedders = [
        d for d in docs if d["kind"] == "FoundationModel" and d["spec"]["task"] == "embedding"
    ]
    assert embedders, "the pipeline needs an embedding model for its index"


def test_examples_stay_in_the_default_namespace() -> None:
    for path in example_files():
        for doc in load_documents(path):
            assert doc["metadata"].get("namespace", "default") == "default", Path(path).name
