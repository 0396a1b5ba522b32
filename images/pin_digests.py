"""Release step: pin the pushed images' digests (and the release's version) in the Helm chart.

.github/workflows/release.yml runs it after pushing the images and before `helm package`, so the
packaged chart pulls exactly the images that release built. values.yaml is edited as text, key by
key, so its comments (the chart's documentation) survive; both files are then parsed again and
nothing is written unless exactly the intended values changed.

    python images/pin_digests.py --values charts/drover/values.yaml \
        --operator sha256:... --workers sha256:... --workers-cpu sha256:... \
        [--registry ghcr.io/acme] [--version 1.2.3 [--chart charts/drover/Chart.yaml]]
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

KeyPath = tuple[str, ...]

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# SemVer 2.0 without build metadata: a `+` is not allowed in an OCI tag, and the images and the
# chart are tagged with this version.
VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$")
# `host[:port]/path`, lower case, as an OCI repository name allows.
REGISTRY = re.compile(r"^[a-z0-9]+([.-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")

# Where each image is referenced in values.yaml: `image` and `config.images`.
OPERATOR: KeyPath = ("image",)
WORKERS: KeyPath = ("config", "images", "workers")
WORKERS_CPU: KeyPath = ("config", "images", "workersCpu")
# The repositories' names under a registry (`<registry>/drover-workers:<version>[-cpu]`).
REPOSITORY_NAMES = {
    OPERATOR: "drover-operator",
    WORKERS: "drover-workers",
    WORKERS_CPU: "drover-workers",
}

# `key: value  # comment` in block style; the key plain or quoted.
KEY_LINE = re.compile(
    r"""^(?P<indent>[ ]*)(?P<key>[A-Za-z0-9_.-]+|"[^"]*"|'[^']*')[ ]*:(?=[ ]|$)(?P<rest>.*)$"""
)
VALUE_AND_COMMENT = re.compile(
    r"""^[ ]*(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^#]*?)(?P<comment>[ ]+#.*)?$"""
)
BLOCK_SCALAR = re.compile(r"^[|>][0-9+-]*$")
PLAIN_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")


class PinError(Exception):
    """A file cannot be pinned as asked; the message says which file, which key and why."""


def _checked(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise argparse.ArgumentTypeError(f"{value!r} is not {what}")
        return value

    return check


def _dotted(path: KeyPath) -> str:
    return ".".join(path)


def _render_scalar(old: str, new: str) -> str:
    """`new` written in the quoting style of `old` where that stays a plain string."""
    if old.startswith("'"):
        return "'" + new.replace("'", "''") + "'"
    if not old.startswith('"') and PLAIN_SAFE.match(new) and yaml.safe_load(new) == new:
        return new
    return json.dumps(new)


def set_scalar(text: str, path: KeyPath, value: str, *, source: str = "values") -> str:
    """Return `text` with the block-style scalar at `path` set to `value`, all else kept.

    Raises PinError unless the key occurs exactly once and holds a scalar on its own line."""
    lines = text.splitlines(keepends=True)
    stack: list[tuple[int, str]] = []
    found: list[int] = []
    for number, line in enumerate(lines):
        body = line.rstrip("\r\n")
        match = KEY_LINE.match(body)
        if match is None or body.lstrip().startswith("#"):
            continue  # comments, and sequence items or flow content: never on a pinned key's path
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"].strip("'\"")))
        if tuple(key for _, key in stack) == path:
            found.append(number)
    where = f"{source}: {_dotted(path)}"
    if len(found) != 1:
        raise PinError(f"{where}: expected the key once, found it {len(found)} times")
    number = found[0]
    body = lines[number].rstrip("\r\n")
    ending = lines[number][len(body) :]
    match = KEY_LINE.match(body)
    assert match is not None
    head = body[: match.start("rest")]
    parts = VALUE_AND_COMMENT.match(match["rest"])
    old = parts["value"].strip() if parts else ""
    if parts is None or not old or BLOCK_SCALAR.match(old) or old[0] in "[{&*!":
        raise PinError(f"{where}: expected a scalar on the key's line, found {body.strip()!r}")
    comment = parts["comment"] or ""
    lines[number] = f"{head} {_render_scalar(old, value)}{comment}{ending}"
    return "".join(lines)


def _get(tree: Any, path: KeyPath) -> Any:
    for key in path:
        if not isinstance(tree, Mapping) or key not in tree:
            return None
        tree = tree[key]
    return tree


def edit(text: str, changes: Mapping[KeyPath, str], *, source: str) -> str:
    """Apply `changes` to the YAML `text`; fail unless parsing the result shows exactly them."""
    result = text
    for path, value in changes.items():
        result = set_scalar(result, path, value, source=source)
    try:
        before, after = yaml.safe_load(text), yaml.safe_load(result)
    except yaml.YAMLError as error:
        raise PinError(f"{source}: not valid YAML: {error}") from None
    expected = copy.deepcopy(before)
    for path, value in changes.items():
        parent = _get(expected, path[:-1])
        if not isinstance(parent, dict) or not isinstance(parent.get(path[-1]), str):
            raise PinError(f"{source}: {_dotted(path)} is not a string value")
        parent[path[-1]] = value
    if after != expected:
        raise PinError(f"{source}: the edit changed more than {sorted(map(_dotted, changes))}")
    return result


def plan(args: argparse.Namespace) -> dict[Path, dict[KeyPath, str]]:
    """The changes per file that the command line asks for."""
    values: dict[KeyPath, str] = {
        (*OPERATOR, "digest"): args.operator,
        (*WORKERS, "digest"): args.workers,
        (*WORKERS_CPU, "digest"): args.workers_cpu,
    }
    if args.registry:
        for image, name in REPOSITORY_NAMES.items():
            values[(*image, "repository")] = f"{args.registry}/{name}"
    changes = {args.values: values}
    if args.version:
        chart = args.chart or args.values.parent / "Chart.yaml"
        changes[chart] = {("version",): args.version, ("appVersion",): args.version}
    return changes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pin_digests.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    digest = _checked(DIGEST, "a digest: expected sha256:<64 lowercase hex digits>")
    parser.add_argument("--values", type=Path, required=True, help="the chart's values.yaml")
    parser.add_argument("--operator", type=digest, required=True, help="drover-operator digest")
    parser.add_argument("--workers", type=digest, required=True, help="drover-workers digest")
    parser.add_argument(
        "--workers-cpu", type=digest, required=True, help="drover-workers (-cpu tag) digest"
    )
    parser.add_argument(
        "--registry",
        type=_checked(REGISTRY, "a registry: expected lower-case host[:port]/path"),
        help="also point the three repositories at <registry>/drover-{operator,workers}",
    )
    parser.add_argument(
        "--version",
        type=_checked(VERSION, "a release version: expected MAJOR.MINOR.PATCH[-pre], no 'v'"),
        help="set Chart.yaml version and appVersion",
    )
    parser.add_argument("--chart", type=Path, help="Chart.yaml (default: beside --values)")
    args = parser.parse_args(argv)
    if args.chart and not args.version:
        parser.error("--chart needs --version")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    changes_per_file = plan(args)
    edited: dict[Path, str] = {}
    try:
        for path, changes in changes_per_file.items():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise PinError(f"{path}: cannot read: {error}") from None
            edited[path] = edit(text, changes, source=str(path))
    except PinError as error:
        print(f"pin_digests.py: error: {error}; nothing was written", file=sys.stderr)
        return 1
    for path, text in edited.items():
        path.write_text(text, encoding="utf-8")
    for path, changes in changes_per_file.items():
        for key, value in changes.items():
            print(f"{path}: {_dotted(key)} = {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
