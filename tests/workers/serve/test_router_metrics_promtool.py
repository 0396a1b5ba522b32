"""The router's and model replicas' series, as the Ray node's metrics port serves them, pass
`promtool check metrics` (naming and type lint). Ray's own series on that port are Ray's, not
ours, and are left out, and so are the labels Ray adds to every user metric (`Component`,
`NodeAddress`, `SessionName`, `Version`, `WorkerId`: CamelCase, which promtool's lint flags and
Drover cannot change)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.request

import pytest
from serve_harness import ServeHarness

from drover_workers.serve import metrics as m

PROMTOOL = shutil.which("promtool")
NAME = re.compile(r"^(?:# (?:HELP|TYPE) )?([a-zA-Z_:][a-zA-Z0-9_:]*)")
RAY_LABELS = re.compile(
    r'(?<=[{,])(?:Component|NodeAddress|SessionName|Version|WorkerId)="(?:[^"\\]|\\.)*",?'
)


def ours(text: str) -> str:
    """The lines of the exposition that belong to drover's series (HELP, TYPE and samples)."""
    keep = []
    for line in text.splitlines():
        found = NAME.match(line)
        if found and found.group(1).startswith(m.RAY_PREFIX + "drover_"):
            keep.append(RAY_LABELS.sub("", line).replace(",}", "}").replace("{}", ""))
    return "\n".join(keep) + "\n"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (make system-deps)")
def test_router_metrics_pass_promtool_check_metrics(chatbot: ServeHarness) -> None:
    assert PROMTOOL is not None
    client = chatbot.client()
    list(client.completions.create(model="chatbot:v1", prompt="Hi", max_tokens=2, stream=True))
    deadline = time.monotonic() + 90
    while True:
        with urllib.request.urlopen(chatbot.head.metrics_url, timeout=30) as resp:
            text = ours(resp.read().decode())
        if m.INTER_TOKEN_LATENCY_SERIES + "_count" in text or time.monotonic() > deadline:
            break
        time.sleep(2)
    for series in (
        m.REQUESTS_SERIES,
        m.TIME_TO_FIRST_TOKEN_SERIES + "_bucket",
        m.QUEUE_DEPTH_SERIES,
    ):
        assert series in text
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
