"""Local stack: `drover local up|status|down` — the whole stack in the background, on 127.0.0.1.

`up` starts the local control plane (with Drover's, kopf's and KubeRay's CRDs), a Ray head, the
Ray executor (KubeRay's stand-in), Prometheus when installed, the local model hub and the
operator, recording each PID in DATA_DIR/stack.json; `down` stops exactly those processes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from drover_sandbox import procs

DEFAULT_DATA_DIR = ".drover-local"
ORDER = ("apiserver", "ray", "hub", "prometheus", "rayexec", "operator")


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "data_dir", None) or DEFAULT_DATA_DIR).resolve()


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help=f"where logs, the kubeconfig and stack.json live ({DEFAULT_DATA_DIR})",
    )


def add_arguments_up(parser: argparse.ArgumentParser) -> None:
    from drover_sandbox.components import DEFAULT_KUBERAY_CRDS

    _add_data_dir(parser)
    parser.add_argument(
        "--kuberay-crds",
        default=str(DEFAULT_KUBERAY_CRDS),
        help="directory holding KubeRay v1.7.0's ray.io_*.yaml CRDs",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for each component to become healthy",
    )


def add_arguments_status(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)


def add_arguments_down(parser: argparse.ArgumentParser) -> None:
    _add_data_dir(parser)
    parser.add_argument("--purge", action="store_true", help="also delete the data dir")


def read_stack(data_dir: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((data_dir / "stack.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_stack(data_dir: Path, stack: dict[str, Any]) -> None:
    tmp = data_dir / "stack.json.tmp"
    tmp.write_text(json.dumps(stack, indent=2, sort_keys=True))
    tmp.replace(data_dir / "stack.json")


def component_alive(name: str, record: dict[str, Any]) -> bool:
    if name == "ray":
        return bool(procs.session_pids(int(record["session"]), record.get("tempDir", "")))
    return procs.alive(int(record["pid"]))


def _running(stack: dict[str, Any] | None) -> bool:
    comps = (stack or {}).get("components") or {}
    return any(component_alive(n, r) for n, r in comps.items())


def up(args: argparse.Namespace) -> int:
    from drover_sandbox import components as c

    data_dir = _data_dir(args)
    if _running(read_stack(data_dir)):
        print(f"drover local: the stack in {data_dir} is already up")
        return status(args)
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack: dict[str, Any] = {
        "dataDir": str(data_dir),
        "components": {},
        "notes": [],
        "startedAt": dt.datetime.now(dt.UTC).isoformat(),
    }
    comps = stack["components"]

    def step(name: str, record: dict[str, Any] | None) -> None:
        if record is not None:
            comps[name] = record
            _write_stack(data_dir, stack)

    try:
        _say("starting the local control plane")
        step("apiserver", c.start_apiserver(data_dir, logs, args.timeout))
        kubeconfig = data_dir / "kubeconfig"
        stack["kubeconfig"] = str(kubeconfig)
        crds = c.install_crds(kubeconfig, Path(args.kuberay_crds))
        _say(f"installed {len(crds)} CRDs")
        _say("starting Ray (ray start --head), the model hub and Prometheus")
        ray_proc, ray = c.start_ray(data_dir, logs)
        step("ray", ray)
        step("hub", c.start_hub(data_dir, logs))
        c.wait_ray(ray_proc, ray, args.timeout)
        prometheus = c.start_prometheus(data_dir, logs, ray)
        if prometheus is None:
            stack["notes"].append(
                "prometheus is not installed (`make install` adds it): "
                "autoscaling and canary analysis have no metrics"
            )
        step("prometheus", prometheus)
        step("rayexec", c.start_rayexec(data_dir, logs, kubeconfig, ray, comps["hub"]["url"]))
        _say("waiting for the model hub (it builds its demo models on first start)")
        c.wait_component("the model hub", comps["hub"], comps["hub"]["url"] + "/", args.timeout)
        if prometheus is not None:
            c.wait_component("Prometheus", prometheus, prometheus["url"] + "/-/ready", args.timeout)
        prom_url = prometheus["url"] if prometheus else "http://127.0.0.1:9"
        step("operator", c.start_operator(logs, kubeconfig, ray["servePort"], prom_url))
        c.wait_component(
            "the operator", comps["operator"], comps["operator"]["health"], args.timeout
        )
    except (c.StackError, OSError) as exc:
        print(f"drover local up: {exc}", file=sys.stderr)
        print("drover local up: stopping what was started", file=sys.stderr)
        _stop_all(stack)
        return 1
    except KeyboardInterrupt:
        _stop_all(stack)
        return 130
    _print_status(stack)
    print(f"\nexport KUBECONFIG={kubeconfig}")
    return 0


def _say(text: str) -> None:
    print(f"drover local up: {text}", flush=True)


def _url(name: str, record: dict[str, Any]) -> str:
    if name == "ray":
        return f"dashboard {record['dashboard']}  serve {record['serve']}  gcs {record['gcs']}"
    if name == "operator":
        return f"health {record['health']}  metrics {record['metrics']}"
    return str(record.get("url") or f"log {record.get('log', '')}")


def _print_status(stack: dict[str, Any]) -> None:
    comps = stack.get("components") or {}
    print(f"data dir {stack.get('dataDir')}  (logs in logs/)")
    for name in ORDER:
        if name not in comps:
            continue
        record = comps[name]
        state = "running" if component_alive(name, record) else "STOPPED"
        print(f"  {name:<11} pid {record['pid']:<8} {state:<8} {_url(name, record)}")
    for note in stack.get("notes") or ():
        print(f"  note: {note}")
    if stack.get("kubeconfig"):
        print(f"  kubeconfig  {stack['kubeconfig']}")


def status(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    stack = read_stack(data_dir)
    if stack is None:
        print(f"drover local: no stack in {data_dir} (start one with `drover local up`)")
        return 1
    _print_status(stack)
    return 0 if _running(stack) else 1


def _stop_ray_jobs(record: dict[str, Any]) -> None:
    """Stop running Ray jobs first: their drivers run in sessions of their own."""
    try:
        from ray.job_submission import JobSubmissionClient

        client = JobSubmissionClient(record["dashboard"])
        for job in client.list_jobs():
            if job.submission_id and str(getattr(job.status, "value", job.status)) in (
                "PENDING",
                "RUNNING",
            ):
                client.stop_job(job.submission_id)
    except Exception:
        return


def _stop_all(stack: dict[str, Any]) -> bool:
    comps = stack.get("components") or {}
    clean = True
    for name in reversed(ORDER):
        record = comps.get(name)
        if record is None:
            continue
        if name == "ray":
            _stop_ray_jobs(record)
            time.sleep(1)
        if not procs.stop_session(int(record["session"]), record.get("tempDir", "")):
            clean = False
            print(f"drover local down: {name} (pid {record['pid']}) did not stop", file=sys.stderr)
    return clean


def down(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    stack = read_stack(data_dir)
    clean = True
    if stack is None:
        print(f"drover local down: no stack in {data_dir}; nothing to stop")
    else:
        clean = _stop_all(stack)
        (data_dir / "stack.json").unlink(missing_ok=True)
    if getattr(args, "purge", False):
        import shutil

        from drover_sandbox.components import ray_temp_dir

        if ray_temp_dir(data_dir) != data_dir / "ray":
            shutil.rmtree(ray_temp_dir(data_dir), ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)
        print(f"drover local down: removed {data_dir}")
    elif stack is not None:
        print(f"drover local down: stopped; data kept in {data_dir} (--purge removes it)")
    return 0 if clean else 1
