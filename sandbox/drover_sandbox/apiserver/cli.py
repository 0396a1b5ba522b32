"""Local control plane, command line: `drover local apiserver --port N --data-dir D [--snapshot]`.

Runs the server in the foreground and writes `D/kubeconfig` for kubectl, the `kubernetes`
client and kopf. Stops on SIGINT/SIGTERM (saving the snapshot when enabled).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

KUBECONFIG_TEMPLATE = """\
apiVersion: v1
kind: Config
clusters:
- name: drover-local
  cluster:
    server: http://{host}:{port}
contexts:
- name: drover-local
  context:
    cluster: drover-local
    user: drover-local
    namespace: default
current-context: drover-local
preferences: {{}}
users:
- name: drover-local
  user: {{}}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port to listen on (0: a free port, written to the kubeconfig)",
    )
    parser.add_argument(
        "--data-dir",
        default=".drover-local/apiserver",
        help="where the kubeconfig (and the snapshot) are written",
    )
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="keep objects across restarts in DATA_DIR/snapshot.json",
    )
    parser.add_argument(
        "--bookmark-interval",
        type=float,
        default=1.0,
        help="seconds between watch bookmarks (when a client allows them)",
    )
    parser.add_argument(
        "--watch-history",
        type=int,
        default=20_000,
        help="events kept per resource for watch resume; older is 410 Gone",
    )
    parser.add_argument(
        "--event-ttl",
        type=float,
        default=3600.0,
        help="seconds after which Events are deleted (kube-apiserver's --event-ttl)",
    )
    parser.add_argument(
        "--fault-error-rate",
        type=float,
        default=0.0,
        help="fraction of resource requests answered with an injected error",
    )
    parser.add_argument(
        "--fault-codes",
        default="500",
        help="comma-separated codes for injected errors (409, 429, 500)",
    )
    parser.add_argument(
        "--fault-latency-ms",
        type=float,
        default=0.0,
        help="latency added to every resource request",
    )
    parser.add_argument(
        "--fault-watch-cut-after",
        type=int,
        default=0,
        help="close every watch stream after this many events (0: never)",
    )
    parser.add_argument("--log-level", default="WARNING", help="python logging level")
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (method, path, status) to stderr",
    )


def write_kubeconfig(data_dir: Path, host: str, port: int) -> Path:
    path = data_dir / "kubeconfig"
    path.write_text(KUBECONFIG_TEMPLATE.format(host=host, port=port))
    return path


def main(args: argparse.Namespace) -> int:
    from aiohttp import web

    from .errors import ApiError
    from .faults import Faults
    from .server import Config, build_app

    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    data_dir = Path(args.data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"drover local apiserver: cannot use --data-dir {data_dir}: {exc}", file=sys.stderr)
        return 2
    faults = Faults()
    try:
        faults.update(
            {
                "error_rate": args.fault_error_rate,
                "codes": [int(c) for c in str(args.fault_codes).split(",") if c.strip()],
                "latency_ms": args.fault_latency_ms,
                "watch_cut_after": args.fault_watch_cut_after,
            }
        )
    except (ApiError, ValueError) as exc:
        print(f"drover local apiserver: bad fault option: {exc}", file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(
            f"drover local apiserver: cannot listen on {args.host}:{args.port}: {exc}; "
            f"choose another --port",
            file=sys.stderr,
        )
        return 2
    port = sock.getsockname()[1]
    config = Config(
        host=args.host,
        port=port,
        snapshot_path=data_dir / "snapshot.json" if args.snapshot else None,
        bookmark_interval=args.bookmark_interval,
        watch_history=args.watch_history,
        event_ttl=args.event_ttl,
        faults=faults,
    )
    try:
        app = build_app(config)
    except (ValueError, OSError) as exc:
        print(f"drover local apiserver: cannot start: {exc}", file=sys.stderr)
        return 2
    kubeconfig = write_kubeconfig(data_dir, args.host, port)
    print(
        f"drover local apiserver: serving on http://{args.host}:{port}; kubeconfig {kubeconfig}",
        flush=True,
    )
    access_log = None
    if args.access_log:
        access_log = logging.getLogger("drover_sandbox.apiserver.access")
        access_log.setLevel(logging.INFO)
    web.run_app(
        app, sock=sock, print=None, handle_signals=True, access_log=access_log, shutdown_timeout=2.0
    )
    return 0
