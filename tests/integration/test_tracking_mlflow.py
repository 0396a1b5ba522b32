"""A fine-tune's output registered in a real MLflow server's model registry (REST, as the
operator does it): once per output, with its lineage, and a clear error when MLflow is away."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from drover.api.finetunejob import FineTuneJob
from drover.api.foundationmodel import FoundationModel
from drover.builders.finetunejob import build_output_model
from drover.config import OperatorConfig
from drover.handlers.finetunejob import _tracking_status
from drover.k8s.tracking import TrackingError, register_model_version

ROOT = Path(__file__).resolve().parents[2]
BASE_STATUS = {"digest": "sha256:base", "cache": {"claimName": "tiny-llama-cache", "path": "m"}}


def _load(name: str, model: type) -> object:
    return model.model_validate(yaml.safe_load((ROOT / "examples/pipeline" / name).read_text()))


def test_the_output_is_registered_once_with_its_lineage(mlflow_server: str) -> None:
    from mlflow.tracking import MlflowClient

    job = _load("02-finetune.yaml", FineTuneJob)
    base = _load("00-base-model.yaml", FoundationModel)
    run = MlflowClient(tracking_uri=mlflow_server).create_run("0", run_name="default/support-lora")
    result = {"digest": "sha256:out", "tracking": {"runId": run.info.run_id, "experimentId": "0"}}
    output = build_output_model(job, base, BASE_STATUS, result)
    config = OperatorConfig.model_validate({"tracking": {"mlflowUri": mlflow_server}})
    log = logging.getLogger("test")
    status = _tracking_status(job, base, BASE_STATUS, output, result, {}, config, log)
    tracking = status["tracking"]
    assert tracking["registeredModel"] == "default.tiny-llama"
    assert tracking["runId"] == run.info.run_id
    # A poll after a crash that lost the status write registers nothing twice.
    again = _tracking_status(job, base, BASE_STATUS, output, result, {}, config, log)
    assert again["tracking"]["modelVersion"] == tracking["modelVersion"]
    # Once recorded, status is the answer; MLflow is not asked again.
    unreachable = OperatorConfig.model_validate({"tracking": {"mlflowUri": "http://127.0.0.1:9"}})
    kept = _tracking_status(job, base, BASE_STATUS, output, result, status, unreachable, log)
    assert kept == status
    version = MlflowClient(tracking_uri=mlflow_server).get_model_version(
        "default.tiny-llama", tracking["modelVersion"]
    )
    assert version.source == output["spec"]["source"]["uri"]
    assert version.run_id == run.info.run_id
    assert version.tags["drover.dev/foundationmodel"] == "tiny-llama-support"
    assert version.tags["drover.dev/base-digest"] == "sha256:base"
    assert version.tags["drover.dev/digest"] == "sha256:out"


def test_a_second_output_is_the_next_version(mlflow_server: str) -> None:
    first = register_model_version(
        mlflow_server, "team.base", source="pvc://c/a", run_id=None, tags={}
    )
    second = register_model_version(
        mlflow_server, "team.base", source="pvc://c/b", run_id=None, tags={}
    )
    assert int(second) == int(first) + 1


def test_no_tracking_without_a_run_or_a_server(mlflow_server: str) -> None:
    job = _load("02-finetune.yaml", FineTuneJob)
    base = _load("00-base-model.yaml", FoundationModel)
    output = build_output_model(job, base, BASE_STATUS, {"digest": "d"})
    log = logging.getLogger("test")
    on = OperatorConfig.model_validate({"tracking": {"mlflowUri": mlflow_server}})
    assert _tracking_status(job, base, BASE_STATUS, output, {}, {}, on, log) == {}
    off = OperatorConfig()
    tracked = {"tracking": {"runId": "r"}}
    assert _tracking_status(job, base, BASE_STATUS, output, tracked, {}, off, log) == {}


def test_an_unreachable_server_is_an_error_naming_it() -> None:
    with pytest.raises(TrackingError, match=r"127\.0\.0\.1:9 unreachable"):
        register_model_version("http://127.0.0.1:9", "x", source="s", run_id=None, tags={})
