"""x-kubernetes-validations rules evaluate with CEL and fail with kube-apiserver's messages."""

from __future__ import annotations

from typing import Any

import celpy
import pytest

from drover_sandbox.apiserver.cel import (
    blocking_error,
    check_validations,
    compile_rules,
    rule_program,
)
from drover_sandbox.apiserver.celfuncs import CelError
from drover_sandbox.apiserver.errors import field_error


def _schema(*rules: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": list(rules),
                "properties": props
                or {
                    "min": {"type": "integer"},
                    "max": {"type": "integer"},
                    "name": {"type": "string"},
                },
            }
        },
    }


def _check(schema: dict[str, Any], spec: Any, old: Any = None) -> list[str]:
    old_obj = None if old is None else {"spec": old}
    return [str(c) for c in check_validations({"spec": spec}, old_obj, schema)]


def test_passing_rule_gives_no_causes() -> None:
    assert _check(_schema({"rule": "self.min <= self.max"}), {"min": 1, "max": 2}) == []


def test_failing_rule_without_message_reports_the_rule() -> None:
    assert _check(_schema({"rule": "self.min <= self.max"}), {"min": 3, "max": 2}) == [
        'spec: Invalid value: "object": failed rule: self.min <= self.max'
    ]


def test_message_and_field_path_are_honoured() -> None:
    rule = {
        "rule": "self.min <= self.max",
        "message": "min must not exceed max",
        "fieldPath": ".min",
    }
    causes = check_validations({"spec": {"min": 3, "max": 2}}, None, _schema(rule))
    assert [(c.field, c.message, c.reason) for c in causes] == [
        ("spec.min", 'Invalid value: "object": min must not exceed max', "FieldValueInvalid")
    ]


def test_message_expression_builds_the_message() -> None:
    rule = {
        "rule": "self.min <= self.max",
        "messageExpression": "'min ' + string(self.min) + ' exceeds max ' + string(self.max)",
    }
    assert _check(_schema(rule), {"min": 3, "max": 2}) == [
        'spec: Invalid value: "object": min 3 exceeds max 2'
    ]


def test_reasons_change_the_cause_type() -> None:
    forbidden = {
        "rule": "!has(self.name)",
        "message": "name is set by the server",
        "reason": "FieldValueForbidden",
    }
    required = {
        "rule": "has(self.name)",
        "message": "name is needed",
        "reason": "FieldValueRequired",
    }
    causes = check_validations({"spec": {"name": "x"}}, None, _schema(forbidden))
    assert [(c.reason, str(c)) for c in causes] == [
        ("FieldValueForbidden", "spec: Forbidden: name is set by the server")
    ]
    causes = check_validations({"spec": {}}, None, _schema(required))
    assert [(c.reason, str(c)) for c in causes] == [
        ("FieldValueRequired", "spec: Required value: name is needed")
    ]


def test_transition_rules_are_skipped_on_create_and_run_on_update() -> None:
    schema = _schema({"rule": "self.name == oldSelf.name", "message": "name is immutable"})
    assert _check(schema, {"name": "a"}) == []
    assert _check(schema, {"name": "b"}, old={"name": "a"}) == [
        'spec: Invalid value: "object": name is immutable'
    ]
    assert _check(schema, {"name": "a"}, old={"name": "a"}) == []


def test_missing_field_is_an_evaluation_error() -> None:
    assert _check(_schema({"rule": "self.name == 'x'"}), {}) == [
        "spec: Invalid value: \"object\": no such key: name evaluating rule: self.name == 'x'"
    ]


def test_rules_on_nested_list_items_and_map_values() -> None:
    item = {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.weight >= 0", "message": "weight must be >= 0"}
        ],
        "properties": {"name": {"type": "string"}, "weight": {"type": "integer"}},
    }
    schema = _schema(
        items={"type": "array", "items": item},
        byName={"type": "object", "additionalProperties": item},
    )
    spec = {
        "items": [{"name": "a", "weight": 1}, {"name": "b", "weight": -1}],
        "byName": {"k": {"weight": -2}},
    }
    assert _check(schema, spec) == [
        'spec.items[1]: Invalid value: "object": weight must be >= 0',
        'spec.byName.k: Invalid value: "object": weight must be >= 0',
    ]


def test_transition_rules_on_map_lists_correlate_by_key() -> None:
    item = {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.size == oldSelf.size", "message": "size is immutable"}
        ],
        "properties": {"name": {"type": "string"}, "size": {"type": "integer"}},
    }
    schema = _schema(
        disks={
            "type": "array",
            "items": item,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        }
    )
    old = {"disks": [{"name": "a", "size": 1}]}
    new = {"disks": [{"name": "b", "size": 5}, {"name": "a", "size": 2}]}
    assert _check(schema, new, old=old) == [
        'spec.disks[1]: Invalid value: "object": size is immutable'
    ]


def test_string_value_rules_report_the_string_type() -> None:
    schema = _schema(
        name={"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('a')"}]}
    )
    assert _check(schema, {"name": "b"}) == [
        "spec.name: Invalid value: \"string\": failed rule: self.startsWith('a')"
    ]


def test_compile_rules_reports_syntax_errors_with_their_path() -> None:
    schema = _schema({"rule": "self.min <="})
    causes = compile_rules(schema, root="spec.versions[0].schema.openAPIV3Schema")
    assert [c.field for c in causes] == [
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
    ]
    assert "compilation failed: ERROR: <input>:1:" in causes[0].message
    assert "Syntax error" in causes[0].message


def test_compile_rules_rejects_unknown_reasons() -> None:
    causes = compile_rules(_schema({"rule": "true", "reason": "Nope"}))
    assert causes[0].reason == "FieldValueNotSupported"
    assert causes[0].field.endswith("x-kubernetes-validations[0].reason")


def test_compile_rules_rejects_undefined_fields_like_cel_go() -> None:
    causes = compile_rules(_schema({"rule": "self.nope == 1"}), root="r")
    assert [c.field for c in causes] == ["r.properties[spec].x-kubernetes-validations[0].rule"]
    assert causes[0].message == (
        'Invalid value: apiextensions.ValidationRule{Rule:"self.nope == 1", Message:"", '
        'MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), '
        'FieldPath:"", OptionalOldSelf:(*bool)(nil)}: compilation failed: '
        "ERROR: <input>:1:5: undefined field 'nope'"
    )


def test_compile_rules_follow_nested_fields_maps_and_lists() -> None:
    schema = _schema(
        {"rule": "self.inner.a == 1 && self.byName['k'].a == 1 && self.items[0].a == 1"},
        {"rule": "has(self.inner.b)"},
        {"rule": "self.free.anything == 1"},
        inner={"type": "object", "properties": {"a": {"type": "integer"}}},
        byName={
            "type": "object",
            "additionalProperties": {"type": "object", "properties": {"a": {"type": "integer"}}},
        },
        items={
            "type": "array",
            "items": {"type": "object", "properties": {"a": {"type": "integer"}}},
        },
        free={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    )
    causes = compile_rules(schema)
    assert len(causes) == 1
    assert causes[0].field.endswith("x-kubernetes-validations[1].rule")
    assert causes[0].message.endswith("undefined field 'b'")


def test_compile_rules_rejects_unknown_functions() -> None:
    causes = compile_rules(_schema({"rule": "self.name.frobnicate()"}))
    assert causes[0].message.endswith("undeclared reference to 'frobnicate' (in container '')")


def test_compile_rules_accepts_the_project_rules() -> None:
    rule = {"rule": "!has(self.existingClaim) || !has(self.storageClassName)"}
    schema = _schema(rule, existingClaim={"type": "string"}, storageClassName={"type": "string"})
    assert compile_rules(schema) == []


def test_root_rules_see_metadata_name_only() -> None:
    schema = {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "size(self.metadata.name) <= 63"}],
        "properties": {"metadata": {"type": "object"}, "spec": {"type": "object"}},
    }
    assert compile_rules(schema) == []
    schema["x-kubernetes-validations"] = [{"rule": "has(self.metadata.labels)"}]
    assert compile_rules(schema)[0].message.endswith("undefined field 'labels'")
    obj = {"metadata": {"name": "x" * 70}, "spec": {}}
    schema["x-kubernetes-validations"] = [{"rule": "size(self.metadata.name) <= 63"}]
    causes = check_validations(obj, None, schema)
    # kube validates the root with a nil field path, printed "<nil>".
    assert [str(c) for c in causes] == [
        '<nil>: Invalid value: "object": failed rule: size(self.metadata.name) <= 63'
    ]


def test_programs_are_cached_by_rule_text() -> None:
    assert rule_program("self.a == 1") is rule_program("self.a == 1")


SELF = {
    "min": 1,
    "max": 3,
    "name": "Abc-1",
    "l": [3, 1, 2],
    "tags": ["a", "b"],
    "m": {"k": 1, "s": "x"},
    "f": 1.5,
    "empty": [],
}
EXPRESSIONS = [
    "self.min <= self.max",
    "!has(self.existingClaim) || !has(self.storageClassName)",
    "has(self.m.k) && !has(self.m.z)",
    "self.l.all(x, x > 0) && self.l.exists(x, x == 2)",
    "self.l.exists_one(x, x > 2)",
    "self.l.map(x, x * 2) == [6, 2, 4]",
    "self.l.filter(x, x > 1) == [3, 2]",
    "size(self.name) == 5 && self.name.size() == 5",
    "self.name.startsWith('A') && self.name.endsWith('1') && self.name.contains('c-')",
    "self.name.matches('^[A-Za-z]+-[0-9]$')",
    "'a' in self.tags && !('z' in self.tags)",
    "'k' in self.m",
    "self.m.k == 1 ? self.min == 1 : false",
    "self.m['s'] == 'x'",
    "int('3') + 2 == 5 && string(7) == '7' && double(2) == 2.0",
    "self.max / 2 == 1 && self.max % 2 == 1 && -self.max == -3",
    "self.f * 2.0 == 3.0",
    "type(self.name) == string && type(self.l) == list",
    "1 / 0 == 1 || true",
    "!(false && 1 / 0 == 1)",
    "[1, 2] + [3] == [1, 2, 3] && 'a' + 'b' == 'ab'",
    "{'a': 1}.a == 1",
    "size(self.empty) == 0 && self.empty.all(x, false)",
    "self.l[0] == 3",
    "self.tags.size() <= 2",
]
EXTENSIONS = [
    ("self.name.lowerAscii() == 'abc-1'", True),
    ("self.name.upperAscii() == 'ABC-1'", True),
    ("' x '.trim() == 'x'", True),
    ("'a,b'.split(',') == ['a', 'b']", True),
    ("self.tags.join('-') == 'a-b'", True),
    ("'aXbX'.replace('X', '.') == 'a.b.'", True),
    ("self.name.indexOf('c') == 2 && self.name.lastIndexOf('1') == 4", True),
    ("self.name.substring(1, 3) == 'bc'", True),
    ("self.l.isSorted()", False),
    ("self.l.sum() == 6 && self.l.min() == 1 && self.l.max() == 3", True),
]


# cel-python's interpreter, as an independent reference: the server evaluates with celfast only.
_REFERENCE = celpy.Environment()


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_translation_agrees_with_cel_python(expression: str) -> None:
    program = rule_program(expression)
    reference = _REFERENCE.program(program.ast).evaluate({"self": celpy.json_to_cel(SELF)})
    assert program.run({"self": SELF}) is True
    assert bool(reference) is True


@pytest.mark.parametrize(("expression", "expected"), EXTENSIONS)
def test_kubernetes_string_and_list_extensions(expression: str, expected: bool) -> None:
    program = rule_program(expression)
    assert program.run({"self": SELF}) is expected


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("self.nope == 1", "no such key: nope"),
        ("self.l[7] == 1", "index out of bounds: 7"),
        ("self.min / 0 == 1", "division by zero"),
        ("self.name < 1", "no such overload"),
        ("9223372036854775807 + 1 > 0", "integer overflow"),
    ],
)
def test_fast_translation_raises_cel_errors(expression: str, error: str) -> None:
    with pytest.raises(CelError, match=error):
        rule_program(expression).run({"self": SELF})


def test_numbers_compare_across_int_and_double_as_in_kube() -> None:
    # cel-go (kube-apiserver) has heterogeneous numeric equality; cel-python 0.5 does not.
    assert rule_program("self.min == 1.0 && self.f > 1").run({"self": SELF}) is True


@pytest.mark.parametrize(
    "expression",
    [
        "duration('1h') > duration('30m')",
        "duration('1h30m') == duration('90m')",
        "duration('300ms') + duration('0.7s') == duration('1s')",
        "timestamp('2024-01-02T03:04:05Z') + duration('1h') > timestamp('2024-01-02T03:04:05Z')",
        "timestamp('2024-01-02T04:04:05+01:00') == timestamp('2024-01-02T03:04:05Z')",
    ],
)
def test_durations_and_timestamps_as_cel_go_parses_them(expression: str) -> None:
    reference = _REFERENCE.program(rule_program(expression).ast).evaluate({})
    assert rule_program(expression).run({"self": SELF}) is True
    assert bool(reference) is True


def test_negative_durations_as_go_parses_them() -> None:
    # Go's time.ParseDuration takes a sign (cel-python's interpreter refuses this one).
    assert rule_program("duration('-1.5h') < duration('0')").run({"self": SELF}) is True
    assert rule_program("duration('-1.5h') == duration('-90m')").run({"self": SELF}) is True


def test_an_invalid_duration_is_an_evaluation_error() -> None:
    with pytest.raises(CelError, match="invalid duration"):
        rule_program("duration('1x') > duration('1s')").run({"self": SELF})


def test_a_construct_the_evaluator_cannot_run_is_refused_at_compile_time() -> None:
    # kube's cel-go has unsigned literals; the local stand-in refuses the rule (and so the CRD)
    # rather than judging objects by a rule it cannot evaluate.
    causes = compile_rules(_schema({"rule": "1u == 1u"}))
    assert len(causes) == 1
    assert "the local control plane cannot evaluate '1u == 1u'" in causes[0].message


def test_type_errors_block_rule_evaluation_like_kube() -> None:
    type_error = field_error("FieldValueTypeInvalid", "spec.min", "string", "bad type")
    cause = blocking_error([type_error])
    assert cause is not None
    assert str(cause) == (
        '<nil>: Invalid value: "null": some validation rules were not checked because the '
        "object was invalid; correct the existing errors to complete validation"
    )
    assert blocking_error([field_error("FieldValueRequired", "spec.x")]) is None
