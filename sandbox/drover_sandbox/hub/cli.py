"""`drover local hub`: the local model hub in the foreground (development and tests only)."""

from __future__ import annotations

import argparse

DEFAULT_PORT = 8765
DEFAULT_DATA_DIR = ".drover-local"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="bind address (loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8765)")
    parser.add_argument(
        "--data-dir", default=DEFAULT_DATA_DIR, help="repos live in DATA_DIR/hub (built if missing)"
    )
    parser.add_argument(
        "--build-only", action="store_true", help="build the demo repos and exit without serving"
    )


def main(args: argparse.Namespace) -> int:
    from drover_sandbox.hub.builder import ensure_repos
    from drover_sandbox.hub.runner import repos_root, serve_forever

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"drover local hub: --host {args.host} refused; the hub binds to loopback only")
        return 2
    if args.build_only:
        built = ensure_repos(repos_root(args.data_dir))
        print(f"hub: {len(built)} repos built under {repos_root(args.data_dir)}")
        return 0
    serve_forever(args.data_dir, args.host, args.port)
    return 0
