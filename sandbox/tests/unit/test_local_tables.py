"""Server-side tables for kubectl get: printer columns, JSONPath cells and kubectl ages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drover_sandbox.apiserver.tables import build_table, human_duration, jsonpath_values

NOW = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
OBJ = {
    "apiVersion": "drover.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "bot", "namespace": "d", "creationTimestamp": "2026-01-10T11:56:58Z"},
    "spec": {"replicas": {"min": 2}},
    "status": {
        "stable": {"weight": 90},
        "conditions": [
            {"type": "Progressing", "status": "False"},
            {"type": "Ready", "status": "True"},
        ],
    },
}
COLUMNS = [
    {"name": "Min", "type": "integer", "jsonPath": ".spec.replicas.min"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.stable.weight", "priority": 1},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Missing", "type": "string", "jsonPath": ".status.nope"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"), (5, "5s"), (119, "119s"), (182, "3m2s"), (180, "3m"), (600, "10m"),
        (3 * 3600 + 5 * 60, "3h5m"), (10 * 3600, "10h"), (2 * 86400 + 3 * 3600, "2d3h"),
        (9 * 86400, "9d"), (3 * 365 * 86400 + 10 * 86400, "3y10d"), (9 * 365 * 86400, "9y"),
        (-1, "0s"), (-5, "<invalid>"),
    ],
)  # fmt: skip
def test_human_duration_matches_kubectl(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_jsonpath_fields_filters_indexes_and_wildcards() -> None:
    assert jsonpath_values(OBJ, ".spec.replicas.min") == [2]
    assert jsonpath_values(OBJ, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert jsonpath_values(OBJ, ".status.conditions[0].type") == ["Progressing"]
    assert jsonpath_values(OBJ, ".status.conditions[*].type") == ["Progressing", "Ready"]
    assert jsonpath_values(OBJ, "{.metadata['name']}") == ["bot"]
    assert jsonpath_values(OBJ, ".status.nope") == []


def test_table_with_printer_columns() -> None:
    table = build_table([OBJ], COLUMNS, now=NOW, list_meta={"resourceVersion": "7"})
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "7"}
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Min", "Weight", "Ready", "Missing", "Age",
    ]  # fmt: skip
    assert table["columnDefinitions"][0]["format"] == "name"
    assert table["columnDefinitions"][2]["priority"] == 1
    assert table["rows"][0]["cells"] == ["bot", 2, 90, "True", None, "3m2s"]


def test_rows_carry_partial_object_metadata_by_default() -> None:
    row = build_table([OBJ], COLUMNS, now=NOW, list_meta={})["rows"][0]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": OBJ["metadata"],
    }
    assert (
        "object"
        not in build_table([OBJ], COLUMNS, now=NOW, list_meta={}, include_object="None")["rows"][0]
    )
    assert (
        build_table([OBJ], None, now=NOW, list_meta={}, include_object="Object")["rows"][0][
            "object"
        ]
        is OBJ
    )


def test_default_columns_are_name_and_age() -> None:
    table = build_table([OBJ], None, now=NOW, list_meta={})
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["rows"][0]["cells"] == ["bot", "3m2s"]


def test_now_may_be_an_rfc3339_string() -> None:
    table = build_table([OBJ], None, now="2026-01-10T12:00:05Z", list_meta={})
    assert table["rows"][0]["cells"] == ["bot", "3m7s"]


def test_non_scalar_cells_are_json() -> None:
    columns = [{"name": "Stable", "type": "string", "jsonPath": ".status.stable"}]
    assert (
        build_table([OBJ], columns, now=NOW, list_meta={})["rows"][0]["cells"][1] == '{"weight":90}'
    )


def _names(table: dict) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"]]


def test_pods_get_kubes_columns() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "creationTimestamp": "2026-01-10T11:59:55Z"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.5",
            "containerStatuses": [
                {"name": "a", "ready": True, "restartCount": 2, "state": {"running": {}}},
                {"name": "b", "ready": False, "restartCount": 1,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ],
        },
    }  # fmt: skip
    table = build_table([pod], [], now=NOW, list_meta={})
    assert _names(table)[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table["rows"][0]["cells"][:7] == [
        "p", "1/2", "CrashLoopBackOff", "3", "5s", "10.0.0.5", "n1",
    ]  # fmt: skip
    assert [c["priority"] for c in table["columnDefinitions"]][5:] == [1, 1, 1, 1]


def test_deployments_jobs_and_configmaps_get_kubes_columns() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "creationTimestamp": "2026-01-10T10:00:00Z"},
        "spec": {
            "replicas": 3,
            "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    table = build_table([deployment], None, now=NOW, list_meta={})
    assert _names(table)[:5] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert table["rows"][0]["cells"][:5] == ["d", "2/3", 3, 2, "120m"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "creationTimestamp": "2026-01-10T11:50:00Z"},
        "spec": {"completions": 1},
        "status": {
            "succeeded": 1,
            "startTime": "2026-01-10T11:50:00Z",
            "completionTime": "2026-01-10T11:50:42Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }
    table = build_table([job], None, now=NOW, list_meta={})
    assert _names(table) == ["Name", "Status", "Completions", "Duration", "Age"]
    assert table["rows"][0]["cells"] == ["j", "Complete", "1/1", "42s", "10m"]
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    table = build_table([cm], None, now=NOW, list_meta={})
    assert table["rows"][0]["cells"] == ["c", 1, "<unknown>"]


def test_events_lead_with_last_seen() -> None:
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "bot.1"},
        "involvedObject": {"kind": "InferenceService", "name": "bot"},
        "reason": "Scaled",
        "type": "Normal",
        "message": "replicas 2→4",
        "lastTimestamp": "2026-01-10T11:59:00Z",
    }
    table = build_table([event], None, now=NOW, list_meta={})
    assert _names(table)[:4] == ["Last Seen", "Type", "Reason", "Object"]
    cells = table["rows"][0]["cells"]
    assert cells[:4] == ["60s", "Normal", "Scaled", "inferenceservice/bot"]
    assert cells[6] == "replicas 2→4"


def test_crds_show_created_at() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": "foundationmodels.drover.dev",
            "creationTimestamp": "2026-01-10T11:00:00Z",
        },
    }
    table = build_table([crd], None, now=NOW, list_meta={})
    assert _names(table) == ["Name", "Created At"]
    assert table["rows"][0]["cells"] == ["foundationmodels.drover.dev", "2026-01-10T11:00:00Z"]


def test_custom_resources_with_builtin_kind_names_keep_default_columns() -> None:
    job = {"apiVersion": "example.com/v1", "kind": "Job", "metadata": {"name": "x"}}
    assert _names(build_table([job], None, now=NOW, list_meta={})) == ["Name", "Age"]
