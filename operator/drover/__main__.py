"""The `drover` command: dispatches to the operator and the local stack.

Each subcommand imports its module only when chosen, so `drover run` on a cluster never loads the
local stack, and a missing optional dependency is a clear message instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand path -> (module, function, help). The function takes the parsed argparse namespace.
COMMANDS: dict[tuple[str, ...], tuple[str, str, str]] = {
    ("run",): ("drover.main", "run", "run the operator (what the chart's Deployment runs)"),
    ("local", "apiserver"): (
        "drover_sandbox.apiserver.cli",
        "main",
        "the local control plane alone, in the foreground; writes DATA_DIR/kubeconfig",
    ),
    ("local", "up"): (
        "drover_sandbox.stack",
        "up",
        "start the whole local stack in the background",
    ),
    ("local", "status"): ("drover_sandbox.stack", "status", "print what runs where"),
    ("local", "down"): ("drover_sandbox.stack", "down", "stop everything `local up` started"),
    ("local", "hub"): (
        "drover_sandbox.hub.cli",
        "main",
        "the local model hub alone (Hugging Face file layout on loopback)",
    ),
    ("demo",): ("drover_sandbox.demo", "main", "start the local stack and run examples/pipeline"),
}


def _choose(argv: Sequence[str]) -> tuple[str, ...] | None:
    """The command path named by argv (e.g. ("local", "up")), or None."""
    words = [a for a in argv if not a.startswith("-")]
    for length in (2, 1):
        if tuple(words[:length]) in COMMANDS:
            return tuple(words[:length])
    return None


def build_parser(chosen: tuple[str, ...] | None = None) -> argparse.ArgumentParser:
    """All commands; only the chosen one imports its module (to declare its arguments)."""
    parser = argparse.ArgumentParser(prog="drover", description=__doc__)
    top = parser.add_subparsers(dest="command", required=True)
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for path, (module, func, help_text) in COMMANDS.items():
        subs = top
        if len(path) == 2:
            if path[0] not in groups:
                group = top.add_parser(path[0], help=f"{path[0]} commands")
                groups[path[0]] = group.add_subparsers(dest="subcommand", required=True)
            subs = groups[path[0]]
        sub = subs.add_parser(path[-1], help=help_text, description=help_text)
        sub.set_defaults(_target=(module, func))
        if path == chosen:
            _add_arguments(path, sub)
    return parser


def _add_arguments(path: tuple[str, ...], sub: argparse.ArgumentParser) -> None:
    """Arguments are declared by the module itself (`add_arguments_<func>`), when it has any."""
    module, func, _ = COMMANDS[path]
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return  # reported when the command is run
    adder = getattr(mod, f"add_arguments_{func}", None) or getattr(mod, "add_arguments", None)
    if adder is not None:
        adder(sub)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_choose(argv)).parse_args(argv)
    module, func = args._target
    try:
        target = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        hint = ""
        if module.startswith("drover_sandbox") and isinstance(exc, ImportError):
            hint = " (the local stack is its own package: `pip install -e ./sandbox`, as make does)"
        print(f"drover: this command is not available: {exc}{hint}", file=sys.stderr)
        return 2
    result = target(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
