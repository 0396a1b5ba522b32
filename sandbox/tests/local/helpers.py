"""Helpers of the local-stack tests: KubeRay's CRDs and status schemas, the executor handle, and
a bounded `wait_for`.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from drover.compat import KUBERAY_SCHEMAS_DIR

ROOT = Path(__file__).resolve().parents[3]
KUBERAY = ROOT.parent / "shared" / "vendor-schemas" / KUBERAY_SCHEMAS_DIR
APPS_DIR = Path(__file__).parent / "apps"


@dataclass
class RayExec:
    data_dir: Path
    serve_port: int
    log: Path
    proc: subprocess.Popen[bytes]

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@functools.cache
def kuberay_crds() -> tuple[dict[str, Any], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are 1 MB each
    return tuple(
        yaml.load(p.read_text(), Loader=loader) for p in sorted(KUBERAY.glob("ray.io_*.yaml"))
    )


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused, as a real server would prune them silently."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@functools.cache
def status_schema(plural: str) -> dict[str, Any]:
    crd = next(c for c in kuberay_crds() if c["spec"]["names"]["plural"] == plural)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return strict(version["schema"]["openAPIV3Schema"]["properties"]["status"])


def assert_valid_status(plural: str, status: dict[str, Any]) -> None:
    jsonschema.validate(status, status_schema(plural))


def wait_for(check: Callable[[], Any], timeout: float, what: str, rayexec: RayExec | None = None):
    """Poll `check` until it returns something truthy; fail naming `what` (and the executor log)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    tail = f"\nexecutor log:\n{rayexec.log_tail()}" if rayexec else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last}{tail}")


NOW = dt.datetime(2026, 11, 22, 8, 0, 0, tzinfo=dt.UTC)


def rayjob(name: str = "fetch", status: dict[str, Any] | None = None, **spec: Any) -> dict:
    """A minimal RayJob as the executor's pure state machine reads it."""
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": "0123456789ab", "generation": 1},
        "spec": {"entrypoint": "python -m x", "runtimeEnvYAML": "env_vars: {}", **spec},
        "status": status or {},
    }


def step(obj: dict, info: Any = None, now: dt.datetime = NOW):
    """One pass of the executor's RayJob state machine (no Ray jobs exist yet)."""
    from drover_sandbox.rayexec import jobstate
    from drover_sandbox.rayexec.jobstate import Cluster

    return jobstate.next_rayjob(
        obj, info, existing_ids=set(), cluster=Cluster("127.0.0.1:8265"), now=now
    )
