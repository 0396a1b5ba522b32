"""kubectl itself reads the OpenAPI v3 documents: explain works and apply validates server-side.

A minimal discovery + OpenAPI server on loopback (no storage) stands in for the local control
plane, so the documents are checked by the real client, independently of the server module.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from drover_sandbox.apiserver.openapi import (
    ResourceDoc,
    build_group_version_doc,
    build_openapi_v3_index,
    gv_path,
)

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")


def _crd_resources() -> list[tuple[str, str, ResourceDoc, list[str]]]:
    out = []
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        names, version = crd["spec"]["names"], crd["spec"]["versions"][0]
        schema = version["schema"]["openAPIV3Schema"]
        res = ResourceDoc(names["kind"], names["plural"], True, schema, subresources=["status"])
        out.append((crd["spec"]["group"], version["name"], res, names.get("shortNames", [])))
    return out


def _resources() -> dict[tuple[str, str], list[tuple[ResourceDoc, list[str]]]]:
    groups: dict[tuple[str, str], list[tuple[ResourceDoc, list[str]]]] = {
        ("", "v1"): [(ResourceDoc("Namespace", "namespaces", False, None), ["ns"])],
        ("apps", "v1"): [(ResourceDoc("Deployment", "deployments", True, None), ["deploy"])],
        ("apiextensions.k8s.io", "v1"): [
            (ResourceDoc("CustomResourceDefinition", "customresourcedefinitions", False, None),
             ["crd"]),
        ],
    }  # fmt: skip
    for group, version, res, short in _crd_resources():
        groups.setdefault((group, version), []).append((res, short))
    return groups


def _app() -> web.Application:
    groups = _resources()
    docs = {gv: build_group_version_doc(*gv, [r for r, _ in rs]) for gv, rs in groups.items()}

    def resource_list(gv: tuple[str, str]) -> dict[str, Any]:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{gv[0]}/{gv[1]}" if gv[0] else gv[1],
            "resources": [
                {"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": r.verbs, "shortNames": short}
                for r, short in groups[gv]
            ],
        }  # fmt: skip

    async def handle(request: web.Request) -> web.Response:
        path = request.path.strip("/")
        if path == "version":
            return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
        if path == "api":
            return web.json_response({"kind": "APIVersions", "versions": ["v1"]})
        if path == "apis":
            named = [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
                for g, v in groups if g
            ]  # fmt: skip
            return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": named})
        for gv in groups:
            if path == gv_path(*gv):
                return web.json_response(resource_list(gv))
        if path == "openapi/v3":
            return web.json_response(build_openapi_v3_index(docs))
        for gv, doc in docs.items():
            if path == f"openapi/v3/{gv_path(*gv)}":
                return web.json_response(doc)
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": "not found", "reason": "NotFound", "code": 404}  # fmt: skip
        return web.json_response(status, status=404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    return app


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(_app())
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    directory = tmp_path_factory.mktemp("kubectl")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "d"}}],
        "current-context": "c",
        "users": [{"name": "u", "user": {}}],
    }
    path = directory / "kubeconfig"
    path.write_text(json.dumps(config))
    yield path
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(kubeconfig.parent / "cache"),
           "HOME": str(kubeconfig.parent), "PATH": "/usr/local/bin:/usr/bin:/bin"}  # fmt: skip
    kubectl = shutil.which("kubectl") or "kubectl"
    return subprocess.run(
        [kubectl, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_kubectl_explain_reads_the_crd_schema(kubeconfig: Path) -> None:
    if not any(res.plural == "inferenceservices" for _, _, res, _ in _crd_resources()):
        pytest.fail("crds/ has no InferenceService CRD: run make crds")
    result = _kubectl(kubeconfig, "explain", "infsvc.spec.rollout")
    assert result.returncode == 0, result.stderr
    assert "KIND:       InferenceService" in result.stdout
    assert "FIELD: rollout <Object>" in result.stdout


def test_kubectl_explain_reads_builtin_schemas(kubeconfig: Path) -> None:
    pytest.importorskip("kubernetes_validate", reason="built-in schemas come from it")
    result = _kubectl(kubeconfig, "explain", "deployment.spec.replicas")
    assert result.returncode == 0, result.stderr
    assert "FIELD: replicas <integer>" in result.stdout


def test_kubectl_explain_reads_object_meta(kubeconfig: Path) -> None:
    result = _kubectl(kubeconfig, "explain", "crd.metadata.labels")
    assert result.returncode == 0, result.stderr
    assert "FIELD: labels <map[string]string>" in result.stdout


def test_kubectl_apply_validation_parses_every_document(kubeconfig: Path) -> None:
    # Default validation fetches /openapi/v3 and the document of each kind; a document kubectl
    # cannot parse makes it fall back to /openapi/v2 (404 here) and fail.
    paths = [*sorted((ROOT / "crds").glob("*.yaml")), *sorted((ROOT / "examples").glob("*.yaml"))]
    if not paths:
        pytest.fail("no manifests found: crds/ and examples/ are part of the project")
    args = ["apply", "--dry-run=client", "-o", "name"]
    for path in paths:
        args += ["-f", str(path)]
    result = _kubectl(kubeconfig, *args)
    assert result.returncode == 0, result.stderr
    assert "openapi/v2" not in result.stderr


def test_kubectl_leaves_validation_to_the_server(kubeconfig: Path, tmp_path: Path) -> None:
    # The PATCH operations declare fieldValidation, so kubectl sends fieldValidation=Strict
    # instead of validating locally: a client-side dry run accepts an unknown field.
    if not any(res.kind == "FoundationModel" for _, _, res, _ in _crd_resources()):
        pytest.fail("crds/ has no FoundationModel CRD: run make crds")
    manifest = tmp_path / "fm.yaml"
    manifest.write_text(
        "apiVersion: drover.dev/v1alpha1\nkind: FoundationModel\nmetadata: {name: x}\n"
        "spec: {bogus: 1}\n"
    )
    result = _kubectl(kubeconfig, "apply", "--dry-run=client", "-f", str(manifest))
    assert result.returncode == 0, result.stderr
