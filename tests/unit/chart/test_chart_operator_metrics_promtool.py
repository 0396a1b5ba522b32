"""The operator's /metrics, served by its own exporter, passes `promtool check metrics`, and the
per-object series it exports leave /metrics once their object is gone."""

from __future__ import annotations

import shutil
import socket
import subprocess
import urllib.request

import pytest

from drover import observability
from drover.observability import FreshGauge

PROMTOOL = shutil.which("promtool")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (make system-deps)")
def test_operator_metrics_pass_promtool_check_metrics() -> None:
    assert PROMTOOL is not None
    with observability.observe("FoundationModel"):
        pass
    with pytest.raises(RuntimeError), observability.observe("InferenceService"):
        raise RuntimeError("reconcile failed")
    observability.record_phase("FineTuneJob", "ml", "support-lora", "Failed")
    observability.record_replicas("ml", "support-bot", 4, (1, 4))
    observability.record_rollout_events("ml", "support-bot", ["RolloutStep", "RolloutRolledBack"])
    observability.METRICS_UNAVAILABLE.labels("ml", "support-bot").set(0)
    observability.SCALE_EVENTS.labels("ml", "support-bot").inc()
    port = free_port()
    observability.start_metrics_server(port, addr="127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    for series in (
        'drover_rollouts_total{namespace="ml",result="RolledBack",service="support-bot"} 1.0',
        'drover_autoscaler_max_replicas{namespace="ml",service="support-bot"} 4.0',
        'drover_operator_resources{kind="FineTuneJob",name="support-lora",namespace="ml",'
        'phase="Failed"} 1.0',
    ):
        assert series in text
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_per_object_series_expire_when_no_longer_set() -> None:
    now = [0.0]
    gauge = FreshGauge(
        "drover_test_fresh", "test", ["name"], ttl=300, registry=None, clock=lambda: now[0]
    )
    gauge.set(("kept",), 1)
    gauge.set(("deleted",), 1)
    now[0] = 200
    gauge.set(("kept",), 2)  # its timer ran again
    now[0] = 301
    samples = {s.labels["name"]: s.value for s in next(iter(gauge.collect())).samples}
    assert samples == {"kept": 2}


def test_phase_series_follow_the_object() -> None:
    observability.record_phase("VectorIndex", "ml", "handbook", "Building")
    observability.record_phase("VectorIndex", "ml", "handbook", "Ready")
    phases = {
        s.labels["phase"]
        for s in next(iter(observability.PHASES.collect())).samples
        if s.labels["name"] == "handbook"
    }
    assert phases == {"Ready"}
    observability.forget("VectorIndex", "ml", "handbook")
    assert not [
        s
        for s in next(iter(observability.PHASES.collect())).samples
        if s.labels["name"] == "handbook"
    ]
