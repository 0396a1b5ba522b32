"""Retraining decisions (drover.policy.retraining): once per trigger, a deterministic job name, a
cooldown, and the served model taken from status while the spec is unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drover.api.drift import RetrainingStatus
from drover.api.inferenceservice import InferenceServiceSpec
from drover.policy.retraining import (
    JobView,
    decide_retraining,
    job_name,
    job_spec,
    served_names,
)

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TEMPLATE = {
    "baseModel": {"name": "tiny-llama"},
    "dataset": {"uri": "file:///data/support.jsonl", "format": "chat"},
    "method": "lora",
    "evaluation": {
        "dataset": {"uri": "file:///data/eval.jsonl", "format": "chat"},
        "thresholds": {"maxLoss": 4.0},
    },
}


def spec(**retraining: Any) -> InferenceServiceSpec:
    return InferenceServiceSpec.model_validate(
        {
            "model": {"name": "tiny-llama"},
            "drift": {},
            "retraining": {"template": TEMPLATE, "cooldownSeconds": 3600, **retraining},
        }
    )


def decide(previous, job=None, *, drift=False, rolling=False, at=T0, s=None):
    return decide_retraining(
        "support-bot",
        s or spec(),
        previous,
        job,
        drift_detected=drift,
        rolling_out=rolling,
        now=at,
    )


def test_drift_creates_one_job_named_after_the_service_and_the_count() -> None:
    started = decide(None, drift=True)
    assert started.create == "support-bot-retrain-1"
    assert started.status.count == 1 and started.status.current is not None
    assert started.status.current.basis == "tiny-llama"
    assert [e.reason for e in started.events] == ["RetrainingStarted"]
    # The next run follows that job and starts no other, even while drift lasts.
    running = decide(started.status, JobView(exists=True, phase="Running"), drift=True)
    assert running.create is None and running.status.current.phase == "Running"


def test_the_job_spec_is_the_template_with_the_output_named_after_the_job() -> None:
    wire = job_spec(spec().retraining, "support-bot-retrain-3")
    assert wire["output"]["modelName"] == "support-bot-retrain-3"
    assert wire["baseModel"] == {"name": "tiny-llama"} and wire["method"] == "lora"


def test_a_passed_gate_becomes_latest_and_is_served_in_place_of_the_spec() -> None:
    started = decide(None, drift=True).status
    done = decide(
        started, JobView(exists=True, phase="Succeeded", output_model="support-bot-retrain-1")
    )
    latest = done.status.latest
    assert latest is not None and latest.model == "support-bot-retrain-1"
    assert latest.adapter_of == "tiny-llama"  # a LoRA output runs on its base's engine
    assert done.status.current is None
    assert [e.reason for e in done.events] == ["RetrainingSucceeded"]
    wire = done.status.to_wire()
    assert served_names(spec(), wire) == ["tiny-llama", "support-bot-retrain-1"]
    # The user's spec changed since (a GitOps commit): the spec wins.
    moved = InferenceServiceSpec.model_validate({**spec().to_wire(), "model": {"name": "other"}})
    assert served_names(moved, wire) == ["other"]


def test_a_merged_output_is_served_alone() -> None:
    merged = spec(template={**TEMPLATE, "output": {"merge": True}})
    started = decide(None, drift=True, s=merged).status
    done = decide(started, JobView(True, "Succeeded", "support-bot-retrain-1"), s=merged).status
    assert served_names(merged, done.to_wire()) == ["support-bot-retrain-1"]


@pytest.mark.parametrize(
    ("job", "why"),
    [
        (JobView(True, "Failed", message="evaluation: maxLoss: 5.1 > 4"), "maxLoss: 5.1 > 4"),
        (JobView(exists=False), "the job was deleted"),
    ],
)
def test_a_failed_or_deleted_job_is_history_and_nothing_is_served(job, why) -> None:
    started = decide(None, drift=True).status
    done = decide(started, job, drift=True)
    assert done.status.current is None and done.status.latest is None
    assert why in done.status.history[-1] and done.events[0].reason == "RetrainingFailed"
    assert served_names(spec(), done.status.to_wire()) == ["tiny-llama"]
    # The drift persists, but the cooldown (1 h) holds the next job back ...
    held = decide(done.status, drift=True, at=T0 + timedelta(minutes=59))
    assert held.create is None
    # ... until it has passed.
    assert decide(done.status, drift=True, at=T0 + timedelta(hours=1)).create == (
        "support-bot-retrain-2"
    )


def test_no_job_starts_while_a_canary_rolls_out() -> None:
    assert decide(None, drift=True, rolling=True).create is None


@pytest.mark.parametrize(
    ("elapsed", "starts"), [(timedelta(hours=23), False), (timedelta(hours=24), True)]
)
def test_the_schedule_counts_from_when_retraining_was_turned_on(elapsed, starts) -> None:
    daily = spec(onDrift=False, scheduleSeconds=86400)
    first = decide(None, s=daily)  # records `since`, starts nothing
    assert first.create is None and first.status.since == T0
    later = decide(first.status, s=daily, drift=True, at=T0 + elapsed)  # drift is off here
    assert (later.create is not None) is starts
    if starts:
        assert later.trigger == "schedule"


def test_drift_is_ignored_when_only_the_schedule_triggers() -> None:
    assert decide(None, s=spec(onDrift=False, scheduleSeconds=86400), drift=True).create is None


def test_a_retraining_needs_a_trigger_and_a_valid_template() -> None:
    with pytest.raises(ValueError, match="retraining needs a trigger"):
        spec(onDrift=False)
    with pytest.raises(ValueError, match="baseModel"):
        spec(template={"dataset": TEMPLATE["dataset"]})


def test_long_service_names_keep_job_names_within_a_dns_label() -> None:
    name = job_name("s" * 60, 12)
    assert len(name) <= 63 and name.endswith("-retrain-12")
    assert job_name("s" * 60, 12) == name != job_name("s" * 59 + "t", 12)


def test_the_status_round_trips() -> None:
    status = decide(None, drift=True).status
    assert RetrainingStatus.model_validate(status.to_wire()) == status
