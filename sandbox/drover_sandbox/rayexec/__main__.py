"""Local stack, Ray executor command line: `python -m drover_sandbox.rayexec --kubeconfig K ...`.

Runs in the foreground until SIGTERM/SIGINT, then stops within a few seconds (Ray jobs and Serve
applications keep running, as they do when KubeRay restarts).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drover_sandbox.rayexec", description=__doc__)
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the control plane")
    parser.add_argument("--ray-address", default="", help="GCS address of the Ray head (info only)")
    parser.add_argument("--dashboard-url", required=True, help="e.g. http://127.0.0.1:8265")
    parser.add_argument("--data-dir", required=True, help="claims and secrets live under it")
    parser.add_argument("--serve-port", type=int, required=True, help="Serve HTTP proxy port")
    parser.add_argument("--hub-url", default="", help="HF_ENDPOINT given to every Ray job")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="seconds between passes")
    parser.add_argument("--log-level", default="INFO", help="python logging level")
    return parser


def local_env(hub_url: str) -> dict[str, str]:
    """What every Ray job and Serve app gets on top of its own env: the venv first on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": os.pathsep.join([venv_bin, os.environ.get("PATH", "/usr/bin:/bin")]),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    if hub_url:
        env["HF_ENDPOINT"] = hub_url.rstrip("/")
    return env


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not Path(args.kubeconfig).is_file():
        print(
            f"rayexec: --kubeconfig {args.kubeconfig} does not exist; start the control plane "
            "first (drover local apiserver writes DATA_DIR/kubeconfig)",
            file=sys.stderr,
        )
        return 2
    from kubernetes import config

    from drover_sandbox.rayexec.executor import Executor, Settings
    from drover_sandbox.rayexec.rayapi import RayApis

    api_client = config.new_client_from_config(config_file=args.kubeconfig)
    settings = Settings(
        data_dir=str(Path(args.data_dir).resolve()),
        serve_port=args.serve_port,
        local_env=local_env(args.hub_url),
        owner=str(api_client.configuration.host),
        poll_seconds=args.poll_seconds,
    )
    executor = Executor(api_client, RayApis(args.dashboard_url), settings)

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("drover.rayexec").info("signal %d: stopping", signum)
        executor.stop.set()
        executor.wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logging.getLogger("drover.rayexec").info(
        "watching RayJobs and RayServices at %s; Ray dashboard %s; Serve on 127.0.0.1:%d",
        settings.owner,
        args.dashboard_url,
        args.serve_port,
    )
    worker = threading.Thread(target=executor.run, name="executor", daemon=True)
    worker.start()
    while worker.is_alive() and not executor.stop.is_set():
        worker.join(0.5)
    worker.join(10)  # a pass in flight finishes; watch threads are daemons
    return 0


if __name__ == "__main__":
    sys.exit(main())
