"""Names of the RayJobs and RayServices Drover builds: within KubeRay's rules for any valid name.

KubeRay v1.7.0, ray-operator/controllers/ray/utils/validation.go, ValidateRayJobMetadata and
ValidateRayServiceMetadata: at most 47 characters (utils/constant.go, MaxRayJobNameLength and
MaxRayServiceNameLength) and a DNS-1035 label. A Drover resource may have any DNS-1123 subdomain
of up to 63 characters as its name (dots, a leading digit); Kubernetes' own limit, 253, is tested
too, so lifting Drover's rule would not break its children.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from tests.unit.builders.conftest import load

from drover.api.finetunejob import FineTuneJob
from drover.api.foundationmodel import FoundationModel
from drover.api.inferenceservice import InferenceService
from drover.api.vectorindex import VectorIndex
from drover.builders.finetunejob import training_job_name
from drover.builders.foundationmodel import fetch_job_name
from drover.builders.names import KUBERAY_NAME_MAX, is_dns1035_label, kuberay_name
from drover.builders.serving import rayservice_name
from drover.builders.vectorindex import build_job_name
from drover_sandbox.rayexec.validation import (
    validate_rayjob_metadata,
    validate_rayservice_metadata,
)

LONG_LABEL = "a" * 63
NAMES = [
    "tiny-llama",
    "m" * 47,  # the case: a 47-character FoundationModel
    "m" * 46 + "x",
    "llama.3b",
    "llama-3b",
    "3b-model",
    "0",
    "a.b.c",
    "a-b-c",
    f"{LONG_LABEL}.{LONG_LABEL}.{LONG_LABEL}.{'b' * 61}",  # 253 characters
    f"{LONG_LABEL}.{LONG_LABEL}.{LONG_LABEL}.{'c' * 61}",
    "x" * 63 + ".tail",
    "x" * 63 + ".tale",
]


def _with_name(model: Any, name: str) -> Any:
    out = copy.deepcopy(model)
    out.metadata = {**out.metadata, "name": name}
    return out


def _rayjob_names() -> dict[str, Callable[[str], str]]:
    fm = FoundationModel.model_validate(load("00-base-model.yaml"))
    ft = FineTuneJob.model_validate(load("02-finetune.yaml"))
    vi = VectorIndex.model_validate(load("03-index.yaml"))
    return {
        "fetch": lambda n: fetch_job_name(_with_name(fm, n)),
        "train": lambda n: training_job_name(_with_name(ft, n)),
        "build": lambda n: build_job_name(_with_name(vi, n), 12, "0123456789ab"),
    }


def test_names_kuberay_accepts_stay_as_they_were() -> None:
    assert kuberay_name("tiny-llama", "fetch", "d5757cbb") == "tiny-llama-fetch-d5757cbb"
    assert kuberay_name("support-lora", "train") == "support-lora-train"
    assert kuberay_name("handbook", "build", "v1", "0a1b2c") == "handbook-build-v1-0a1b2c"
    assert kuberay_name("assistant") == "assistant"
    assert kuberay_name("a" * 47) == "a" * 47


@pytest.mark.parametrize("kind", ["fetch", "train", "build"])
def test_every_rayjob_name_is_one_kuberay_accepts_and_names_stay_distinct(kind: str) -> None:
    name_of = _rayjob_names()[kind]
    built = {name: name_of(name) for name in NAMES}
    for source, name in built.items():
        assert len(name) <= KUBERAY_NAME_MAX and is_dns1035_label(name), (source, name)
        assert validate_rayjob_metadata({"name": name}) is None, (source, name)
        assert kind in name  # the child still says what it is
    assert len(set(built.values())) == len(NAMES)


def test_every_rayservice_name_is_one_kuberay_accepts_and_names_stay_distinct() -> None:
    svc = InferenceService.model_validate(load("04-service.yaml"))
    built = {name: rayservice_name(_with_name(svc, name)) for name in NAMES}
    for source, name in built.items():
        assert validate_rayservice_metadata({"name": name}) is None, (source, name)
    assert len(set(built.values())) == len(NAMES)
    assert built["tiny-llama"] == "tiny-llama"


def test_a_derived_name_keeps_the_start_of_the_resource_name_and_its_suffix() -> None:
    name = kuberay_name("My.Model", "fetch", "d5757cbb")
    assert name.startswith("my-model-") and name.endswith("-fetch-d5757cbb")
    assert kuberay_name("3b-model", "train").startswith("d-3b-model-")
    long = kuberay_name("m" * 47, "fetch", "d5757cbb")
    assert long.startswith("m" * 20) and long.endswith("-fetch-d5757cbb") and len(long) == 47


def test_the_source_key_still_changes_the_fetch_job_name_of_a_long_model() -> None:
    a = kuberay_name("m" * 47, "fetch", "11111111")
    b = kuberay_name("m" * 47, "fetch", "22222222")
    assert a != b and len(a) == len(b) == 47
