"""Fixtures for builder tests: the examples as models, operator config, KubeRay schemas, goldens."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.api.api_support import to_json_schema

from drover.api.finetunejob import FineTuneJob
from drover.api.foundationmodel import FoundationModel
from drover.api.inferenceservice import InferenceService
from drover.api.vectorindex import VectorIndex
from drover.compat import KUBERAY_SCHEMAS_DIR
from drover.config import OperatorConfig

ROOT = Path(__file__).resolve().parents[3]
PIPELINE = ROOT / "examples" / "pipeline"
KUBERAY = ROOT.parent / "shared" / "vendor-schemas" / KUBERAY_SCHEMAS_DIR
GOLDEN = Path(__file__).parent / "golden"


# FoundationModel statuses once fetched: the base model and the embedder.
READY_BASE = {
    "phase": "Ready",
    "digest": "sha256:" + "ab" * 32,
    "cache": {"claimName": "tiny-llama-cache", "path": "tiny-llama/abababababab"},
}
READY_EMBEDDER = {
    "phase": "Ready",
    "digest": "sha256:" + "cd" * 32,
    "cache": {"claimName": "minilm-cache", "path": "minilm/cdcdcdcdcdcd"},
}


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((PIPELINE / name).read_text())
    doc["metadata"]["uid"] = "0a1b2c3d-0000-4000-8000-000000000000"
    return dict(doc)


@pytest.fixture
def base_model() -> FoundationModel:
    return FoundationModel.model_validate(load("00-base-model.yaml"))


@pytest.fixture
def embedder() -> FoundationModel:
    return FoundationModel.model_validate(load("01-embedder.yaml"))


@pytest.fixture
def finetune() -> FineTuneJob:
    return FineTuneJob.model_validate(load("02-finetune.yaml"))


@pytest.fixture
def index() -> VectorIndex:
    return VectorIndex.model_validate(load("03-index.yaml"))


@pytest.fixture
def service() -> InferenceService:
    return InferenceService.model_validate(load("04-service.yaml"))


@pytest.fixture
def config() -> OperatorConfig:
    return OperatorConfig.model_validate(
        {
            "acceleratorClasses": {
                "cpu": {"resourceName": ""},
                "nvidia-l4": {
                    "resourceName": "nvidia.com/gpu",
                    "memoryGiB": 24,
                    "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                },
            }
        }
    )


def kuberay_validator(kind_plural: str) -> Any:
    """jsonschema validator of a KubeRay v1 CRD (skips when the vendored schemas are absent)."""
    import jsonschema

    path = KUBERAY / f"ray.io_{kind_plural}.yaml"
    if not path.exists():
        pytest.skip(f"KubeRay CRDs not found at {KUBERAY}: the shared vendor schemas are absent")
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = to_json_schema(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft202012Validator(schema)


def assert_golden(name: str, manifest: Any) -> None:
    """Compare with tests/unit/builders/golden/<name>.yaml; DROVER_UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / f"{name}.yaml"
    text = yaml.safe_dump(json.loads(json.dumps(manifest)), sort_keys=True)
    if os.environ.get("DROVER_UPDATE_GOLDEN") == "1" or not path.exists():
        if os.environ.get("CI") and not path.exists():
            pytest.fail(f"golden file {path} is missing; run with DROVER_UPDATE_GOLDEN=1")
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file {path}"
