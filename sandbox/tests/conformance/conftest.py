"""Conformance fixtures: a throwaway CRD (`widgets.conformance.drover.dev`) and API helpers.

Everything here works unchanged against a real cluster (DROVER_CONFORMANCE_KUBECONFIG).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

GROUP = "conformance.drover.dev"
PLURAL = "widgets"
CRD_NAME = f"{PLURAL}.{GROUP}"

WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "description": "What the widget should be.",
            "required": ["color"],
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.replicas",
                    "message": "minReplicas must not exceed replicas",
                },
            ],
            "properties": {
                "color": {
                    "type": "string",
                    "enum": ["red", "green", "blue"],
                    "description": "The widget's colour.",
                },
                "replicas": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 10,
                    "default": 1,
                    "description": "How many copies to run.",
                },
                "minReplicas": {"type": "integer", "minimum": 0, "default": 0},
                "label": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 12},
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "rollout": {
                    "type": "object",
                    "description": "How new versions are rolled out.",
                    "properties": {
                        "steps": {
                            "type": "array",
                            "description": "Canary steps.",
                            "items": {"type": "integer"},
                        }
                    },
                },
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "phase": {"type": "string"},
                "observedGeneration": {"type": "integer"},
                "conditions": {
                    "type": "array",
                    "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            },
        },
    },
}

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD_NAME},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {
            "plural": PLURAL,
            "singular": "widget",
            "kind": "Widget",
            "listKind": "WidgetList",
            "shortNames": ["wdg"],
            "categories": ["conformance"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": WIDGET_SCHEMA},
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                    },
                },
                "additionalPrinterColumns": [
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }
        ],
    },
}


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def ensure_crd(k8s_api: client.ApiClient, crd: dict[str, Any]) -> None:
    ext = client.ApiextensionsV1Api(k8s_api)
    try:
        ext.create_custom_resource_definition(crd)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    group = crd["spec"]["group"]
    version = crd["spec"]["versions"][0]["name"]
    plural = crd["spec"]["names"]["plural"]

    def served() -> bool:
        try:
            found = client.CustomObjectsApi(k8s_api).get_api_resources(group, version)
        except client.ApiException:
            return False
        return any(r.name == plural for r in found.resources)

    wait_for(served)


@pytest.fixture(scope="session")
def widget_crd(k8s_api: client.ApiClient) -> dict[str, Any]:
    ensure_crd(k8s_api, WIDGET_CRD)
    return WIDGET_CRD


@pytest.fixture
def custom(k8s_api: client.ApiClient, widget_crd: dict[str, Any]) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(k8s_api)


@pytest.fixture
def core(k8s_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(k8s_api)


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"color": "red", **spec},
    }


def create_widget(custom: client.CustomObjectsApi, ns: str, name: str, **spec: Any) -> dict:
    return custom.create_namespaced_custom_object(GROUP, "v1", ns, PLURAL, widget(name, **spec))


def get_widget(custom: client.CustomObjectsApi, ns: str, name: str) -> dict:
    return custom.get_namespaced_custom_object(GROUP, "v1", ns, PLURAL, name)


def raw(
    k8s_api: client.ApiClient,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    query: dict[str, str] | None = None,
    accept: str = "application/json",
) -> tuple[int, Any, Any]:
    """One request through the client's transport: (status, decoded JSON body, headers)."""
    import json
    from urllib.parse import urlencode

    url = k8s_api.configuration.host + path + (f"?{urlencode(query)}" if query else "")
    headers = {"Content-Type": content_type, "Accept": accept}
    k8s_api.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
    try:
        resp = k8s_api.call_api(method, url, header_params=headers, body=body)
        data = resp.read()
        return resp.status, json.loads(data or b"null"), resp.headers
    except client.ApiException as exc:
        return exc.status, json.loads(exc.body or b"null"), exc.headers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A hung request must fail its test, not the session: 60 s unless a test says otherwise."""
    for item in items:
        if "conformance" in str(item.fspath) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(60))
