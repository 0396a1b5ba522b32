"""The invalid-manifest corpus (tests/invalid/) sent to an API server: the local control plane
with Drover's CRDs refuses every manifest (422 Invalid, or 400 for an unknown field under kubectl's
strict validation), naming the field of each of its problems, as kube-apiserver does. The unit
corpus tests check the CRDs and the models offline."""

from __future__ import annotations

import json

import yaml
from kubernetes import client
from tests.unit.api.api_support import INVALID_DIR, read_also, read_expectations

from drover.api.registry import kind_info

FILES = sorted(INVALID_DIR.glob("*.yaml"))


def _refusal(k8s_api, namespace: str, doc: dict, tag: str) -> dict | None:
    """The Status body of the refusal, or None when the server accepted the manifest."""
    info = kind_info(doc["kind"])
    name = doc["metadata"]["name"]
    name = f"{name}-{tag}" if name == "bad" else name  # one object per file, if one gets in
    doc = {**doc, "metadata": {**doc["metadata"], "name": name, "namespace": namespace}}
    try:
        client.CustomObjectsApi(k8s_api).create_namespaced_custom_object(
            # as kubectl apply sends it (--validate=strict): unknown fields are errors, not
            # pruned with a warning
            "drover.dev",
            "v1alpha1",
            namespace,
            info.plural,
            doc,
            field_validation="Strict",
        )
    except client.ApiException as exc:
        # 422 Invalid; an unknown field under strict validation is 400 "strict decoding error"
        assert exc.status in (400, 422), exc.body
        return dict(json.loads(exc.body))
    return None


def _names(body: dict, field: str) -> bool:
    causes = body.get("details", {}).get("causes", [])
    parent, _, leaf = field.rpartition(".")
    if f'unknown field "{field}"' in body.get("message", ""):
        return True
    return any(
        c.get("field") == field
        # a required field is reported on its parent; a root rule names the field in its message
        or (c.get("field") == parent and leaf in c.get("message", ""))
        or (field in c.get("message", ""))
        for c in causes
    )


def test_api_server_refuses_every_corpus_manifest_naming_each_field(
    k8s_api, drover_crds, namespace
) -> None:
    unnamed: dict[str, object] = {}
    for path in FILES:
        (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
        body = _refusal(k8s_api, namespace, doc, path.stem[:2])
        if body is None:
            unnamed[path.name] = "accepted"
            continue
        fields = [read_expectations(path)["path"], *(f for f, _ in read_also(path))]
        missing = [f for f in fields if not _names(body, f)]
        if missing:
            unnamed[path.name] = (missing, body.get("message"))
    assert not unnamed, unnamed
