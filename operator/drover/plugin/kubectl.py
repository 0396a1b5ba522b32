"""Plugin layer, I/O: every call goes through the `kubectl` on the PATH, so the plugin honours the
same kubeconfig, context and credentials as the kubectl that runs it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any


class PluginError(Exception):
    """A message for the user; the plugin exits 1 with it."""


class Kubectl:
    def __init__(self, binary: str, flags: Sequence[str]) -> None:
        self.binary, self.flags = binary, list(flags)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *self.flags, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def get(self, *args: str) -> dict[str, Any] | None:
        """`kubectl get ARGS -o json`; None when the object or its type does not exist."""
        proc = self.run("get", *args, "-o", "json")
        if proc.returncode != 0:
            err = proc.stderr
            if "NotFound" in err or "doesn't have a resource type" in err:
                return None
            raise PluginError(f"kubectl get {' '.join(args)}: {err.strip()}")
        out: dict[str, Any] = json.loads(proc.stdout)
        return out
