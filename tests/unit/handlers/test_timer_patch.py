"""Timers write their own status patch (handlers.common.with_own_patch): a write the API refuses
becomes a TemporaryError, which kopf retries, instead of an exception out of kopf's own patch
after the timer, which ends that resource's timer for good (#16's API-fault chaos test found a
FineTuneJob never polled again after one 409 on its status)."""

from __future__ import annotations

from typing import Any

import kopf
import pytest
from kubernetes.client.exceptions import ApiException

from drover.handlers.common import with_own_patch
from drover.k8s import children

BODY = {"metadata": {"namespace": "ns", "name": "support-lora"}}


class FakeApi:
    def __init__(self, fail: int | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str, dict[str, Any], str]] = []

    def patch_namespaced_custom_object_status(self, g, v, ns, plural, name, body, **kw) -> None:
        if self.fail:
            raise ApiException(status=self.fail, reason="Conflict")
        self.calls.append(("status", name, body, kw["_content_type"]))

    def patch_namespaced_custom_object(self, g, v, ns, plural, name, body, **kw) -> None:
        self.calls.append(("object", name, body, kw["_content_type"]))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    monkeypatch.setattr(children.client, "CustomObjectsApi", lambda: fake)
    return fake


def test_a_timers_status_and_metadata_are_merge_patched_by_the_operator_itself(api) -> None:
    def reconcile(patch: kopf.Patch) -> None:
        patch.status["phase"] = "Ready"
        patch.status["progress"] = None  # a key removed: null in the merge patch
        patch.metadata.setdefault("annotations", {})["drover.dev/rollout"] = None

    with_own_patch("FineTuneJob", BODY, reconcile, retry=10)
    assert api.calls == [
        (
            "status",
            "support-lora",
            {"status": {"phase": "Ready", "progress": None}},
            "application/merge-patch+json",
        ),
        (
            "object",
            "support-lora",
            {"metadata": {"annotations": {"drover.dev/rollout": None}}},
            "application/merge-patch+json",
        ),
    ]


def test_a_refused_status_write_is_a_temporary_error_kopf_retries(api) -> None:
    api.fail = 409
    with pytest.raises(kopf.TemporaryError) as info:
        with_own_patch("FineTuneJob", BODY, lambda p: p.status.update(phase="Training"), retry=10)
    assert info.value.delay == 10
    assert "409" in str(info.value) and "support-lora" in str(info.value)


def test_nothing_is_written_when_the_timer_changed_nothing(api) -> None:
    api.fail = 500  # any call would raise
    with_own_patch("VectorIndex", BODY, lambda p: None, retry=10)
    assert api.calls == []


def test_a_resource_deleted_meanwhile_is_no_error(api) -> None:
    api.fail = 404
    with_own_patch("InferenceService", BODY, lambda p: p.status.update(phase="Ready"), retry=10)
