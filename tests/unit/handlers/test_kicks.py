"""Which objects a watch event makes the operator reconcile at once (handlers/kicks.py)."""

from __future__ import annotations

from typing import Any

import pytest

from drover.handlers.kicks import Kicks, controller_owner, fingerprint, index_entry, references

OWNER = {
    "apiVersion": "drover.dev/v1alpha1",
    "kind": "FoundationModel",
    "name": "tiny",
    "uid": "u-1",
    "controller": True,
}


def rayjob(status: dict[str, Any] | None = None, owners: list[Any] | None = None) -> dict[str, Any]:
    meta = {"name": "tiny-fetch", "namespace": "ns", "uid": "job-1"}
    meta["ownerReferences"] = [OWNER] if owners is None else owners
    return {"kind": "RayJob", "metadata": meta, "status": status or {}}


def test_kuberay_clocks_and_cluster_status_are_not_changes() -> None:
    # KubeRay rewrites lastUpdateTime / startTime and the Ray cluster's pod counts on its own
    # schedule (rayservice_controller.go calculateStatus, rayjob_controller.go); none of it is
    # read by Drover, so none of it may wake an owner.
    a = {"jobDeploymentStatus": "Running", "startTime": "t1", "rayClusterStatus": {"ready": 1}}
    b = {"jobDeploymentStatus": "Running", "startTime": "t2", "rayClusterStatus": {"ready": 2}}
    assert fingerprint("RayJob", a) == fingerprint("RayJob", b)
    c = {**b, "jobDeploymentStatus": "Complete"}
    assert fingerprint("RayJob", c) != fingerprint("RayJob", b)
    apps = {"activeServiceStatus": {"applicationStatuses": {"x": {"status": "DEPLOYING"}}}}
    running = {"activeServiceStatus": {"applicationStatuses": {"x": {"status": "RUNNING"}}}}
    assert fingerprint("RayService", apps) != fingerprint("RayService", running)
    assert fingerprint("RayService", {"lastUpdateTime": "t"}) == ""


def test_a_drover_resource_changes_only_by_what_dependents_read() -> None:
    fetching = {"phase": "Fetching", "conditions": [{"message": "3/10 MB"}]}
    progressed = {"phase": "Fetching", "conditions": [{"message": "7/10 MB"}]}
    assert fingerprint("FoundationModel", fetching) == fingerprint("FoundationModel", progressed)
    # Pending and Fetching both mean "not yet" to a service waiting for the model.
    assert fingerprint("FoundationModel", {"phase": "Pending"}) == fingerprint(
        "FoundationModel", fetching
    )
    assert fingerprint("FoundationModel", {"phase": "Failed"}) != fingerprint(
        "FoundationModel", fetching
    )
    ready = {"phase": "Ready", "digest": "sha256:ab"}
    assert fingerprint("FoundationModel", ready) != fingerprint("FoundationModel", progressed)
    assert fingerprint("VectorIndex", {"version": 2}) != fingerprint("VectorIndex", {"version": 3})


@pytest.mark.parametrize(
    ("event_type", "status", "kicked"),
    [
        (None, {"jobDeploymentStatus": "Complete"}, False),  # the listing: resume handlers read it
        ("ADDED", {}, False),  # just created, nothing to say yet
        ("ADDED", {"jobDeploymentStatus": "Complete"}, True),  # kopf batched ADDED with MODIFIED
        ("MODIFIED", {"jobDeploymentStatus": "Initializing"}, True),
    ],
)
def test_first_sight(event_type: str | None, status: dict[str, Any], kicked: bool) -> None:
    targets = Kicks().seen("RayJob", rayjob(status), event_type)
    assert targets == ([("FoundationModel", "ns", "tiny")] if kicked else [])


def test_changes_kick_the_owner_and_repeats_do_not() -> None:
    kicks = Kicks()
    assert kicks.seen("RayJob", rayjob({"jobDeploymentStatus": "Running"}), None) == []
    running = rayjob({"jobDeploymentStatus": "Running", "startTime": "later"})
    assert kicks.seen("RayJob", running, "MODIFIED") == []
    done = rayjob({"jobDeploymentStatus": "Complete"})
    assert kicks.seen("RayJob", done, "MODIFIED") == [("FoundationModel", "ns", "tiny")]
    assert kicks.seen("RayJob", done, "MODIFIED") == []
    assert kicks.seen("RayJob", done, "DELETED") == [("FoundationModel", "ns", "tiny")]
    assert len(kicks) == 0


def test_dependents_are_kicked_once_each_and_the_owner_first() -> None:
    kicks = Kicks()
    model = {
        "kind": "FoundationModel",
        "metadata": {"name": "tuned", "namespace": "ns", "uid": "m-1", "ownerReferences": []},
        "status": {"phase": "Ready", "digest": "sha256:ab"},
    }
    dependents = [("InferenceService", "ns", "bot"), ("InferenceService", "ns", "bot")]
    assert kicks.seen("FoundationModel", model, "MODIFIED", dependents) == [
        ("InferenceService", "ns", "bot")
    ]


@pytest.mark.parametrize(
    ("owners", "expected"),
    [
        ([OWNER], ("FoundationModel", "ns", "tiny")),
        ([{**OWNER, "controller": False}], None),  # an owner, not the controller
        ([{**OWNER, "apiVersion": "ray.io/v1", "kind": "RayCluster"}], None),  # not Drover's
        ([], None),
    ],
)
def test_controller_owner(owners: list[Any], expected: Any) -> None:
    assert controller_owner(rayjob(owners=owners)) == expected


def test_references_of_each_kind() -> None:
    svc = {
        "kind": "InferenceService",
        "metadata": {"name": "bot", "namespace": "ns"},
        "spec": {
            "model": {"name": "base"},
            "adapter": {"name": "lora"},
            "retrieval": {"vectorIndex": {"name": "docs"}},
        },
    }
    assert index_entry("InferenceService", svc) == {
        ("FoundationModel", "ns", "base"): ("InferenceService", "ns", "bot"),
        ("FoundationModel", "ns", "lora"): ("InferenceService", "ns", "bot"),
        ("VectorIndex", "ns", "docs"): ("InferenceService", "ns", "bot"),
    }
    assert references("FineTuneJob", {"spec": {"baseModel": {"name": "base"}}}) == [
        ("FoundationModel", "base")
    ]
    assert references("VectorIndex", {"spec": {"embeddingModel": {"name": "mini"}}}) == [
        ("FoundationModel", "mini")
    ]
    # An invalid spec (the API may hold one the operator reports) names nothing, raises nothing.
    assert references("InferenceService", {"spec": {"model": "base", "retrieval": []}}) == []


def test_a_poll_right_after_a_kick_is_skipped_and_a_later_one_is_not() -> None:
    kicks = Kicks()
    key = ("FoundationModel", "ns", "tiny")
    assert not kicks.kicked_within(key, now=100.0, seconds=10)
    kicks.kicked(key, when=100.0)
    assert kicks.kicked_within(key, now=105.0, seconds=10)
    assert not kicks.kicked_within(key, now=110.0, seconds=10)
    assert not kicks.kicked_within(("FoundationModel", "ns", "other"), now=105.0, seconds=10)
