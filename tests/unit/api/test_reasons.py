"""Condition reasons: one enum per kind (drover.api.reasons), all documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drover.api.reasons import REASON_ENUMS, SummaryReason
from drover.policy.conditions import TERMINAL_REASONS, Cond

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_reasons() -> dict[str, set[str]]:
    """The README's "Condition reasons" table: enum name → the reasons its row lists."""
    text = README.read_text()
    section = text.split("### Condition reasons", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[2].startswith("`"):
            rows[cells[2].strip("`")] = set(re.findall(r"`([A-Za-z]+)`", cells[3]))
    return rows


@pytest.mark.parametrize("enum", REASON_ENUMS, ids=lambda e: e.__name__)
def test_the_readme_lists_every_reason_of_each_enum(enum: type) -> None:
    assert readme_reasons().get(enum.__name__) == {m.value for m in enum}


def test_the_readme_documents_no_enum_that_does_not_exist() -> None:
    assert set(readme_reasons()) == {e.__name__ for e in REASON_ENUMS}


def test_reasons_are_camel_case_and_each_is_written_by_one_enum_only() -> None:
    values = [m.value for e in REASON_ENUMS for m in e]
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", v) for v in values)
    # "ModelReady" is both a condition type and DependencyReason's value; no reason is in two enums.
    assert len(values) == len(set(values))


def test_every_terminal_reason_is_a_documented_reason() -> None:
    documented = {m.value for e in REASON_ENUMS for m in e}
    assert set(TERMINAL_REASONS) - documented == set()


def test_a_condition_records_the_reason_as_a_plain_string() -> None:
    cond = Cond("Ready", True, SummaryReason.ALL_CONDITIONS_READY)
    assert type(cond.reason) is str and cond.reason == "AllConditionsReady"
