"""examples/gitops: the Argo CD Application and the Flux GitRepository + Kustomization parse and
carry what their CRDs require, and point at the pipeline that exists in this repository.

The schemas below are the required fields, enums and patterns of the CRDs' openAPIV3Schema
(argoproj/argo-cd manifests/crds/application-crd.yaml, argoproj.io/v1alpha1 Application;
fluxcd/source-controller config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml, v1;
fluxcd/kustomize-controller config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml,
v1), transcribed because no cluster here can serve them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
GITOPS = ROOT / "examples" / "gitops"
DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"  # metav1.Duration as Flux's CRDs pattern it
NAME = {"type": "string", "minLength": 1, "maxLength": 253}


def crd_object(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": {
                "type": "object",
                "required": ["name", "namespace"],
                "properties": {"name": NAME, "namespace": NAME},
            },
            "spec": spec,
        },
    }


APPLICATION = crd_object(
    {
        "type": "object",
        "required": ["destination", "project"],
        "properties": {
            "project": {"type": "string"},
            "source": {
                "type": "object",
                "required": ["repoURL"],
                "properties": {
                    "repoURL": {"type": "string"},
                    "path": {"type": "string"},
                    "targetRevision": {"type": "string"},
                },
            },
            "destination": {
                "type": "object",
                "properties": {
                    "server": {"type": "string"},
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                },
            },
            "syncPolicy": {
                "type": "object",
                "properties": {
                    "automated": {
                        "type": "object",
                        "properties": {
                            "prune": {"type": "boolean"},
                            "selfHeal": {"type": "boolean"},
                        },
                    },
                    "syncOptions": {"type": "array", "items": {"type": "string"}},
                    "retry": {
                        "type": "object",
                        "properties": {
                            "limit": {"type": "integer", "format": "int64"},
                            "backoff": {
                                "type": "object",
                                "properties": {
                                    "duration": {"type": "string"},
                                    "factor": {"type": "integer", "format": "int64"},
                                    "maxDuration": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    }
)
GIT_REPOSITORY = crd_object(
    {
        "type": "object",
        "required": ["interval", "url"],
        "properties": {
            "interval": {"type": "string", "pattern": DURATION},
            "url": {"type": "string", "pattern": "^(http|https|ssh)://.*$"},
            "ref": {
                "type": "object",
                "properties": {
                    k: {"type": "string"} for k in ("branch", "tag", "semver", "commit")
                },
            },
            "ignore": {"type": "string"},
        },
    }
)
KUSTOMIZATION = crd_object(
    {
        "type": "object",
        "required": ["interval", "prune", "sourceRef"],
        "properties": {
            "interval": {"type": "string", "pattern": DURATION},
            "retryInterval": {"type": "string", "pattern": DURATION},
            "timeout": {"type": "string", "pattern": DURATION},
            "path": {"type": "string"},
            "prune": {"type": "boolean"},
            "wait": {"type": "boolean"},
            "sourceRef": {
                "type": "object",
                "required": ["kind", "name"],
                "properties": {
                    "kind": {"enum": ["OCIRepository", "GitRepository", "Bucket"]},
                    "name": NAME,
                },
            },
        },
    }
)
SCHEMAS = {
    ("argoproj.io/v1alpha1", "Application"): APPLICATION,
    ("source.toolkit.fluxcd.io/v1", "GitRepository"): GIT_REPOSITORY,
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): KUSTOMIZATION,
}


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((GITOPS / name).read_text())
    return doc


@pytest.mark.parametrize(
    "name", ["argocd-application.yaml", "flux-gitrepository.yaml", "flux-kustomization.yaml"]
)
def test_example_matches_its_crd(name: str) -> None:
    doc = load(name)
    schema = SCHEMAS[(doc["apiVersion"], doc["kind"])]
    jsonschema.validate(doc, schema)


def test_schemas_reject_what_the_crds_reject() -> None:
    """The transcribed schemas are not vacuous: each drops a required field or a bad value."""
    kustomization = load("flux-kustomization.yaml")
    del kustomization["spec"]["prune"]
    git = load("flux-gitrepository.yaml")
    git["spec"]["url"] = "github.com/drover-dev/drover"
    app = load("argocd-application.yaml")
    del app["spec"]["project"]
    for doc, schema in ((kustomization, KUSTOMIZATION), (git, GIT_REPOSITORY), (app, APPLICATION)):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, schema)


def _pipeline_kinds(path: Path) -> set[str]:
    return {
        doc["kind"]
        for file in sorted(path.glob("*.yaml"))
        for doc in yaml.safe_load_all(file.read_text())
        if doc
    }


def test_argocd_application_syncs_the_pipeline() -> None:
    app = load("argocd-application.yaml")
    path = ROOT / app["spec"]["source"]["path"]
    assert _pipeline_kinds(path) == {
        "FoundationModel",
        "FineTuneJob",
        "VectorIndex",
        "InferenceService",
    }


def test_flux_kustomization_applies_the_pipeline_from_its_source() -> None:
    git, kustomization = load("flux-gitrepository.yaml"), load("flux-kustomization.yaml")
    ref = kustomization["spec"]["sourceRef"]
    assert (ref["kind"], ref["name"]) == ("GitRepository", git["metadata"]["name"])
    assert kustomization["metadata"]["namespace"] == git["metadata"]["namespace"]
    path = kustomization["spec"]["path"].removeprefix("./")
    assert "FineTuneJob" in _pipeline_kinds(ROOT / path)
    # The source's .sourceignore-style filter keeps the path the Kustomization applies.
    assert f"!/{path.rstrip('/')}/" in git["spec"]["ignore"].splitlines()
    # kstatus health of what it applies: Drover writes Reconciling/Stalled for it to read.
    assert kustomization["spec"]["wait"] is True


def test_argocd_and_flux_watch_the_same_repository() -> None:
    app, git = load("argocd-application.yaml"), load("flux-gitrepository.yaml")
    assert app["spec"]["source"]["repoURL"] == git["spec"]["url"]
