"""I/O layer: read a Ray job's log through the Ray dashboard, as KubeRay itself talks to Ray.

The RayJob status names the dashboard (`dashboardURL`) and the job (`jobId`); the worker's
`::drover::` lines in that log are what the operator records in status. Failures to reach the
dashboard return None: progress is best-effort, the RayJob status stays authoritative.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from drover.policy.reports import WorkerReport, parse_worker_log


def dashboard_base(dashboard_url: str) -> str:
    return dashboard_url if "://" in dashboard_url else f"http://{dashboard_url}"


def fetch_job_log(dashboard_url: str, job_id: str, *, timeout: float = 5.0) -> str | None:
    url = f"{dashboard_base(dashboard_url).rstrip('/')}/api/jobs/{job_id}/logs"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read().decode())
    except (urllib.error.URLError, TimeoutError, ValueError, OSError):
        return None
    logs = body.get("logs") if isinstance(body, dict) else None
    return logs if isinstance(logs, str) else None


def read_worker_report(rayjob: Mapping[str, Any]) -> WorkerReport | None:
    """The worker's latest progress and result, read from the job log; None if unreachable."""
    status = rayjob.get("status") or {}
    dashboard, job_id = status.get("dashboardURL"), status.get("jobId")
    if not dashboard or not job_id:
        return None
    log = fetch_job_log(str(dashboard), str(job_id))
    return None if log is None else parse_worker_log(log)
