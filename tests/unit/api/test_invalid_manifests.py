"""The corpus in tests/invalid/: each manifest is refused by its CRD (schema or CEL rule) and by
the models, both naming the same field, the models with a message that says how to fix it.

Each file starts with `# expect-path:` (the offending field), `# expect-by:` (schema or cel) and
`# expect-message:` (text the models' message, and a CEL rule's message, must contain). A file with
several mistakes adds `# expect-also: <field> | <message>` lines: every one is reported, by the CRD
and by the models, not only the first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import (
    INVALID_DIR,
    apply_defaults,
    cel_violations,
    load_crds,
    load_documents,
    read_also,
    read_expectations,
    root_schema,
    schema_errors,
)

from drover.api import InvalidResource, parse_resource

CRDS = load_crds()
FILES = sorted(INVALID_DIR.glob("*.yaml"))


def test_corpus_has_at_least_sixty_manifests_covering_every_kind() -> None:
    assert len(FILES) >= 60
    kinds = {load_documents(f)[0]["kind"] for f in FILES}
    assert kinds == set(CRDS)
    by = {read_expectations(f)["by"] for f in FILES}
    assert by == {"schema", "cel"}
    several = {load_documents(f)[0]["kind"] for f in FILES if read_also(f)}
    assert several == set(CRDS), "each kind has a manifest with several mistakes"


def _schema_error_names_field(errors: list[tuple[str, str]], expected: str) -> bool:
    parent, _, leaf = expected.rpartition(".")
    for path, message in errors:
        if path == expected:
            return True
        # required and unknown properties are reported on the parent object.
        if path == parent and f"'{leaf}'" in message:
            return True
    return False


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_crd_refuses_invalid_manifest_at_the_named_field(path: Path) -> None:
    expect = read_expectations(path)
    (doc,) = load_documents(path)
    crd = CRDS[doc["kind"]]
    errors = schema_errors(doc, crd)
    if expect["by"] == "schema":
        assert _schema_error_names_field(errors, expect["path"]), errors
        return
    # A cross-field rule: the schema alone accepts it; a CEL rule on the defaulted object refuses.
    assert errors == []
    schema = root_schema(crd)
    violations = cel_violations(apply_defaults(doc, schema), schema)
    assert len(violations) == 1 + len(read_also(path)), violations
    assert _violation_names_field(violations, expect["path"], expect["message"]), violations


def _violation_names_field(violations: list[dict[str, str]], field: str, message: str) -> bool:
    # A rule on the root object has no fieldPath (metadata declares no fields); its message names
    # the field instead.
    return any(
        (v["path"] == field or (v["path"] == "" and field in v["message"]))
        and message in v["message"]
        for v in violations
    )


@pytest.mark.parametrize("path", [f for f in FILES if read_also(f)], ids=lambda p: p.stem)
def test_every_problem_of_a_manifest_is_reported_not_only_the_first(path: Path) -> None:
    (doc,) = load_documents(path)
    crd = CRDS[doc["kind"]]
    errors = schema_errors(doc, crd)
    schema = root_schema(crd)
    violations = [] if errors else cel_violations(apply_defaults(doc, schema), schema)
    with pytest.raises(InvalidResource) as caught:
        parse_resource(doc)
    for field, message in read_also(path):
        by_crd = _schema_error_names_field(errors, field) or _violation_names_field(
            violations, field, message
        )
        assert by_crd, f"the CRD does not report {field}: {errors or violations}"
        named = [e for e in caught.value.errors if e.path == field and message in e.message]
        assert named, f"the models do not report {field} ({message}): {caught.value}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_models_refuse_invalid_manifest_naming_the_field_and_the_fix(path: Path) -> None:
    expect = read_expectations(path)
    (doc,) = load_documents(path)
    with pytest.raises(InvalidResource) as caught:
        parse_resource(doc)
    named = [e for e in caught.value.errors if e.path == expect["path"]]
    assert named, f"no error names {expect['path']}: {caught.value}"
    assert any(expect["message"] in e.message for e in named), named
    assert expect["path"] in str(caught.value)


@pytest.mark.parametrize("path", [f for f in FILES if read_expectations(f)["by"] == "cel"])
def test_cel_and_model_give_the_same_message(path: Path) -> None:
    (doc,) = load_documents(path)
    schema = root_schema(CRDS[doc["kind"]])
    cel_messages = {v["message"] for v in cel_violations(apply_defaults(doc, schema), schema)}
    with pytest.raises(InvalidResource) as caught:
        parse_resource(doc)
    assert cel_messages <= {e.message for e in caught.value.errors}
