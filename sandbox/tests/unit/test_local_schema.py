"""Structural schema validation, defaulting and pruning answer like kube-apiserver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from drover_sandbox.apiserver.schema import apply_defaults, prune, validate

ROOT = Path(__file__).resolve().parents[3]

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 5}}},
        "spec": {
            "type": "object",
            "required": ["source"],
            "properties": {
                "task": {"type": "string", "enum": ["text-generation", "embedding"]},
                "replicas": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "min": {"type": "integer", "minimum": 0, "default": 1},
                        "max": {"type": "integer", "maximum": 10, "exclusiveMaximum": True},
                    },
                },
                "weight": {"type": "number", "minimum": 0.5},
                "source": {
                    "type": "object",
                    "required": ["uri"],
                    "properties": {"uri": {"type": "string", "pattern": "^(hf|s3)://"}},
                },
                "name": {"type": "string", "minLength": 2, "maxLength": 4},
                "port": {"x-kubernetes-int-or-string": True},
                "when": {"type": "string", "format": "date-time"},
                "tags": {
                    "type": "array",
                    "maxItems": 3,
                    "minItems": 1,
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                },
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                    },
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "note": {"type": "string", "nullable": True},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {
                        "spec": {"type": "object", "properties": {"a": {"type": "string"}}}
                    },
                },
                "count32": {"type": "integer", "format": "int32"},
            },
        },
    },
}


def _messages(obj: dict[str, Any]) -> list[str]:
    return [str(c) for c in validate(obj, SCHEMA)]


def _spec(**spec: Any) -> dict[str, Any]:
    return {"spec": {"source": {"uri": "hf://m"}, **spec}}


def test_valid_object_has_no_causes() -> None:
    assert _messages(_spec(task="embedding", replicas={"min": 0, "max": 9})) == []


def test_minimum_violation_prints_value_and_bound() -> None:
    assert _messages(_spec(replicas={"min": -1})) == [
        "spec.replicas.min: Invalid value: -1: spec.replicas.min in body should be greater "
        "than or equal to 0"
    ]


def test_exclusive_maximum_violation() -> None:
    assert _messages(_spec(replicas={"max": 10})) == [
        "spec.replicas.max: Invalid value: 10: spec.replicas.max in body should be less than 10"
    ]


def test_number_bounds_print_floats_like_go() -> None:
    assert _messages(_spec(weight=0.25)) == [
        "spec.weight: Invalid value: 0.25: spec.weight in body should be greater than or "
        "equal to 0.5"
    ]


def test_enum_violation_lists_supported_values() -> None:
    causes = validate(_spec(task="x"), SCHEMA)
    assert [str(c) for c in causes] == [
        'spec.task: Unsupported value: "x": supported values: "text-generation", "embedding"'
    ]
    assert causes[0].reason == "FieldValueNotSupported"


def test_missing_required_field_is_required_value() -> None:
    causes = validate({"spec": {"source": {}}}, SCHEMA)
    assert [str(c) for c in causes] == ["spec.source.uri: Required value"]
    assert causes[0].reason == "FieldValueRequired"


def test_wrong_type_reports_actual_type() -> None:
    causes = validate(_spec(replicas={"min": "string"}), SCHEMA)
    assert [str(c) for c in causes] == [
        'spec.replicas.min: Invalid value: "string": spec.replicas.min in body must be of type '
        'integer: "string"'
    ]
    assert causes[0].reason == "FieldValueTypeInvalid"


def test_integer_rejects_fractions_but_accepts_whole_floats() -> None:
    assert _messages(_spec(replicas={"min": 2.0})) == []
    assert _messages(_spec(replicas={"min": 1.5})) == [
        'spec.replicas.min: Invalid value: "number": spec.replicas.min in body must be of type '
        'integer: "number"'
    ]


def test_booleans_are_not_integers() -> None:
    assert "must be of type integer" in _messages(_spec(replicas={"min": True}))[0]


def test_number_accepts_integers() -> None:
    assert _messages(_spec(weight=3)) == []


def test_string_length_limits() -> None:
    assert _messages(_spec(name="abcdef")) == ["spec.name: Too long: may not be more than 4 bytes"]
    assert _messages(_spec(name="a")) == [
        'spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long'
    ]


def test_pattern_violation_quotes_the_pattern() -> None:
    assert _messages({"spec": {"source": {"uri": "ftp://x"}}}) == [
        'spec.source.uri: Invalid value: "ftp://x": spec.source.uri in body should match '
        "'^(hf|s3)://'"
    ]


def test_int_or_string_accepts_both_and_rejects_others() -> None:
    assert _messages(_spec(port=80)) == []
    assert _messages(_spec(port="http")) == []
    assert _messages(_spec(port=1.5)) == [
        'spec.port: Invalid value: "number": spec.port in body must be of type integer,string: '
        '"number"'
    ]


def test_date_time_format() -> None:
    assert _messages(_spec(when="2026-01-02T03:04:05Z")) == []
    assert _messages(_spec(when="yesterday")) == [
        'spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: '
        '"yesterday"'
    ]


def test_int32_format_range() -> None:
    assert _messages(_spec(count32=2**31)) != []
    assert _messages(_spec(count32=2**31 - 1)) == []


def test_array_item_counts() -> None:
    assert _messages(_spec(tags=["a", "b", "c", "d"])) == [
        "spec.tags: Too many: 4: must have at most 3 items"
    ]
    assert _messages(_spec(tags=[])) == [
        "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"
    ]


def test_set_list_duplicates_are_duplicate_values() -> None:
    causes = validate(_spec(tags=["a", "a"]), SCHEMA)
    assert [str(c) for c in causes] == ['spec.tags[1]: Duplicate value: "a"']
    assert causes[0].reason == "FieldValueDuplicate"


def test_map_list_duplicate_keys() -> None:
    causes = validate(_spec(ports=[{"name": "a", "port": 1}, {"name": "a", "port": 2}]), SCHEMA)
    assert [c.field for c in causes] == ["spec.ports[1]"]
    assert causes[0].reason == "FieldValueDuplicate"


def test_list_items_are_validated_with_index_paths() -> None:
    assert _messages(_spec(ports=[{"name": "a", "port": "x"}])) == [
        'spec.ports[0].port: Invalid value: "string": spec.ports[0].port in body must be of '
        'type integer: "string"'
    ]


def test_additional_properties_validate_map_values() -> None:
    assert _messages(_spec(labels={"a": "b", "c": 1})) == [
        'spec.labels.c: Invalid value: "integer": spec.labels.c in body must be of type '
        'string: "integer"'
    ]


def test_nullable_allows_null_and_non_nullable_rejects_it() -> None:
    assert _messages(_spec(note=None)) == []
    assert "must be of type string" in _messages(_spec(name=None))[0]


def test_embedded_resource_needs_api_version_and_kind() -> None:
    assert _messages(_spec(template={"metadata": {}})) == [
        "spec.template.apiVersion: Required value: must not be empty",
        "spec.template.kind: Required value: must not be empty",
    ]


def test_metadata_name_constraint_from_schema_applies() -> None:
    obj = {"metadata": {"name": "toolong"}, **_spec()}
    assert _messages(obj) == ["metadata.name: Too long: may not be more than 5 bytes"]


def test_root_prefixes_paths() -> None:
    causes = validate({"uri": 3}, SCHEMA["properties"]["spec"]["properties"]["source"], root="x")
    assert [c.field for c in causes] == ["x.uri"]


def test_defaults_fill_missing_fields_recursively() -> None:
    result = apply_defaults({"spec": {}}, SCHEMA)
    assert result["spec"]["replicas"] == {"min": 1}


def test_defaults_do_not_override_given_values_or_mutate_input() -> None:
    obj = {"spec": {"replicas": {"min": 4}}}
    result = apply_defaults(obj, SCHEMA)
    assert result["spec"]["replicas"] == {"min": 4}
    assert obj == {"spec": {"replicas": {"min": 4}}}
    assert apply_defaults({"spec": {"replicas": {}}}, SCHEMA)["spec"]["replicas"] == {"min": 1}


def test_defaults_replace_null_for_non_nullable_fields() -> None:
    result = apply_defaults({"spec": {"replicas": {"min": None}}}, SCHEMA)
    assert result["spec"]["replicas"]["min"] == 1


def test_defaults_apply_inside_list_items() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"w": {"type": "integer", "default": 7}}},
            }
        },
    }
    assert apply_defaults({"items": [{}, {"w": 1}]}, schema) == {"items": [{"w": 7}, {"w": 1}]}


def test_prune_drops_unknown_fields_and_reports_paths() -> None:
    obj = {
        "apiVersion": "drover.dev/v1alpha1",
        "kind": "FoundationModel",
        "metadata": {"name": "x", "bogus": 1},
        "spec": {"source": {"uri": "hf://m", "foo": 1}, "foo": 2, "ports": [{"name": "a", "z": 1}]},
        "status2": {},
    }
    pruned, dropped = prune(obj, SCHEMA)
    assert dropped == [
        "metadata.bogus",
        "spec.source.foo",
        "spec.foo",
        "spec.ports[0].z",
        "status2",
    ]
    assert pruned["spec"] == {"source": {"uri": "hf://m"}, "ports": [{"name": "a"}]}
    assert pruned["metadata"] == {"name": "x"}
    assert pruned["apiVersion"] == "drover.dev/v1alpha1" and obj["spec"]["foo"] == 2


def test_prune_keeps_preserved_and_map_fields() -> None:
    obj = _spec(extra={"anything": {"deep": [1]}}, labels={"k": "v"})
    pruned, dropped = prune(obj, SCHEMA)
    assert dropped == []
    assert pruned["spec"]["extra"] == {"anything": {"deep": [1]}}


def test_prune_keeps_embedded_resource_metadata_but_prunes_its_spec() -> None:
    tpl = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "junk": 1},
        "spec": {"a": "x", "b": 1},
    }
    pruned, dropped = prune(_spec(template=tpl), SCHEMA)
    assert dropped == ["spec.template.metadata.junk", "spec.template.spec.b"]
    assert pruned["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"a": "x"},
    }


def test_prune_drops_nulls_of_non_nullable_fields_silently() -> None:
    pruned, dropped = prune(_spec(name=None, note=None), SCHEMA)
    assert "name" not in pruned["spec"] and pruned["spec"]["note"] is None
    assert dropped == []


def _crd_schema(kind: str) -> dict[str, Any]:
    for path in (ROOT / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    pytest.fail(f"crds/ has no {kind} CRD: run make crds")


def test_project_examples_pass_their_generated_crd_schemas() -> None:
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    if not examples:
        pytest.fail("examples/ is empty: the examples are part of the project")
    for path in examples:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            schema = _crd_schema(doc["kind"])
            pruned, dropped = prune(doc, schema)
            assert dropped == [], path.name
            assert validate(apply_defaults(pruned, schema), schema) == [], path.name


def test_root_type_errors_use_kubes_nil_path() -> None:
    causes = validate([], {"type": "object"})
    assert [str(c) for c in causes] == [
        '<nil>: Invalid value: "array": . in body must be of type object: "array"'
    ]
