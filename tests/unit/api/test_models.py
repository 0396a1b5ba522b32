"""The models as the operator uses them: URI parsing, manifest parsing with field-named errors,
statuses as the operator writes them (accepted by the CRDs too), and the kind registry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from api_support import load_crds, schema_errors

from drover.api import (
    KINDS,
    FineTuneJob,
    FoundationModel,
    InferenceService,
    InvalidResource,
    VectorIndex,
    parse_resource,
)
from drover.api.common import quantity_bytes
from drover.api.finetunejob import FineTuneMethod
from drover.api.foundationmodel import FoundationModelPhase, ModelTask
from drover.api.uris import ParsedUri, parse_source_uri

CRDS = load_crds()
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SHA = "sha256:" + "ab" * 32


def _manifest(kind: str, spec: dict, status: dict | None = None) -> dict:
    doc = {"apiVersion": "drover.dev/v1alpha1", "kind": kind, "metadata": {"name": "x"}}
    doc["spec"] = spec
    if status is not None:
        doc["status"] = status
    return doc


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("hf://org/name@v1.2", ParsedUri("hf", "org/name", "", "v1.2", "model")),
        ("hf://org/name", ParsedUri("hf", "org/name", "", "main", "model")),
        (
            "hf://datasets/org/data@main/train.jsonl",
            ParsedUri("hf", "org/data", "train.jsonl", "main", "dataset"),
        ),
        ("s3://corp-models/qwen/0.5b/", ParsedUri("s3", "corp-models", "qwen/0.5b/")),
        ("pvc://models/qwen", ParsedUri("pvc", "models", "qwen")),
        ("file:///srv/models/tiny", ParsedUri("file", "", "/srv/models/tiny")),
    ],
)
def test_parse_source_uri_splits_each_scheme(uri: str, parsed: ParsedUri) -> None:
    assert parse_source_uri(uri) == parsed


@pytest.mark.parametrize(
    ("uri", "fix"),
    [
        ("ftp://x/y", "use hf://org/name@revision"),
        ("file:/x", "use hf://org/name@revision"),
        ("hf://only-org", "write it as hf://org/name@revision"),
        ("pvc://Bad_Claim/x", "lower-case DNS-1123 claim name"),
        ("s3://ab", "bucket name of 3-63 characters"),
    ],
)
def test_parse_source_uri_refuses_saying_how_to_write_it(uri: str, fix: str) -> None:
    with pytest.raises(ValueError, match=fix):
        parse_source_uri(uri)


@pytest.mark.parametrize(
    ("quantity", "size"),
    [
        ("1000", 1000),
        ("64Mi", 64 * 2**20),
        ("4Gi", 4 * 2**30),
        ("1.5Gi", 3 * 2**29),
        ("2k", 2000),
        ("0.5M", 500_000),
        ("1Ti", 2**40),
    ],
)
def test_quantity_bytes_reads_decimal_and_binary_suffixes_exactly(quantity: str, size: int) -> None:
    assert quantity_bytes(quantity) == size


def test_quantity_bytes_refuses_what_the_schema_refuses() -> None:
    with pytest.raises(ValueError, match="write a size such as 512Mi"):
        quantity_bytes("64MB")


def test_parse_resource_returns_the_kind_model_with_defaults() -> None:
    model = parse_resource(
        _manifest("FineTuneJob", {"baseModel": {"name": "b"}, "dataset": {"uri": "s3://bkt/d"}})
    )
    assert isinstance(model, FineTuneJob)
    assert model.spec.method is FineTuneMethod.LORA
    assert model.spec.hyperparameters.learning_rate == pytest.approx(2e-4)
    assert model.spec.resources.workers == 1 and model.spec.resources.accelerator is None
    assert model.name == "x" and model.namespace is None


@pytest.mark.parametrize(
    ("doc", "path", "text"),
    [
        ({"apiVersion": "v1", "kind": "FoundationModel"}, "apiVersion", "drover.dev/v1alpha1"),
        ({"apiVersion": "drover.dev/v1alpha1", "kind": "Pod"}, "kind", "FoundationModel"),
    ],
)
def test_parse_resource_refuses_foreign_objects(doc: dict, path: str, text: str) -> None:
    with pytest.raises(InvalidResource) as caught:
        parse_resource(doc)
    assert caught.value.errors[0].path == path and text in caught.value.errors[0].message


def test_invalid_resource_lists_every_problem_once() -> None:
    doc = _manifest("InferenceService", {"replicas": {"min": -1}, "runtime": {"dtype": "int4"}})
    with pytest.raises(InvalidResource) as caught:
        parse_resource(doc)
    paths = [e.path for e in caught.value.errors]
    assert paths == ["spec.model", "spec.runtime.dtype", "spec.replicas.min"]
    assert str(caught.value).startswith("invalid InferenceService x: spec.model: required")


def test_secret_references_are_the_only_way_to_give_credentials() -> None:
    fields = FoundationModel.model_json_schema(by_alias=True)["$defs"]["ModelSource"]
    assert set(fields["properties"]) == {"uri", "credentialsSecretRef"}


def test_statuses_as_the_operator_writes_them_are_accepted_by_model_and_crd() -> None:
    condition = {
        "type": "Ready",
        "status": "True",
        "reason": "Cached",
        "message": "weights cached",
        "observedGeneration": 2,
        "lastTransitionTime": NOW.isoformat(),
    }
    docs = [
        _manifest(
            "FoundationModel",
            {"source": {"uri": "hf://org/m@main"}},
            {
                "phase": "Ready",
                "digest": SHA,
                "cache": {"claimName": "m-cache", "path": "/models/m/abab"},
                "sizeBytes": 988000000,
                "observedGeneration": 2,
                "conditions": [condition],
            },
        ),
        _manifest(
            "FineTuneJob",
            {"baseModel": {"name": "b"}, "dataset": {"uri": "s3://bkt/d"}},
            {
                "phase": "Succeeded",
                "progress": {"step": 900, "totalSteps": 900, "percent": 100, "loss": 0.8},
                "evaluation": {"loss": 0.9, "perplexity": 2.46, "rougeL": 0.41, "passed": True},
                "outputModel": {"name": "b-ft"},
                "lineage": {
                    "baseModel": "b",
                    "baseModelDigest": SHA,
                    "dataset": "s3://bkt/d",
                    "fineTuneJob": "x",
                    "method": "lora",
                },
                "completionTime": NOW.isoformat(),
            },
        ),
        _manifest(
            "VectorIndex",
            {"source": {"uri": "s3://bkt/docs/"}, "embeddingModel": {"name": "e"}},
            {"version": 3, "documents": 412, "chunks": 5230, "dimensions": 384, "phase": "Ready"},
        ),
        _manifest(
            "InferenceService",
            {"model": {"name": "m"}},
            {
                "url": "http://x.default.svc:8000",
                "stable": {"model": "m", "digest": SHA, "weight": 95, "ready": True, "replicas": 2},
                "canary": {"model": "m2", "digest": SHA, "weight": 5, "ready": True, "replicas": 1},
                "replicas": {"desired": 3, "current": 3, "ready": 3},
                "conditions": [condition],
            },
        ),
    ]
    for doc in docs:
        wire = parse_resource(doc).to_wire()
        assert wire["status"] == parse_resource(wire).to_wire()["status"]
        assert schema_errors(wire, CRDS[doc["kind"]]) == [], doc["kind"]


def test_status_condition_lookup_and_declared_ready_sub_conditions() -> None:
    doc = _manifest(
        "FoundationModel",
        {"source": {"uri": "hf://org/m"}},
        {"conditions": [{"type": "Fetched", "status": "False", "reason": "Fetching"}]},
    )
    model = parse_resource(doc)
    assert isinstance(model, FoundationModel) and model.status is not None
    fetched = model.status.condition("Fetched")
    assert fetched is not None and fetched.reason == "Fetching"
    assert model.status.condition("Ready") is None
    assert model.status.phase is None and FoundationModelPhase.READY == "Ready"
    for info in KINDS:
        assert info.status_model.ready_sub_conditions  # type: ignore[attr-defined]


def test_models_build_from_python_names_and_dump_camel_case() -> None:
    model = VectorIndex(
        metadata={"name": "h"},
        spec={"source": {"uri": "s3://bkt/docs"}, "embedding_model": {"name": "e"}},
    )
    wire = model.to_wire()
    assert wire["kind"] == "VectorIndex" and wire["apiVersion"] == "drover.dev/v1alpha1"
    assert wire["spec"]["embeddingModel"] == {"name": "e"}
    assert wire["spec"]["index"] == {"type": "hnsw", "metric": "cosine"}


def test_accelerator_class_is_spelled_class_on_the_wire() -> None:
    doc = _manifest("InferenceService", {"model": {"name": "m"}, "accelerator": {"class": "l4"}})
    model = parse_resource(doc)
    assert isinstance(model, InferenceService) and model.spec.accelerator is not None
    assert model.spec.accelerator.accelerator_class == "l4"
    assert model.to_wire()["spec"]["accelerator"] == {"class": "l4", "count": 1}


def test_embedding_task_is_a_model_task() -> None:
    doc = _manifest("FoundationModel", {"source": {"uri": "hf://o/e"}, "task": "embedding"})
    model = parse_resource(doc)
    assert isinstance(model, FoundationModel) and model.spec.task is ModelTask.EMBEDDING
