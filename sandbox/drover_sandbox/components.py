"""Local stack: how each component of `drover local up` is started and found healthy.

Each `start_*` launches one background process (all on 127.0.0.1) and returns its stack.json
record; `install_crds` puts Drover's, kopf's and KubeRay's CRDs into the local control plane.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from drover.builders.serving import SERVE_RUNTIME_ENV
from drover.compat import KUBERAY_SCHEMAS_DIR
from drover_sandbox import procs

REPO = Path(__file__).resolve().parents[2]
DEFAULT_KUBERAY_CRDS = REPO.parent / "shared" / "vendor-schemas" / KUBERAY_SCHEMAS_DIR
# Serve runs as on a RayService (high-throughput mode) minus HAProxy, which would bind every
# interface and is not installed here: clients use Serve's proxy port, or a router replica's own
# HTTP server (where HAProxy forwards on a cluster).
LOCAL_SERVE_ENV = {k: v for k, v in SERVE_RUNTIME_ENV.items() if k != "RAY_SERVE_ENABLE_HA_PROXY"}
RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    **LOCAL_SERVE_ENV,
}


class StackError(Exception):
    """A component could not start; the message says which and where its log is."""


def base_env() -> dict[str, str]:
    """The environment of every component: Ray's local settings and the venv first on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        **RAY_ENV,
        "PATH": os.pathsep.join([venv_bin, os.environ.get("PATH", "/usr/bin:/bin")]),
    }


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _fail(name: str, log: Path, why: str) -> StackError:
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
    return StackError(f"{name} {why}; log {log}:\n{tail}")


def _wait_http(
    name: str, proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float
) -> None:
    def ready() -> bool:
        if proc.poll() is not None:
            raise _fail(name, log, f"exited with code {proc.returncode}")
        return procs.http_ok(url)

    if not procs.wait_until(ready, timeout):
        raise _fail(name, log, f"did not answer {url} within {timeout:.0f}s")


def _record(proc: subprocess.Popen[bytes], log: Path, **extra: Any) -> dict[str, Any]:
    return {"pid": proc.pid, "session": proc.pid, "log": str(log), **extra}


def start_apiserver(data_dir: Path, logs: Path, timeout: float) -> dict[str, Any]:
    port, log = procs.free_port(), logs / "apiserver.log"
    proc = procs.spawn(
        _python(
            "-m", "drover", "local", "apiserver", "--port", str(port), "--data-dir", str(data_dir)
        ),
        log,
        base_env(),
    )
    url = f"http://127.0.0.1:{port}"
    _wait_http("the local control plane", proc, f"{url}/version", log, timeout)
    return _record(proc, log, url=url, kubeconfig=str(data_dir / "kubeconfig"))


def install_crds(kubeconfig: Path, kuberay_dir: Path) -> list[str]:
    """Create (or replace) every CRD the stack needs; returns their names."""
    from kubernetes import client, config

    if not (kuberay_dir / "ray.io_rayjobs.yaml").is_file():
        raise StackError(
            f"KubeRay's CRDs were not found in {kuberay_dir}: the stack needs "
            "ray.io_rayjobs.yaml and ray.io_rayservices.yaml from KubeRay v1.7.0 there "
            "(pass --kuberay-crds DIR to use another directory)"
        )
    files = sorted((REPO / "crds").glob("*.yaml"))
    files.append(REPO / "charts" / "drover" / "crds" / "kopf.dev_kopfpeerings.yaml")
    files += sorted(kuberay_dir.glob("ray.io_*.yaml"))
    api = client.ApiextensionsV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    names = []
    for path in files:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # KubeRay's CRDs are 1 MB each
        for crd in yaml.load_all(path.read_text(), Loader=loader):
            if not crd:
                continue
            try:
                api.create_custom_resource_definition(crd)
            except client.ApiException as exc:
                if exc.status != 409:
                    raise StackError(
                        f"installing the CRD in {path} failed: {exc.reason}: "
                        f"{(exc.body or '')[:500]}"
                    ) from exc
            names.append(crd["metadata"]["name"])
    return names


def ray_temp_dir(data_dir: Path) -> Path:
    """D/ray, or a short /tmp path: Ray's AF_UNIX socket paths must stay under 107 bytes."""
    wanted = data_dir / "ray"
    if len(str(wanted)) <= 40:
        return wanted
    import hashlib

    return Path("/tmp") / f"drover-ray-{hashlib.sha256(str(data_dir).encode()).hexdigest()[:8]}"


def start_ray(data_dir: Path, logs: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Launch `ray start --head` (it exits once the head runs); wait with `wait_ray`."""
    temp = ray_temp_dir(data_dir)
    temp.mkdir(parents=True, exist_ok=True)
    gcs, dash, metrics, client_port, agent, serve = (procs.free_port() for _ in range(6))
    ray_bin = Path(sys.executable).with_name("ray")
    cmd = [
        str(ray_bin) if ray_bin.exists() else "ray",
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        "--object-store-memory=200000000",
        f"--temp-dir={temp}",
        f"--port={gcs}",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash}",
        f"--metrics-export-port={metrics}",
        f"--ray-client-server-port={client_port}",
        f"--dashboard-agent-listen-port={agent}",
        "--disable-usage-stats",
    ]
    log = logs / "ray.log"
    proc = procs.spawn(cmd, log, base_env())
    record = _record(
        proc,
        log,
        tempDir=str(temp),
        gcs=f"127.0.0.1:{gcs}",
        dashboard=f"http://127.0.0.1:{dash}",
        metrics=f"http://127.0.0.1:{metrics}/metrics",
        servePort=serve,
        serve=f"http://127.0.0.1:{serve}",
    )
    return proc, record


def wait_ray(proc: subprocess.Popen[bytes], record: Mapping[str, Any], timeout: float) -> None:
    log = Path(record["log"])
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise _fail("`ray start`", log, f"did not finish within {timeout:.0f}s") from None
    if code != 0:
        raise _fail("`ray start`", log, f"failed with code {code}")
    deadline = time.monotonic() + timeout
    if not procs.wait_until(
        lambda: procs.http_ok(f"{record['dashboard']}/api/version"),
        max(deadline - time.monotonic(), 5),
    ):
        raise _fail("the Ray dashboard", log, "did not answer")


def start_rayexec(
    data_dir: Path, logs: Path, kubeconfig: Path, ray: Mapping[str, Any], hub_url: str
) -> dict[str, Any]:
    log = logs / "rayexec.log"
    proc = procs.spawn(
        _python(
            "-m",
            "drover_sandbox.rayexec",
            "--kubeconfig",
            str(kubeconfig),
            "--ray-address",
            ray["gcs"],
            "--dashboard-url",
            ray["dashboard"],
            "--data-dir",
            str(data_dir),
            "--serve-port",
            str(ray["servePort"]),
            "--hub-url",
            hub_url,
        ),
        log,
        base_env(),
    )
    time.sleep(1.0)
    if proc.poll() is not None:
        raise _fail("the Ray executor", log, f"exited with code {proc.returncode}")
    return _record(proc, log)


# The Ray executor deploys application `<app>` of RayService `<rs>` in namespace `<ns>` as
# `<ns>--<rs>--<app>` (rayexec.servestate). Serve's own series (ray_serve_*) carry that name and
# no namespace; on a cluster the app keeps its name and the PodMonitor adds the pod's namespace.
# These rules give the local series the cluster's shape, so the operator's queries read both.
SERVE_APP_RELABEL = [
    {
        "source_labels": ["application"],
        "regex": "(.+?)--(.+?)--(.+)",
        "target_label": target,
        "replacement": replacement,
    }
    for target, replacement in (("namespace", "$1"), ("application", "$3"))
]


def start_prometheus(data_dir: Path, logs: Path, ray: Mapping[str, Any]) -> dict[str, Any] | None:
    """Prometheus scraping Ray's metrics every 2 s, or None when the binary is absent."""
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    port, log = procs.free_port(), logs / "prometheus.log"
    config_path = data_dir / "prometheus.yml"
    target = ray["metrics"].split("://", 1)[1].split("/", 1)[0]
    config_path.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
                "scrape_configs": [
                    {
                        "job_name": "ray",
                        "static_configs": [{"targets": [target]}],
                        "metric_relabel_configs": SERVE_APP_RELABEL,
                    }
                ],
            }
        )
    )
    proc = procs.spawn(
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={data_dir / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        log,
        base_env(),
    )
    return _record(proc, log, url=f"http://127.0.0.1:{port}")


def start_hub(data_dir: Path, logs: Path) -> dict[str, Any]:
    port, log = procs.free_port(), logs / "hub.log"
    proc = procs.spawn(
        _python("-m", "drover", "local", "hub", "--port", str(port), "--data-dir", str(data_dir)),
        log,
        base_env(),
    )
    return _record(proc, log, url=f"http://127.0.0.1:{port}")


def start_operator(
    logs: Path, kubeconfig: Path, serve_port: int, prometheus_url: str
) -> dict[str, Any]:
    metrics, health, log = procs.free_port(), procs.free_port(), logs / "operator.log"
    env = {
        **base_env(),
        "KUBECONFIG": str(kubeconfig),
        "DROVER_PROMETHEUS_URL": prometheus_url,
        "DROVER_SERVING_URL_TEMPLATE": f"http://127.0.0.1:{serve_port}/{{namespace}}/{{rayservice}}",
        # Two logical CPUs: the router, a stable and a canary replica, and Serve's surge copies
        # while a changed application restarts (old replicas serve until new ones are ready).
        "DROVER_SERVING_REPLICA_CPUS": "0.25",
        # A laptop-sized stack reacts faster than a cluster needs to: shorter polls.
        "DROVER_PROGRESS_POLL_SECONDS": "2",
        "DROVER_AUTOSCALE_INTERVAL_SECONDS": "5",
        "DROVER_METRICS_PORT": str(metrics),
        "DROVER_HEALTH_PORT": str(health),
    }
    proc = procs.spawn(_python("-m", "drover", "run", "--standalone"), log, env)
    return _record(
        proc,
        log,
        metrics=f"http://127.0.0.1:{metrics}/metrics",
        health=f"http://127.0.0.1:{health}/healthz",
    )


def wait_component(name: str, record: Mapping[str, Any], url: str, timeout: float) -> None:
    log = Path(record["log"])

    def ready() -> bool:
        if not procs.alive(int(record["pid"])):
            raise _fail(name, log, "exited")
        return procs.http_ok(url)

    if not procs.wait_until(ready, timeout):
        raise _fail(name, log, f"did not answer {url} within {timeout:.0f}s")
