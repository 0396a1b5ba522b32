"""Plugin layer, I/O: `kubectl drover status NAME` (read through kubectl, print the tree),
`kubectl drover rollout promote|abort|pause|resume NAME` (the `drover.dev/rollout` annotation),
`kubectl drover chat NAME` (a streamed chat completion from the service's OpenAI API) and
`kubectl drover logs NAME` (plugin/logs.py).

Every call goes through the `kubectl` on the PATH, so the plugin honours the same kubeconfig,
context and credentials as the kubectl that runs it. `tree.render_status` does the rendering.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from typing import IO, Any

from drover.api.rollout import ROLLOUT_ANNOTATION, RolloutControl
from drover.plugin.kubectl import Kubectl, PluginError
from drover.plugin.logs import logs
from drover.plugin.tree import render_status

GROUP = "drover.dev"
# KIND of KIND/NAME (kind, plural or short name, any case) -> the type `kubectl get` takes.
KINDS = {
    "foundationmodel": "foundationmodels.drover.dev",
    "fmodel": "foundationmodels.drover.dev",
    "finetunejob": "finetunejobs.drover.dev",
    "ftjob": "finetunejobs.drover.dev",
    "vectorindex": "vectorindexes.drover.dev",
    "vindex": "vectorindexes.drover.dev",
    "inferenceservice": "inferenceservices.drover.dev",
    "infsvc": "inferenceservices.drover.dev",
}
SEARCH_ORDER = (
    "inferenceservices.drover.dev",
    "finetunejobs.drover.dev",
    "foundationmodels.drover.dev",
    "vectorindexes.drover.dev",
)
KINDS |= {plural.split(".")[0]: plural for plural in SEARCH_ORDER}
# What a Drover resource can own: its Ray jobs and services (and their clusters), the claims of
# its caches and indexes, its ConfigMaps, and the FoundationModel a FineTuneJob produced.
CHILD_TYPES = (
    "rayjobs.ray.io",
    "rayservices.ray.io",
    "rayclusters.ray.io",
    "persistentvolumeclaims",
    "configmaps",
    "foundationmodels.drover.dev",
)


def find_resource(kubectl: Kubectl, name: str) -> dict[str, Any]:
    """KIND/NAME, or NAME looked up among the four kinds (InferenceService first)."""
    if "/" in name:
        kind, _, bare = name.partition("/")
        plural = KINDS.get(kind.lower().split(".")[0])
        if plural is None:
            raise PluginError(f"{kind} is not a Drover kind; use one of {', '.join(sorted(KINDS))}")
        candidates: Sequence[tuple[str, str]] = [(plural, bare)]
    else:
        candidates = [(plural, name) for plural in SEARCH_ORDER]
    for plural, bare in candidates:
        found = kubectl.get(plural, bare)
        if found is not None:
            return found
    raise PluginError(f"no Drover resource named {name} (kubectl get drover lists them)")


def owned_objects(kubectl: Kubectl) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for plural in CHILD_TYPES:
        listed = kubectl.get(plural)
        objects += (listed or {}).get("items", [])
    return objects


def status(kubectl: Kubectl, name: str) -> str:
    root = find_resource(kubectl, name)
    return render_status(root, owned_objects(kubectl))


def rollout(kubectl: Kubectl, action: RolloutControl, name: str) -> str:
    """Annotate the InferenceService; the operator acts on it once and clears it."""
    kind, _, bare = name.rpartition("/")
    if kind and KINDS.get(kind.lower().split(".")[0]) != "inferenceservices.drover.dev":
        raise PluginError(f"rollout acts on an InferenceService, not {kind}")
    if kubectl.get("inferenceservices.drover.dev", bare) is None:
        raise PluginError(f"no InferenceService named {bare} (kubectl get infsvc lists them)")
    done = kubectl.run(
        "annotate",
        "inferenceservices.drover.dev",
        bare,
        f"{ROLLOUT_ANNOTATION}={action.value}",
        "--overwrite",
    )
    if done.returncode != 0:
        raise PluginError(done.stderr.strip())
    return (
        f"InferenceService/{bare}: {action.value} requested ({ROLLOUT_ANNOTATION}); "
        f"kubectl drover status {bare} shows the rollout\n"
    )


def chat(
    kubectl: Kubectl,
    name: str,
    prompt: str,
    out: IO[str],
    *,
    model: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    max_tokens: int = 256,
) -> None:
    """Stream one chat completion from the InferenceService's OpenAI-compatible API to `out`."""
    bare = name.rpartition("/")[2]
    svc = kubectl.get("inferenceservices.drover.dev", bare)
    if svc is None:
        raise PluginError(f"no InferenceService named {bare} (kubectl get infsvc lists them)")
    root = url or (svc.get("status") or {}).get("url")
    if not root:
        raise PluginError(
            f"InferenceService {bare} has no status.url yet; wait for Ready, or pass --url "
            "(e.g. after kubectl port-forward)"
        )
    body = {
        "model": model or bare,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": True,
    }
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(
        f"{root.rstrip('/')}/v1/chat/completions", json.dumps(body).encode(), headers
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            for text in stream_deltas(response):
                out.write(text)
                out.flush()
    except urllib.error.HTTPError as exc:
        raise PluginError(f"{root}: HTTP {exc.code}: {_error_message(exc.read())}") from exc
    except urllib.error.URLError as exc:
        raise PluginError(f"{root}: {exc.reason} (is it reachable from here? see --url)") from exc
    out.write("\n")


def stream_deltas(lines: Iterable[bytes]) -> Iterable[str]:
    """The content deltas of an OpenAI chat-completion event stream (`data: {...}` lines)."""
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        for choice in json.loads(data).get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                yield str(content)


def _error_message(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return raw.decode("utf-8", errors="replace").strip()


def build_parser() -> argparse.ArgumentParser:
    # kubectl's habit: -n and friends before or after the command (`drover -n ml status x`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help="namespace")
    common.add_argument("--context", default=argparse.SUPPRESS, help="kubeconfig context")
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="kubeconfig file")
    parser = argparse.ArgumentParser(
        prog="kubectl drover",
        description="Drover's resources, as a platform engineer reads them.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser(
        "status",
        parents=[common],
        help="a resource, its conditions and everything it owns, as a tree",
    )
    show.add_argument("name", help="NAME or KIND/NAME (e.g. infsvc/support-bot)")
    control = commands.add_parser(
        "rollout", parents=[common], help="promote, abort, pause or resume a canary rollout"
    )
    control.add_argument("action", choices=[c.value for c in RolloutControl])
    control.add_argument("name", help="the InferenceService (NAME or infsvc/NAME)")
    talk = commands.add_parser(
        "chat", parents=[common], help="stream a chat answer from an InferenceService"
    )
    talk.add_argument("name", help="the InferenceService (NAME or infsvc/NAME)")
    talk.add_argument("prompt", nargs="*", help="the user message (default: read stdin)")
    talk.add_argument("--model", help="NAME:VERSION to pin a version (default: NAME, weighted)")
    talk.add_argument("--url", help="API root instead of status.url (e.g. a port-forward)")
    talk.add_argument("--max-tokens", type=int, default=256)
    read = commands.add_parser(
        "logs",
        parents=[common],
        help="the worker log of a fetch, fine-tune or index build, or a service's replica logs",
    )
    read.add_argument("name", help="NAME or KIND/NAME (e.g. ftjob/support-lora)")
    read.add_argument("--tail", type=int, default=100, help="last lines (per replica); -1: all")
    read.add_argument("--version", help="an InferenceService's version id (default: all)")
    read.add_argument(
        "--dashboard",
        help="Ray dashboard address (e.g. 127.0.0.1:8265 after kubectl port-forward); default: "
        "through the API server's service proxy",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # A chat prompt may follow options (`chat bot -n ml how long?`): leftovers are its words.
    args, rest = parser.parse_known_args(argv)
    if rest and (args.command != "chat" or any(word.startswith("-") for word in rest)):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if rest:
        args.prompt = [*args.prompt, *rest]
    binary = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if binary is None:
        print("kubectl drover: kubectl is not on the PATH", file=sys.stderr)
        return 1
    flags = [
        f"--{key}={value}"
        for key in ("kubeconfig", "context", "namespace")
        if (value := getattr(args, key, None))
    ]
    try:
        kubectl = Kubectl(binary, flags)
        if args.command == "rollout":
            sys.stdout.write(rollout(kubectl, RolloutControl(args.action), args.name))
        elif args.command == "chat":
            prompt = " ".join(args.prompt) if args.prompt else sys.stdin.read()
            chat(
                kubectl,
                args.name,
                prompt,
                sys.stdout,
                model=args.model,
                url=args.url,
                api_key=os.environ.get("DROVER_API_KEY"),  # not a flag: it would show in ps
                max_tokens=args.max_tokens,
            )
        elif args.command == "logs":
            resource = find_resource(kubectl, args.name)
            sys.stdout.write(
                logs(
                    kubectl,
                    resource,
                    lines=args.tail,
                    dashboard=args.dashboard,
                    version=args.version,
                )
            )
        else:
            sys.stdout.write(status(kubectl, args.name))
    except PluginError as exc:
        print(f"kubectl drover: {exc}", file=sys.stderr)
        return 1
    return 0
