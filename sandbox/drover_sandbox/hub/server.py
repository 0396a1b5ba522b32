"""Local hub HTTP server (aiohttp): the endpoints `huggingface_hub.snapshot_download` and
`hf_hub_download` call, answered from a `RepoStore`.

Routes: `GET /api/{models|datasets}/{org}/{name}[/revision/{rev}]` (info with siblings),
`GET /api/{...}/tree/{rev}[/{path}]` (file listing), `HEAD|GET [/datasets]/{org}/{name}/resolve/
{rev}/{path}` (ETag, X-Repo-Commit, Content-Length, Range). Errors carry the hub's
`X-Error-Code` so the client raises its usual exceptions. A gated repo lists its files to anyone
but serves them only with one of its tokens (`Authorization: Bearer`), as the hub does.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from drover_sandbox.hub.store import Repo, RepoStore

LAST_MODIFIED = "2024-01-01T00:00:00.000Z"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


@dataclass
class HubState:
    """Mutable knobs and a request log; tests read the log and may slow downloads down."""

    store: RepoStore
    throttle_bytes_per_second: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)


STATE = web.AppKey("state", HubState)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": message},
        status=status,
        headers={"X-Error-Code": code, "X-Error-Message": message},
    )


def _lookup(request: web.Request, repo_type: str) -> tuple[Repo | None, web.Response | None]:
    state = request.app[STATE]
    repo_id = f"{request.match_info['org']}/{request.match_info['name']}"
    repo = state.store.get(repo_type, repo_id)
    if repo is None:
        return None, _error(404, "RepoNotFound", f"Repository {repo_id} not found")
    rev = request.match_info.get("rev", "main")
    if rev not in ("main", repo.commit):
        return None, _error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
    return repo, None


def _info(repo: Repo) -> dict[str, Any]:
    return {
        "_id": repo.commit[:24],
        "id": repo.repo_id,
        "modelId": repo.repo_id,
        "author": repo.repo_id.split("/")[0],
        "sha": repo.commit,
        "lastModified": LAST_MODIFIED,
        "createdAt": LAST_MODIFIED,
        "private": False,
        "gated": "manual" if repo.gate_tokens else False,
        "disabled": False,
        "tags": ["drover-local"],
        "siblings": [
            {"rfilename": f.path, "size": f.size, "blobId": f.blob_id} for f in repo.files
        ],
    }


def _repo_type(request: web.Request) -> str:
    return "dataset" if request.match_info.get("kind", "models") == "datasets" else "model"


async def handle_info(request: web.Request) -> web.Response:
    repo, err = _lookup(request, _repo_type(request))
    return err or web.json_response(_info(repo))  # type: ignore[arg-type]


async def handle_tree(request: web.Request) -> web.Response:
    repo, err = _lookup(request, _repo_type(request))
    if err:
        return err
    assert repo is not None
    prefix = request.match_info.get("path", "").strip("/")
    recursive = request.query.get("recursive", "false").lower() in ("1", "true")
    entries: list[dict[str, Any]] = []
    folders: set[str] = set()
    for f in repo.files:
        if prefix and not f.path.startswith(prefix + "/"):
            continue
        rest = f.path[len(prefix) + 1 :] if prefix else f.path
        if "/" in rest and not recursive:
            folder = f"{prefix}/{rest.split('/')[0]}" if prefix else rest.split("/")[0]
            if folder not in folders:
                folders.add(folder)
                entries.append({"type": "directory", "oid": repo.commit, "size": 0, "path": folder})
            continue
        entries.append(
            {
                "type": "file",
                "oid": f.blob_id,
                "size": f.size,
                "path": f.path,
                "lfs": {"oid": f.sha256, "size": f.size, "pointerSize": 134},
            }
        )
    if prefix and not entries:
        return _error(404, "EntryNotFound", f"{prefix} does not exist on {repo.commit}")
    return web.json_response(entries)


async def handle_resolve(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    repo_type = "dataset" if request.path.startswith("/datasets/") else "model"
    repo, err = _lookup(request, repo_type)
    range_header = request.headers.get("Range")
    state.requests.append({"method": request.method, "path": request.path, "range": range_header})
    if err:
        return err
    assert repo is not None
    denied = _gate(request, repo)
    if denied is not None:
        return denied
    info = repo.file(request.match_info["path"])
    if info is None:
        return _error(404, "EntryNotFound", f"{request.match_info['path']} not found")
    headers = {
        "ETag": f'"{info.sha256}"',
        "X-Repo-Commit": repo.commit,
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
    start, end = 0, info.size - 1
    status = 200
    if range_header and request.method == "GET":
        m = _RANGE.match(range_header.strip())
        if not m or (not m.group(1) and not m.group(2)):
            return _error(416, "InvalidRange", f"unsupported Range {range_header!r}")
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)), info.size - 1) if m.group(2) else info.size - 1
        else:  # suffix range: the last N bytes
            start = max(info.size - int(m.group(2)), 0)
        if start >= info.size or start > end:
            return web.Response(status=416, headers={"Content-Range": f"bytes */{info.size}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    headers["Content-Length"] = str(end - start + 1 if info.size else 0)
    if request.method == "HEAD":
        headers["Content-Length"] = str(info.size)
        return web.Response(status=200, headers=headers)
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    remaining = end - start + 1 if info.size else 0
    with open(repo.root / info.path, "rb") as fh:
        fh.seek(start)
        while remaining > 0:
            block = fh.read(min(_CHUNK, remaining))
            if not block:
                break
            remaining -= len(block)
            try:
                await response.write(block)
            except ConnectionResetError:
                return response  # the client went away (an interrupted download): nothing to do
            if state.throttle_bytes_per_second:
                await asyncio.sleep(len(block) / state.throttle_bytes_per_second)
    await response.write_eof()
    return response


def _gate(request: web.Request, repo: Repo) -> web.Response | None:
    """401 as the hub answers a gated repo's download: `GatedRepo` without a token (the client
    raises GatedRepoError), "Invalid credentials" with one it does not know (huggingface_hub
    utils/_http.py hf_raise_for_status reads both)."""
    if not repo.gate_tokens:
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip() in repo.gate_tokens:
        return None
    if not token.strip():
        return _error(
            401,
            "GatedRepo",
            f"Access to model {repo.repo_id} is restricted. You must have access to it and be "
            "authenticated to access it. Please log in.",
        )
    return web.json_response(
        {"error": "Invalid credentials in Authorization header"},
        status=401,
        headers={"X-Error-Message": "Invalid credentials in Authorization header"},
    )


async def handle_index(request: web.Request) -> web.Response:
    repos = request.app[STATE].store.list()
    return web.json_response({"repos": [{"type": t, "id": r} for t, r in repos]})


def build_app(store: RepoStore) -> web.Application:
    app = web.Application()
    app[STATE] = HubState(store)
    kind = r"{kind:models|datasets}"
    app.router.add_get("/", handle_index)
    app.router.add_get(f"/api/{kind}/{{org}}/{{name}}", handle_info)
    app.router.add_get(f"/api/{kind}/{{org}}/{{name}}/revision/{{rev}}", handle_info)
    app.router.add_get(f"/api/{kind}/{{org}}/{{name}}/tree/{{rev}}", handle_tree)
    app.router.add_get(f"/api/{kind}/{{org}}/{{name}}/tree/{{rev}}/{{path:.*}}", handle_tree)
    for prefix in ("", "/datasets"):
        route = f"{prefix}/{{org}}/{{name}}/resolve/{{rev}}/{{path:.+}}"
        app.router.add_route("HEAD", route, handle_resolve)
        app.router.add_get(route, handle_resolve, allow_head=False)
    return app
