"""Local stack, Ray executor: the two Ray APIs it uses — Jobs (submit/list/stop) and Serve REST.

Thin wrappers that return None or raise `RayUnavailable` instead of leaking HTTP details, so the
executor can keep the last status while Ray is briefly unreachable.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from drover_sandbox.rayexec.jobstate import RayJobInfo

OWNER_KEY = "drover.dev/rayexec"  # Ray job metadata: which control plane's executor submitted it
UID_KEY = "drover.dev/rayjob-uid"


class RayUnavailable(Exception):
    pass


class RayApis:
    def __init__(self, dashboard_url: str, timeout: float = 10.0) -> None:
        self.dashboard_url = dashboard_url.rstrip("/")
        self.timeout = timeout
        self._client: Any = None

    @property
    def dashboard_hostport(self) -> str:
        return self.dashboard_url.split("://", 1)[-1]

    def _jobs(self) -> Any:
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            try:
                self._client = JobSubmissionClient(self.dashboard_url)
            except (ConnectionError, RuntimeError, OSError) as exc:
                raise RayUnavailable(str(exc)) from exc
        return self._client

    def list_jobs(self) -> dict[str, tuple[RayJobInfo, dict[str, str]]]:
        """submission id → (info, metadata) of every job Ray knows."""
        try:
            details = self._jobs().list_jobs()
        except (ConnectionError, RuntimeError, OSError) as exc:
            self._client = None
            raise RayUnavailable(str(exc)) from exc
        out = {}
        for d in details:
            # A deleted submission leaves its driver's entry (type DRIVER) behind: not a job.
            if not d.submission_id or str(getattr(d.type, "value", d.type)) != "SUBMISSION":
                continue
            status = getattr(d.status, "value", str(d.status))
            info = RayJobInfo(str(status), d.message or "", d.start_time, d.end_time)
            out[d.submission_id] = (info, dict(d.metadata or {}))
        return out

    def submit(
        self,
        *,
        job_id: str,
        entrypoint: str,
        runtime_env: dict[str, Any],
        metadata: dict[str, str],
        num_gpus: float | None,
    ) -> None:
        kwargs: dict[str, Any] = {}
        if num_gpus:
            kwargs["entrypoint_num_gpus"] = num_gpus
        self._jobs().submit_job(
            entrypoint=entrypoint,
            submission_id=job_id,
            runtime_env=runtime_env,
            metadata=metadata,
            **kwargs,
        )

    def stop(self, job_id: str) -> None:
        try:
            self._jobs().stop_job(job_id)
        except (ConnectionError, RuntimeError, OSError) as exc:
            raise RayUnavailable(str(exc)) from exc

    def delete(self, job_id: str) -> None:
        """Forget a finished job (its record and logs); a job already gone is fine."""
        try:
            self._jobs().delete_job(job_id)
        except RuntimeError as exc:
            if "does not exist" not in str(exc) and "404" not in str(exc):
                raise RayUnavailable(str(exc)) from exc
        except (ConnectionError, OSError) as exc:
            raise RayUnavailable(str(exc)) from exc

    def serve_get(self) -> dict[str, Any]:
        """Serve's declarative status: `applications` is a map name → app status."""
        return self._http("GET", "/api/serve/applications/")

    def serve_put(self, config: dict[str, Any]) -> None:
        self._http("PUT", "/api/serve/applications/", config)

    def _http(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.dashboard_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[-2000:]
            raise RayUnavailable(f"{method} {path}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise RayUnavailable(f"{method} {path}: {exc}") from exc
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise RayUnavailable(f"{method} {path}: not JSON") from exc
        return value if isinstance(value, dict) else {}
