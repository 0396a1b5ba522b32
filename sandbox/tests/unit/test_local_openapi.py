"""OpenAPI v3 documents carry what kubectl apply and kubectl explain look for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from drover_sandbox.apiserver.openapi import (
    ResourceDoc,
    build_group_version_doc,
    build_openapi_v3_index,
    doc_hash,
    schema_name,
)

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "description": "Desired state.",
            "properties": {"rollout": {"type": "object", "description": "How to roll out."}},
        },
        "status": {"type": "object"},
    },
}


def _doc() -> dict[str, Any]:
    resource = ResourceDoc(
        "InferenceService", "inferenceservices", True, SCHEMA, subresources=["status", "scale"]
    )
    return build_group_version_doc("drover.dev", "v1alpha1", [resource])


def _patch_ops_for(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    # kubectl's supportsQueryParamV3: the PATCH operations tagged with the GVK.
    ops = []
    for item in doc["paths"].values():
        patch = item.get("patch")
        if patch and patch["x-kubernetes-group-version-kind"]["kind"] == kind:
            ops.append(patch)
    return ops


def test_index_points_to_group_version_documents_with_hash() -> None:
    doc = _doc()
    index = build_openapi_v3_index({("drover.dev", "v1alpha1"): doc, ("", "v1"): "ABC"})
    assert index == {
        "paths": {
            "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=ABC"},
            "apis/drover.dev/v1alpha1": {
                "serverRelativeURL": f"/openapi/v3/apis/drover.dev/v1alpha1?hash={doc_hash(doc)}"
            },
        }
    }


def test_index_accepts_a_list_of_group_versions() -> None:
    index = build_openapi_v3_index([("apps", "v1"), ("drover.dev", "v1alpha1", "H")])
    assert set(index["paths"]) == {"apis/apps/v1", "apis/drover.dev/v1alpha1"}
    assert index["paths"]["apis/drover.dev/v1alpha1"]["serverRelativeURL"].endswith("?hash=H")


def test_hash_changes_when_the_schema_changes() -> None:
    changed = build_group_version_doc(
        "drover.dev",
        "v1alpha1",
        [ResourceDoc("InferenceService", "inferenceservices", True, {"type": "object"})],
    )
    assert doc_hash(changed) != doc_hash(_doc())


def test_every_patch_operation_declares_field_validation() -> None:
    ops = _patch_ops_for(_doc(), "InferenceService")
    assert len(ops) == 2  # the object and its status
    for op in ops:
        names = {(p["name"], p["in"]) for p in op["parameters"]}
        assert ("fieldValidation", "query") in names
        assert op["x-kubernetes-group-version-kind"] == {
            "group": "drover.dev",
            "kind": "InferenceService",
            "version": "v1alpha1",
        }


def test_post_and_put_declare_field_validation_and_dry_run() -> None:
    paths = _doc()["paths"]
    collection = paths["/apis/drover.dev/v1alpha1/namespaces/{namespace}/inferenceservices"]
    item = paths["/apis/drover.dev/v1alpha1/namespaces/{namespace}/inferenceservices/{name}"]
    for op in (collection["post"], item["put"]):
        assert {"fieldValidation", "dryRun", "fieldManager"} <= {
            p["name"] for p in op["parameters"]
        }


def test_paths_cover_item_collection_status_scale_and_all_namespaces() -> None:
    paths = set(_doc()["paths"])
    base = "/apis/drover.dev/v1alpha1"
    assert paths == {
        f"{base}/namespaces/{{namespace}}/inferenceservices",
        f"{base}/namespaces/{{namespace}}/inferenceservices/{{name}}",
        f"{base}/namespaces/{{namespace}}/inferenceservices/{{name}}/status",
        f"{base}/namespaces/{{namespace}}/inferenceservices/{{name}}/scale",
        f"{base}/inferenceservices",
    }


def test_components_have_kube_names_and_gvk_for_explain() -> None:
    schemas = _doc()["components"]["schemas"]
    isvc = schemas["dev.drover.v1alpha1.InferenceService"]
    assert isvc["x-kubernetes-group-version-kind"] == [
        {"group": "drover.dev", "kind": "InferenceService", "version": "v1alpha1"}
    ]
    assert isvc["properties"]["spec"]["properties"]["rollout"]["description"] == "How to roll out."
    assert isvc["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta" in schemas
    assert "dev.drover.v1alpha1.InferenceServiceList" in schemas


def test_every_ref_resolves_inside_the_document() -> None:
    doc = _doc()
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    names = set(doc["components"]["schemas"])
    assert refs and all(r.removeprefix("#/components/schemas/") in names for r in refs)


def test_builtin_names_and_strategic_merge_patch() -> None:
    assert schema_name("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert schema_name("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert (
        schema_name("drover.dev", "v1alpha1", "FoundationModel")
        == "dev.drover.v1alpha1.FoundationModel"
    )
    doc = build_group_version_doc(
        "", "v1", [("Namespace", "namespaces", False, None, ["get", "patch"], [])]
    )
    patch = doc["paths"]["/api/v1/namespaces/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert "/api/v1/namespaces" not in doc["paths"]  # no list verb, no collection path


def test_registry_like_objects_are_accepted() -> None:
    class Resource:
        kind, plural, namespaced, schema = "FoundationModel", "foundationmodels", True, SCHEMA
        verbs = ["get", "list", "patch"]
        subresources = {"status"}

    doc = build_group_version_doc("drover.dev", "v1alpha1", [Resource()])
    assert "dev.drover.v1alpha1.FoundationModel" in doc["components"]["schemas"]


def test_project_crds_produce_documents() -> None:
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        names = crd["spec"]["names"]
        version = crd["spec"]["versions"][0]
        doc = build_group_version_doc(
            crd["spec"]["group"],
            version["name"],
            [
                ResourceDoc(
                    names["kind"], names["plural"], True, version["schema"]["openAPIV3Schema"]
                )
            ],
        )
        assert _patch_ops_for(doc, names["kind"])


def test_builtin_kinds_get_their_real_schemas_for_explain() -> None:
    pytest.importorskip("kubernetes_validate", reason="built-in schemas come from it")
    resource = ResourceDoc("Deployment", "deployments", True, None, subresources=["status"])
    schemas = build_group_version_doc("apps", "v1", [resource])["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    assert deployment["properties"]["spec"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}
    ]
    replicas = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]
    assert replicas["type"] == "integer" and "Number of desired pods" in replicas["description"]
    assert "io.k8s.api.core.v1.Container" in schemas


def test_builtin_schemas_keep_properties_named_like_keywords() -> None:
    # JSONSchemaProps has properties called "$ref", "type" and "default".
    pytest.importorskip("kubernetes_validate", reason="built-in schemas come from it")
    resource = ResourceDoc("CustomResourceDefinition", "customresourcedefinitions", False, None)
    schemas = build_group_version_doc("apiextensions.k8s.io", "v1", [resource])["components"][
        "schemas"
    ]
    props = schemas["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"][
        "properties"
    ]
    assert props["$ref"] == {"type": "string"}
    assert props["allOf"]["type"] == "array"  # a property, not a wrapped reference


def _schema_refs(schema: Any, seen: list[str]) -> None:
    # Walk schema keywords only: a property may itself be called "$ref" or "allOf".
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        assert isinstance(schema["$ref"], str), schema
        seen.append(schema["$ref"])
    for sub in (schema.get("properties") or {}).values():
        assert isinstance(sub, dict), sub  # every property is a schema
        _schema_refs(sub, seen)
    for key in ("items", "additionalProperties", "not"):
        _schema_refs(schema.get(key), seen)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            _schema_refs(sub, seen)


@pytest.mark.parametrize(
    ("group", "kind", "plural"),
    [
        ("", "Pod", "pods"),
        ("apps", "Deployment", "deployments"),
        ("batch", "Job", "jobs"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions"),
    ],
)
def test_builtin_documents_are_well_formed(group: str, kind: str, plural: str) -> None:
    doc = build_group_version_doc(group, "v1", [ResourceDoc(kind, plural, True, None)])
    schemas = doc["components"]["schemas"]
    refs: list[str] = []
    for schema in schemas.values():
        _schema_refs(schema, refs)
    assert all(r.removeprefix("#/components/schemas/") in schemas for r in refs)
