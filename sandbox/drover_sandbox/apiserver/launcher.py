"""Local control plane, process launcher: start `drover local apiserver` as a child process and
wait for it to answer; stop it by PID. Used by the test fixtures and the local stack.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# The operator and the sandbox from this checkout, so a child started here runs this code even
# where the installed copies are another checkout's.
ROOT = Path(__file__).resolve().parents[3]
SOURCES = (ROOT / "operator", ROOT / "sandbox")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    data_dir: Path, *extra: str, port: int = 0, timeout: float = 30.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server (logging to DATA_DIR/apiserver.log); returns (process, base URL)."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (*map(str, SOURCES), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    with open(data_dir / "apiserver.log", "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "drover",
                "local",
                "apiserver",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                *extra,
            ],
            stdout=log,
            stderr=log,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the local apiserver exited ({proc.returncode}); see {data_dir / 'apiserver.log'}"
            )
        try:
            with urllib.request.urlopen(f"{url}/version", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(
        f"the local apiserver did not answer /version within {timeout:.0f} s; "
        f"see {data_dir / 'apiserver.log'}"
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM (the server saves its snapshot), then SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
