"""Drover's status read by kstatus' rules, the ones Flux (kustomize-controller `wait`/health
checks) and `kstatus`-based tools apply to a custom resource (`gitops_support.kstatus_compute`
follows cli-utils' `Compute` / `checkGenericProperties`: "the absence of any known conditions
means the resource is current", so Drover must say Reconciling/Stalled).
"""

from __future__ import annotations

import copy

import pytest
from gitops_support import T0, Case, cases, edited, kstatus_compute

from drover.policy.conditions import Cond, get_condition, set_conditions, summarise


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_kstatus_of_what_the_operator_writes(case: Case) -> None:
    assert kstatus_compute(case.obj)[0] == case.kstatus


def test_a_resource_still_working_is_in_progress_not_current() -> None:
    """Without Reconciling, kstatus would call a model still downloading Current."""
    fetching = next(c for c in cases() if c.name == "fm-fetching").obj
    reconciling = get_condition(fetching["status"]["conditions"], "Reconciling")
    assert reconciling is not None and reconciling["status"] == "True"
    assert reconciling["reason"] == "Fetching"
    assert kstatus_compute(fetching) == ("InProgress", "fetch job running: 40%")


def test_a_failure_that_needs_a_person_is_stalled() -> None:
    failed = next(c for c in cases() if c.name == "ft-training-failed").obj
    assert kstatus_compute(failed) == ("Failed", "RayJob failed: OOM")


def test_an_unobserved_generation_is_in_progress() -> None:
    ready = next(c for c in cases() if c.name == "fm-ready").obj
    status, message = kstatus_compute(edited(ready))
    assert status == "InProgress"
    assert message == "FoundationModel generation is 2, but latest observed generation is 1"


def test_deleting_is_terminating() -> None:
    ready = copy.deepcopy(next(c for c in cases() if c.name == "fm-ready").obj)
    ready["metadata"]["deletionTimestamp"] = "2026-05-01T12:00:00Z"
    assert kstatus_compute(ready)[0] == "Terminating"


def test_ready_objects_carry_reconciling_and_stalled_false() -> None:
    """kstatus' conditions are abnormal-true; a settled object says both are False."""
    conds = [Cond("Fetched", True, "Cached", "done"), Cond("CacheReady", True, "ClaimBound", "")]
    summary = summarise(
        set_conditions(None, conds, generation=4, now=T0),
        ("CacheReady", "Fetched"),
        generation=4,
        now=T0,
    )
    for type_ in ("Reconciling", "Stalled"):
        cond = get_condition(summary, type_)
        assert cond is not None and cond["status"] == "False", cond
        assert cond["observedGeneration"] == 4
