"""Each cross-field Rule says the same thing twice: its CEL (run by the API server, here by
cel-python on the API-server-defaulted object) and its Python check (run by the models) agree on
good and bad objects, and every rule of the four kinds is exercised both ways."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from api_support import apply_defaults, cel_holds
from pydantic import ValidationError

from drover.api import KINDS
from drover.api.base import ApiModel, Rule
from drover.api.crdgen import model_schema

DS = {"uri": "s3://corp-data/eval.jsonl"}
BASE_JOB = {"baseModel": {"name": "m"}, "dataset": {"uri": "s3://corp-data/train.jsonl"}}
CRED = {"name": "hf-token", "key": "token"}
MODEL = {"name": "m"}

# class name -> wire-form objects of that class, some satisfying its rules and some not.
SAMPLES: dict[str, list[dict[str, Any]]] = {
    "StorageSpec": [
        {},
        {"existingClaim": "models"},
        {"storageClassName": "fast"},
        {"existingClaim": "models", "storageClassName": "fast"},
    ],
    "ModelSource": [
        {"uri": "hf://org/name@main", "credentialsSecretRef": CRED},
        {"uri": "s3://bucket/prefix", "credentialsSecretRef": CRED},
        {"uri": "pvc://claim/path"},
        {"uri": "pvc://claim/path", "credentialsSecretRef": CRED},
        {"uri": "file:///models/x", "credentialsSecretRef": CRED},
    ],
    "Evaluation": [
        {"dataset": DS},
        {
            "dataset": DS,
            "metrics": ["bleu", "rougeL"],
            "thresholds": {"minBleu": 10, "minRougeL": 0.3},
        },
        {"dataset": DS, "thresholds": {"maxLoss": 2, "maxPerplexity": 5}},
        {"dataset": DS, "metrics": ["bleu"], "thresholds": {"maxLoss": 2}},
        {"dataset": DS, "metrics": ["loss"], "thresholds": {"maxPerplexity": 3}},
        {"dataset": DS, "metrics": ["loss"], "thresholds": {"minRougeL": 0.3}},
        {"dataset": DS, "metrics": ["loss"], "thresholds": {"minBleu": 1}},
    ],
    "FineTuneJobSpec": [
        BASE_JOB,
        {**BASE_JOB, "method": "lora", "lora": {}, "output": {"merge": True}},
        {**BASE_JOB, "method": "full"},
        {**BASE_JOB, "method": "continued-pretraining", "dataset": {**DS, "format": "text"}},
        {**BASE_JOB, "method": "full", "lora": {"rank": 4}},
        {**BASE_JOB, "method": "full", "output": {"merge": True}},
        {**BASE_JOB, "method": "continued-pretraining"},
    ],
    "Chunking": [{}, {"size": 100, "overlap": 99}, {"size": 100, "overlap": 100}, {"size": 32}],
    "IndexSpec": [
        {},
        {"type": "hnsw", "hnswM": 16},
        {"type": "ivf", "ivfLists": 10},
        {"type": "flat", "hnswM": 16},
        {"ivfLists": 4},
        {"type": "ivf", "hnswM": 8, "ivfLists": 3},
    ],
    "RuntimeSpec": [
        {},
        {"maxNumSeqs": 32, "maxConcurrentRequests": 32},
        {"maxNumSeqs": 64},
        {"maxNumSeqs": 2, "maxConcurrentRequests": 1},
        {"maxTokens": 100, "maxModelLen": 2048},
        {"maxTokens": 512, "maxModelLen": 512},
        {"maxModelLen": 256},
    ],
    "FeedbackSpec": [
        {},
        {"enabled": True, "storage": "pvc://feedback/support-bot"},
        {"enabled": False, "storage": "s3://corp-feedback/support-bot"},
        {"enabled": True},
        {"enabled": True, "storage": "file:///var/feedback"},
    ],
    "ReplicaBounds": [
        {},
        {"min": 0, "max": 1},
        {"min": 3, "max": 5},
        {"min": 2},
        {"min": 5, "max": 4},
    ],
    "InferenceServiceSpec": [
        {"model": MODEL},
        {
            "model": MODEL,
            "replicas": {"min": 0, "max": 2},
            "autoscaling": {"target": 4, "scaleToZero": {"enabled": True}},
        },
        {"model": MODEL, "replicas": {"min": 0, "max": 2}},
        {"model": MODEL, "replicas": {"min": 0, "max": 2}, "autoscaling": {"target": 4}},
        {"model": MODEL, "accelerator": {"class": "l4", "count": 2}},
        {
            "model": MODEL,
            "runtime": {"tensorParallelSize": 2},
            "accelerator": {"class": "l4", "count": 2},
        },
        {
            "model": MODEL,
            "runtime": {"tensorParallelSize": 2, "pipelineParallelSize": 2},
            "accelerator": {"class": "l4", "count": 4},
        },
        {"model": MODEL, "runtime": {"tensorParallelSize": 2}},
        {
            "model": MODEL,
            "runtime": {"tensorParallelSize": 4},
            "accelerator": {"class": "l4", "count": 2},
        },
        {"model": MODEL, "runtime": {"pipelineParallelSize": 2}, "accelerator": {"class": "l4"}},
    ],
    "AutoscalingSpec": [
        {"target": 1},
        {"target": 1, "windowSeconds": 60, "panic": {"windowSeconds": 60}},
        {"target": 1, "windowSeconds": 10},
        {"target": 1, "windowSeconds": 30, "panic": {"windowSeconds": 31}},
        {"slo": {"ttftSeconds": 2}},
        {"slo": {"ttftSeconds": 2}, "signal": "inFlightRequests"},
        {"target": 1, "slo": {"ttftSeconds": 2}},
        {},
        {"slo": {"ttftSeconds": 2}, "signal": "queueDepth"},
    ],
    "AnalysisMetric": [
        {"name": "errorRate", "max": 0.01},
        {"name": "latencyP95", "maxSeconds": 2},
        {"name": "evaluationPassRate", "min": 0.9},
        {"name": "ttftP95", "maxRelativeToStable": 1.5},
        {"name": "itlP95", "maxSeconds": 0.05},
        {"name": "itlP50", "max": 0.05},
        {"name": "errorRate"},
        {"name": "errorRate", "max": 0.1, "maxRelativeToStable": 2},
        {"name": "errorRate", "maxSeconds": 1},
        {"name": "latencyP95", "max": 0.5},
        {"name": "errorRate", "min": 0.5},
        {"name": "evaluationPassRate", "maxRelativeToStable": 1.5},
    ],
    "PromptExpectation": [
        {"contains": "refund"},
        {"reference": "Use the refund form.", "minRougeL": 0.3},
        {},
        {"contains": "refund", "minRougeL": 0.3},
    ],
    "RolloutSpec": [
        {},
        {"steps": [{"weight": 5}, {"weight": 50}, {"weight": 100}]},
        {"steps": [{"weight": 50}, {"weight": 10}]},
        {"steps": [{"weight": 10}, {"weight": 10}]},
        {"steps": [{"weight": w} for w in range(1, 21)]},
        {"steps": [*({"weight": w} for w in range(1, 20)), {"weight": 19}]},
    ],
    "RetrainingSpec": [
        {"template": BASE_JOB},
        {"template": BASE_JOB, "onDrift": False, "scheduleSeconds": 86400},
        {"template": BASE_JOB, "scheduleSeconds": 3600},
        {"template": BASE_JOB, "onDrift": False},
    ],
}


def _models_in(annotation: Any) -> list[type[ApiModel]]:
    if isinstance(annotation, type) and issubclass(annotation, ApiModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _reachable() -> dict[str, type[ApiModel]]:
    seen: dict[str, type[ApiModel]] = {}
    todo: list[type[ApiModel]] = [m for i in KINDS for m in (i.spec_model, i.status_model)]
    while todo:
        model = todo.pop()
        if model.__name__ in seen:
            continue
        seen[model.__name__] = model
        for field in model.model_fields.values():
            todo += _models_in(field.annotation)
    return seen


REACHABLE = _reachable()
RULED = {name: m for name, m in REACHABLE.items() if m.__dict__.get("__rules__")}
CASES = [
    pytest.param(RULED[name], rule, obj, id=f"{name}-{i}-{j}")
    for name, objs in SAMPLES.items()
    if name in RULED
    for i, rule in enumerate(RULED[name].__dict__["__rules__"])
    for j, obj in enumerate(objs)
]


def _python_holds(model: type[ApiModel], rule: Rule, obj: dict[str, Any]) -> bool:
    try:
        model.model_validate(obj)
    except ValidationError as exc:
        errors = exc.errors()
        # The samples are valid field by field: only this class's own rules may fail.
        assert all(e["type"] == "drover_rule" and e["loc"] == () for e in errors), errors
        return all(e["msg"] != rule.message for e in errors)
    return True


def test_every_class_with_rules_in_the_four_kinds_has_samples() -> None:
    assert set(RULED) <= set(SAMPLES), set(RULED) - set(SAMPLES)
    assert isinstance(REACHABLE["InferenceServiceSpec"], type)


@pytest.mark.parametrize(("model", "rule", "obj"), CASES)
def test_cel_and_python_agree(model: type[ApiModel], rule: Rule, obj: dict[str, Any]) -> None:
    schema = model_schema(model)
    by_cel = cel_holds(rule.cel, apply_defaults(obj, schema), schema)
    assert by_cel == _python_holds(model, rule, obj)


@pytest.mark.parametrize("name", sorted(RULED))
def test_every_rule_is_seen_both_holding_and_violated(name: str) -> None:
    model = RULED[name]
    for rule in model.__dict__["__rules__"]:
        outcomes = {_python_holds(model, rule, obj) for obj in SAMPLES[name]}
        assert outcomes == {True, False}, rule.message


def test_rule_messages_are_distinct_within_a_class() -> None:
    for model in RULED.values():
        messages = [r.message for r in model.__dict__["__rules__"]]
        assert len(messages) == len(set(messages)), model.__name__
