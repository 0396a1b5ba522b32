"""The Ray executor refuses the RayJob and RayService names KubeRay v1.7.0 refuses, as it does.

Pure parts (no Ray, no control plane). Each test names the KubeRay function it copies
(ray-project/kuberay, ray-operator/controllers/ray/).
"""

from __future__ import annotations

import pytest
from sandbox.tests.local.helpers import NOW, assert_valid_status, rayjob, step

from drover_sandbox.rayexec import servestate
from drover_sandbox.rayexec.jobstate import Action
from drover_sandbox.rayexec.validation import (
    DNS1035_ERROR,
    validate_rayjob_metadata,
    validate_rayservice_metadata,
)

# -- names: utils/validation.go ValidateRayJobMetadata / ValidateRayServiceMetadata (v1.7.0),
#    with k8s.io/apimachinery validation.IsDNS1035Label; limits from utils/constant.go.


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "a" * 48,
            "The RayJob metadata is invalid: RayJob name should be no more than 47 characters",
        ),
        (
            "3b-model-fetch",
            f"The RayJob metadata is invalid: RayJob name should be a valid DNS1035 label: "
            f"[{DNS1035_ERROR}]",
        ),
        (
            "llama.3b-fetch",
            f"The RayJob metadata is invalid: RayJob name should be a valid DNS1035 label: "
            f"[{DNS1035_ERROR}]",
        ),
    ],
)
def test_a_rayjob_name_kuberay_refuses_is_validation_failed_with_its_message(
    name: str, message: str
) -> None:
    # rayjob_controller.go Reconcile → validateRayJob, before the state machine: on an error it
    # sets jobDeploymentStatus ValidationFailed, reason ValidationFailed, message err.Error(),
    # writes the status and creates nothing (no cluster, no submission).
    assert validate_rayjob_metadata({"name": name}) == message
    st, action = step(rayjob(name))
    assert (st["jobDeploymentStatus"], st["reason"], st["message"]) == (
        "ValidationFailed",
        "ValidationFailed",
        message,
    )
    assert action is Action.NONE and "jobId" not in st and "rayClusterName" not in st
    assert_valid_status("rayjobs", st)
    again, action = step(rayjob(name, st))  # checked on every pass; nothing moves
    assert again["jobDeploymentStatus"] == "ValidationFailed" and action is Action.NONE


def test_a_47_character_dns1035_rayjob_name_is_accepted() -> None:
    assert validate_rayjob_metadata({"name": "a" * 47}) is None
    st, _ = step(rayjob("a" * 47))
    assert st["jobDeploymentStatus"] == "Initializing"


def test_dns1035_message_is_apimachinerys_regex_error() -> None:
    # validation.go RegexError(dns1035LabelErrMsg, dns1035LabelFmt, "my-name", "abc-123").
    assert DNS1035_ERROR == (
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with"
        " an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or"
        " 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
    )
    assert validate_rayjob_metadata({"name": "ends-with-dash-"}) is not None
    assert validate_rayjob_metadata({"name": "Upper"}) is not None


def test_a_rayservice_name_kuberay_refuses_is_ready_false_validation_failed() -> None:
    # ValidateRayServiceMetadata's texts carry no "metadata is invalid" prefix; rayservice_
    # controller.go Reconcile → validateRayService then sets Ready=False, reason
    # ValidationFailed, message err.Error(), and deploys nothing.
    too_long = validate_rayservice_metadata({"name": "s" * 48})
    assert too_long == "RayService name should be no more than 47 characters"
    dotted = validate_rayservice_metadata({"name": "chat.v2"})
    assert dotted == f"RayService name should be a valid DNS1035 label: [{DNS1035_ERROR}]"
    assert validate_rayservice_metadata({"name": "s" * 47}) is None
    obj = {"metadata": {"name": "s" * 48, "namespace": "ns", "generation": 1}, "spec": {}}
    st = servestate.next_rayservice_status(obj, servestate.ServeApps(error=too_long), {}, now=NOW)
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "ValidationFailed",
        too_long,
    )
