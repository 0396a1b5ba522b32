"""A version's only model replica SIGKILLed under traffic, as a node failure would (issue #16,
Ray faults): every client request ends, within a bound, with an answer or an OpenAI-shaped JSON
error (5xx, `error.type`), none hangs, and the version answers again once Serve has replaced the
replica.

What Ray Serve does (ray-project/ray, python/ray/serve/_private/router.py,
`AsyncioRouter._route_and_send_request_once` and `_handle_actor_died_error`): a request sent to a
replica that is found dead before it accepts is routed again; one the replica had accepted fails
with the ActorDiedError; the controller then starts a replacement (deployment_state.py,
`DeploymentState.check_and_update_replicas`). Requests routed while no replica is running wait in
the handle for one, with no deadline of Serve's own.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from serve_harness import API_KEY, APP, ServeHarness

# Two to three minutes, most of it the replacement loading its model: `make test-chaos` runs it.
pytestmark = pytest.mark.chaos

CLIENTS = 3
CLIENT_TIMEOUT = 120.0  # a request still open after this counts as hung
DEADLINE = 300.0  # for the replacement to answer


def model_replicas(h: ServeHarness) -> list[dict[str, Any]]:
    app = h.status()["applications"].get(f"{APP}-v1") or {}
    model = (app.get("deployments") or {}).get("model") or {}
    return list(model.get("replicas") or [])


@dataclass(frozen=True)
class Outcome:
    sent: float
    ended: float
    code: str  # the HTTP status, or the name of the client's exception
    body: Any  # the JSON answer (or its text)
    retry_after: str | None = None


class Traffic:
    """Closed-loop clients, each outcome recorded."""

    def __init__(self, h: ServeHarness) -> None:
        self.url = f"{h.base_url}/completions"
        self.outcomes: list[Outcome] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def _run(self) -> None:
        body = {"model": "chatbot", "prompt": "Hello there", "max_tokens": 8}
        headers = {"authorization": f"Bearer {API_KEY}"}
        with httpx.Client(timeout=CLIENT_TIMEOUT) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    r = client.post(self.url, json=body, headers=headers)
                    try:
                        answer = r.json()
                    except ValueError:
                        answer = r.text
                    code, retry = str(r.status_code), r.headers.get("retry-after")
                except httpx.HTTPError as exc:
                    code, answer, retry = type(exc).__name__, str(exc), None
                outcome = Outcome(sent, time.monotonic(), code, answer, retry)
                with self.lock:
                    self.outcomes.append(outcome)
                if code != "200":
                    time.sleep(0.2)  # as a client honouring Retry-After would, a little

    def ok_since(self, t: float) -> int:
        with self.lock:
            return sum(1 for o in self.outcomes if o.code == "200" and o.sent >= t)

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT + 10)
        assert not any(t.is_alive() for t in self.threads), "a client request never ended"


def error_code(body: Any) -> str:
    return str((body.get("error") or {}).get("code")) if isinstance(body, dict) else ""


def wait(what: str, check: Any, deadline: float) -> None:
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_model_replica_fails_cleanly_and_its_replacement_answers(
    serve_harness: ServeHarness,
) -> None:
    h = serve_harness
    h.apply("stable")  # v1 alone, one model replica
    (replica,) = [r for r in model_replicas(h) if r["state"] == "RUNNING"]
    end = time.monotonic() + DEADLINE
    with Traffic(h) as traffic:
        wait("answers before the kill", lambda: traffic.ok_since(0) >= 5, end)
        os.kill(int(replica["pid"]), signal.SIGKILL)
        killed = time.monotonic()

        def replaced() -> bool:
            live = [r for r in model_replicas(h) if r["state"] == "RUNNING"]
            return any(r["replica_id"] != replica["replica_id"] for r in live)

        wait("a replacement replica RUNNING", replaced, end)
        back = time.monotonic()
        wait("answers from the replacement", lambda: traffic.ok_since(back) >= 5, end)
    outcomes = traffic.outcomes
    failed = [o for o in outcomes if o.code != "200"]
    codes = Counter((o.code, error_code(o.body)) for o in outcomes)
    summary = f"{codes}; first failures: {failed[:3]}"
    print(f"replica killed; outcomes {dict(codes)}; replaced after {back - killed:.1f}s")
    # Every failure is a clean, retryable OpenAI-shaped error: no client timeout, no reset.
    for o in failed:
        assert o.code == "503" and o.retry_after == "1", summary
        assert o.body["error"]["type"] == "server_error" and o.body["error"]["message"], summary
    # Not held until the replacement ran: refused while it was still starting.
    assert any(killed < o.ended < back for o in failed), summary
    assert sum(1 for o in outcomes if o.code == "200" and o.sent > back) >= 5, summary
