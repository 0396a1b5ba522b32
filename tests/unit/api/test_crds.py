"""The generated CRDs: committed copies up to date, structural, small, described, and with the
names, printer columns and CEL rules the API promises."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from api_support import CHART_CRD_DIR, CRD_DIR, ROOT, load_crds, program, root_schema

from drover.api import KINDS, kind_info
from drover.api.crdgen import MAX_CRD_BYTES, main, render_all

CRDS = load_crds()


def test_committed_crds_match_the_models() -> None:
    generated = render_all()
    assert sorted(p.name for p in CRD_DIR.glob("*.yaml")) == sorted(generated)
    stale = [name for name, text in generated.items() if (CRD_DIR / name).read_text() != text]
    assert stale == [], "crds/ is out of date: run `make crds`"


def test_chart_crds_are_identical_to_crds_dir() -> None:
    chart = {p.name: p.read_bytes() for p in CHART_CRD_DIR.glob("drover.dev_*.yaml")}
    root = {p.name: p.read_bytes() for p in CRD_DIR.glob("*.yaml")}
    assert chart == root


def test_check_mode_reports_a_stale_file_with_a_diff(tmp_path: Path, capsys) -> None:
    for sub in ("crds", "charts/drover/crds"):
        shutil.copytree(ROOT / sub, tmp_path / sub)
    assert main(["--check", "--root", str(tmp_path)]) == 0
    victim = tmp_path / "charts/drover/crds" / KINDS[0].file_name
    victim.write_text(victim.read_text().replace("shortNames", "shortNamez"))
    assert main(["--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert "-    shortNamez:" in out.out and "+    shortNames:" in out.out
    assert "make crds" in out.err


def test_generation_is_deterministic() -> None:
    assert render_all() == render_all()


@pytest.mark.parametrize("path", sorted(CRD_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_crd_stays_well_under_the_apply_annotation_limit(path: Path) -> None:
    """Client-side `kubectl apply` stores the object in the annotation
    kubectl.kubernetes.io/last-applied-configuration as compact JSON (kubectl apply/patcher.go,
    util.GetModifiedConfiguration: json.Marshal), and the API server refuses annotations over
    256 KiB in all (apimachinery api/validation/objectmeta.go, TotalAnnotationSizeLimitB).
    Measured as that JSON, with a wide margin (a third) for the schema to grow."""
    assert path.stat().st_size < MAX_CRD_BYTES
    stored = json.dumps(yaml.safe_load(path.read_text()), separators=(",", ":"))
    assert len(stored.encode()) < MAX_CRD_BYTES // 3, f"{path.name}: {len(stored)} bytes as JSON"


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_crd_names_scope_and_subresources(info) -> None:
    crd = CRDS[info.kind]
    assert crd["metadata"]["name"] == f"{info.plural}.drover.dev"
    spec = crd["spec"]
    assert spec["group"] == "drover.dev" and spec["scope"] == "Namespaced"
    assert spec["names"]["categories"] == ["drover"]
    assert spec["names"]["shortNames"] == list(info.short_names)
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_short_names_are_the_promised_ones() -> None:
    assert {i.kind: i.short_names for i in KINDS} == {
        "FoundationModel": ("fmodel",),
        "FineTuneJob": ("ftjob",),
        "VectorIndex": ("vindex",),
        "InferenceService": ("infsvc",),
    }
    assert kind_info("infsvc").kind == "InferenceService"
    assert kind_info("FineTuneJob").plural == "finetunejobs"
    with pytest.raises(KeyError, match="expected one of"):
        kind_info("pod")


def _schema_at(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in re.sub(r"\[\?\(.*?\)\]", "[]", json_path).strip(".").split("."):
        if node is None:
            return None
        name, _, rest = part.partition("[")
        if name == "metadata":
            return {"type": "object"}
        node = node.get("properties", {}).get(name)
        if node is not None and rest:
            node = node.get("items")
    return node


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_every_printer_column_points_at_a_field_of_its_type(info) -> None:
    crd = CRDS[info.kind]
    schema = root_schema(crd)
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert columns[-1]["name"] == "Age"
    for column in columns:
        target = _schema_at(schema, column["jsonPath"])
        assert target is not None, column["jsonPath"]
        if column["type"] in ("integer", "number", "boolean"):
            assert target["type"] == column["type"], column


def test_printer_columns_show_what_a_person_wants() -> None:
    def names(kind: str) -> list[str]:
        cols = CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]
        return [c["name"] for c in cols if not c.get("priority")]

    assert names("InferenceService") == ["Model", "Stable", "Canary", "Replicas", "Ready", "Age"]
    assert names("FineTuneJob") == ["Base", "Method", "Progress", "Phase", "Age"]
    assert {"Source", "Phase", "Bytes"} <= set(names("FoundationModel"))
    assert {"Version", "Chunks", "Ready"} <= set(names("VectorIndex"))


def _walk(node: Any, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for name, prop in node.get("properties", {}).items():
            yield from _walk(prop, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            yield from _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_every_field_has_a_description(kind: str) -> None:
    # Scalar list items (e.g. the strings of include[]) and map values that are not objects
    # (status.drift.psi{}: a number per signal) are values, not fields.
    missing = [
        p
        for p, node in _walk(root_schema(CRDS[kind]))
        if not node.get("description")
        and not (p.endswith(("[]", "{}")) and node.get("type") != "object")
    ]
    assert missing == []


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_schema_is_structural(kind: str) -> None:
    for path, node in _walk(root_schema(CRDS[kind])):
        assert "$ref" not in node and "anyOf" not in node and "title" not in node, path
        assert "additionalProperties" not in node or "properties" not in node, path
        assert (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ), path
        if node.get("type") == "object" and "default" in node:
            # A default must itself satisfy the object's required fields.
            assert set(node.get("required", ())) <= set(node["default"]), path


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_every_cel_rule_compiles_and_has_a_message(kind: str) -> None:
    rules = [
        r
        for _, node in _walk(root_schema(CRDS[kind]))
        for r in node.get("x-kubernetes-validations", ())
    ]
    for rule in rules:
        program(rule["rule"])
        assert len(rule["message"]) > 20
    assert rules or kind == "never"


def test_crd_yaml_round_trips() -> None:
    for name, text in render_all().items():
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition", name


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_crd_is_a_valid_kubernetes_1_30_custom_resource_definition(kind: str) -> None:
    assert kubernetes_validate.validate(CRDS[kind], "1.30", strict=True) == "1.30"


# `self.a.b` and `self.a[0].b` references in a rule, stopping before method calls like .size().
_REFERENCE = re.compile(r"\bself((?:\.[A-Za-z_]\w*(?!\w|\s*\()|\[\d+\])+)")


def _resolve(node: dict[str, Any], reference: str) -> dict[str, Any] | None:
    if reference in (".metadata.name", ".metadata.generateName"):
        # Rules on the root may read these two (and only these) metadata fields.
        return node["properties"]["metadata"]
    for token in re.findall(r"\.[A-Za-z_]\w*|\[\d+\]", reference):
        if token.startswith("["):
            node = node.get("items", {})
            continue
        found = node.get("properties", {}).get(token[1:])
        if found is None:
            return None
        node = found
    return node


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_cel_rules_and_field_paths_name_fields_of_their_schema(kind: str) -> None:
    # The API server type-checks rules against the schema when the CRD is created; a misspelt
    # field would make the whole CRD fail to install.
    for path, node in _walk(root_schema(CRDS[kind])):
        for rule in node.get("x-kubernetes-validations", ()):
            for reference in _REFERENCE.findall(rule["rule"]):
                assert _resolve(node, reference) is not None, (path, reference)
            if "fieldPath" in rule:
                assert _resolve(node, rule["fieldPath"]) is not None, (path, rule["fieldPath"])
