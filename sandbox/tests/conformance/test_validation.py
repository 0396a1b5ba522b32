"""CRD schema: validation (422 naming each field), defaulting, pruning, fieldValidation, CEL."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from .conftest import GROUP, PLURAL, create_widget, raw, widget


def _create(k8s_api, ns, body, **query):
    return raw(
        k8s_api, "POST", f"/apis/{GROUP}/v1/namespaces/{ns}/{PLURAL}", body, query=query or None
    )


def _causes(body):
    return {c["field"]: c for c in body["details"]["causes"]}


def test_wrong_type_is_422_with_cause_naming_field(k8s_api, widget_crd, namespace):
    code, body, _ = _create(k8s_api, namespace, widget("t", replicas="three"))
    assert code == 422
    assert body["reason"] == "Invalid"
    assert _causes(body)["spec.replicas"]["reason"] == "FieldValueTypeInvalid"


def test_enum_violation_names_supported_values(k8s_api, widget_crd, namespace):
    code, body, _ = _create(k8s_api, namespace, widget("e", color="purple"))
    assert code == 422
    cause = _causes(body)["spec.color"]
    assert cause["reason"] == "FieldValueNotSupported"
    assert '"red"' in cause["message"]


def test_missing_required_field_is_reported(k8s_api, widget_crd, namespace):
    body = widget("rq")
    del body["spec"]["color"]
    code, out, _ = _create(k8s_api, namespace, body)
    assert code == 422
    assert _causes(out)["spec.color"]["reason"] == "FieldValueRequired"


def test_minimum_and_maximum_are_enforced(k8s_api, widget_crd, namespace):
    code, body, _ = _create(k8s_api, namespace, widget("mx", replicas=11))
    assert code == 422
    assert "less than or equal to 10" in _causes(body)["spec.replicas"]["message"]


def test_pattern_and_max_length_are_enforced(k8s_api, widget_crd, namespace):
    code, body, _ = _create(k8s_api, namespace, widget("pt", label="ABC"))
    assert code == 422
    assert "spec.label" in _causes(body)


def test_several_errors_are_all_reported(k8s_api, widget_crd, namespace):
    code, body, _ = _create(k8s_api, namespace, widget("many", color="x", replicas=-1))
    assert code == 422
    assert {"spec.color", "spec.replicas"} <= set(_causes(body))
    assert body["message"].startswith(f'Widget.{GROUP} "many" is invalid')


def test_nullable_accepts_null(custom, namespace):
    out = create_widget(custom, namespace, "nl", note=None)
    assert out["spec"]["note"] is None


def test_int_or_string_accepts_both(custom, namespace):
    assert create_widget(custom, namespace, "ios1", port=8080)["spec"]["port"] == 8080
    assert create_widget(custom, namespace, "ios2", port="http")["spec"]["port"] == "http"


def test_preserve_unknown_fields_keeps_arbitrary_content(custom, namespace):
    out = create_widget(custom, namespace, "pu", extra={"any": {"thing": [1, 2]}})
    assert out["spec"]["extra"] == {"any": {"thing": [1, 2]}}


def test_embedded_resource_keeps_its_metadata(custom, namespace):
    tpl = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inner"}}
    out = create_widget(custom, namespace, "emb", template=tpl)
    assert out["spec"]["template"]["metadata"]["name"] == "inner"


def test_defaults_are_applied(custom, namespace):
    out = create_widget(custom, namespace, "df")
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["minReplicas"] == 0


def test_unknown_fields_are_pruned_with_warning(k8s_api, widget_crd, namespace):
    code, body, headers = _create(k8s_api, namespace, widget("pr", bogus=1))
    assert code == 201
    assert "bogus" not in body["spec"]
    assert "unknown field" in (headers.get("Warning") or "")


def test_field_validation_strict_rejects_unknown_fields(k8s_api, widget_crd, namespace):
    code, body, _ = _create(k8s_api, namespace, widget("st", bogus=1), fieldValidation="Strict")
    assert code == 400
    assert 'unknown field "spec.bogus"' in body["message"]


def test_field_validation_ignore_sends_no_warning(k8s_api, widget_crd, namespace):
    code, _, headers = _create(k8s_api, namespace, widget("ig", bogus=1), fieldValidation="Ignore")
    assert code == 201
    assert not headers.get("Warning")


def test_cel_rule_violation_is_422_with_rule_message(k8s_api, widget_crd, namespace):
    code, body, _ = _create(k8s_api, namespace, widget("cel", replicas=1, minReplicas=3))
    assert code == 422
    assert "minReplicas must not exceed replicas" in json.dumps(body)
    assert any(f.startswith("spec") for f in _causes(body))


def test_update_is_validated_too(custom, namespace):
    create_widget(custom, namespace, "upd")
    with pytest.raises(client.ApiException) as info:
        custom.patch_namespaced_custom_object(
            GROUP, "v1", namespace, PLURAL, "upd", {"spec": {"color": "purple"}}
        )
    assert info.value.status == 422


def test_crd_with_uncompilable_cel_rule_is_rejected(k8s_api):
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "bads.tmp.drover.dev"},
        "spec": {
            "group": "tmp.drover.dev",
            "scope": "Namespaced",
            "names": {"plural": "bads", "singular": "bad", "kind": "Bad"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "x-kubernetes-validations": [{"rule": "self.a >>>> 1"}],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    with pytest.raises(client.ApiException) as info:
        client.ApiextensionsV1Api(k8s_api).create_custom_resource_definition(crd)
    assert info.value.status == 422
    assert "x-kubernetes-validations" in info.value.body
