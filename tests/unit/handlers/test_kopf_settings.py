"""kopf's settings as Drover sets them (drover.main.configure)."""

from __future__ import annotations

import kopf

from drover.config import OperatorConfig
from drover.main import configure

HANDOVER_BOUND = 30  # seconds: a standby takes over within this after the active replica dies


def test_a_killed_replicas_peering_entry_expires_within_the_handover_bound() -> None:
    # A SIGKILLed replica leaves its entry in the peering object; the standby waits until the
    # entry's lifetime ends. kopf's default (60 s) broke #16's 30 s handover bound.
    settings = kopf.OperatorSettings()
    configure(settings, OperatorConfig())
    assert settings.peering.lifetime + 5 <= HANDOVER_BOUND  # 5 s to notice and resume
    # kopf renews the entry 5-10 s before its lifetime ends: that must stay a positive interval.
    assert settings.peering.lifetime - 10 >= 1


def test_unset_priorities_are_drawn_so_two_replicas_do_not_freeze_each_other() -> None:
    drawn = set()
    for _ in range(5):
        settings = kopf.OperatorSettings()
        configure(settings, OperatorConfig())
        drawn.add(settings.peering.priority)
    assert len(drawn) > 1


def test_a_failed_poll_runs_again_after_its_interval_not_kopfs_minute() -> None:
    import drover.main  # noqa: F401 - registers the timers

    timers = [
        h
        for h in kopf.get_default_registry()._spawning.get_all_handlers()
        if h.id.endswith(("_poll", "_autoscale"))
    ]
    assert len(timers) == 5
    for timer in timers:
        assert timer.backoff == timer.interval, timer.id


def test_a_stopping_operator_exits_within_kubernetes_grace_period() -> None:
    # kopf stops when a root task fails (a 409 on the peering keep-alive) as on SIGTERM, then
    # waits with no timeout for watchers that can outlive the stop; its own SIGKILL came 10
    # minutes later by default (kopf/_core/reactor/running.py, `ultimate_termination`), and
    # `drover run` hung meanwhile, handling but no longer peering (issue #16; reproduced with
    # constant 409s from the local control plane: 2 of 7 runs, fixed 1 of 6 exiting by kopf's
    # SIGKILL 20 s after the stop began).
    settings = kopf.OperatorSettings()
    configure(settings, OperatorConfig())
    timeout = settings.process.ultimate_exiting_timeout
    assert timeout is not None and timeout < 30  # terminationGracePeriodSeconds' default
