"""Local stack: start background processes in their own session and stop exactly them again.

Every process `drover local up` starts leads a new session (so its children are findable); Ray's
daemons are found by session id or by the private temp dir in their command line. Nothing here
ever signals a process it cannot tie to something it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(cmd: Sequence[str], log: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start `cmd` in the background, in a new session, output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,
        )


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def session_pids(session: int, marker: str = "") -> list[int]:
    """Live processes of `session`, plus (when `marker` is set) any naming it in their cmdline."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        try:
            mine = os.getsid(pid) == session
            if not mine and marker:
                mine = marker.encode() in (entry / "cmdline").read_bytes()
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            continue
        if mine and alive(pid):
            found.append(pid)
    return found


def stop_session(session: int, marker: str = "", grace: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL, every process of `session` (and `marker`); True when all are gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in session_pids(session, marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not session_pids(session, marker):
                return True
            time.sleep(0.2)
    return not session_pids(session, marker)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (OSError, ValueError):
        return False


def wait_until(check, timeout: float, interval: float = 0.5) -> bool:  # type: ignore[no-untyped-def]
    """Poll `check()` until true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
