"""Local control plane, HTTP layer: the aiohttp application, URL routing and error rendering.

`build_app(config)` wires the store, registry, collector, fault injection and snapshotting;
every resource URL (`/api/v1/...`, `/apis/{group}/{version}/...`) goes through `dispatch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from . import background, discovery, listwatch, snapshot
from .audit import Audit, verb_of
from .crud import CRD_KEY, Api, Req, Result, as_version, now_rfc3339
from .errors import ApiError, bad_request, internal, not_found
from .faults import Faults
from .gc import Collector
from .registry import Registry
from .store import Store

log = logging.getLogger("drover_sandbox.apiserver")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def not_allowed() -> ApiError:
    """405 as kube's router answers it (a fresh exception each time: a re-raised instance would
    keep growing its traceback)."""
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )


def no_such_path() -> ApiError:
    """404 for a path that names no resource, as kube's router answers it."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 0
    snapshot_path: Path | None = None
    bookmark_interval: float = 1.0
    watch_history: int = 20_000
    event_ttl: float = 3600.0
    faults: Faults = field(default_factory=Faults)


class State:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.watch_history)
        self.registry = Registry()
        self.gc = Collector(self.store, self.registry, now_rfc3339)
        self.gc.crd_removed = self._crd_removed
        self.api = Api(self.store, self.registry, self.gc)
        self.faults = config.faults
        self.audit = Audit()
        self.address = f"{config.host}:{config.port}"
        self.openapi_cache: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.openapi_revision = -1
        if config.snapshot_path is not None:
            count = snapshot.load(config.snapshot_path, self.store, self.registry)
            log.info("restored %d objects from %s", count, config.snapshot_path)
        for name in DEFAULT_NAMESPACES:
            if self.store.get(("", "namespaces"), "", name) is None:
                res = self.registry.get("", "v1", "namespaces")
                assert res is not None
                self.api.create(
                    Req(res, "", "", "", _NoQuery(), user_agent="drover"),
                    {"metadata": {"name": name}},
                )

    def _crd_removed(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        self.registry.unregister_crd(crd["metadata"]["name"])
        self.store.drop_resource(
            (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        )


class _NoQuery(dict[str, Any]):
    def getall(self, key: str, default: Any = None) -> Any:
        return default


def json_response(
    body: Any,
    code: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=code,
        headers={"Content-Type": content_type, **(headers or {})},
    )


@web.middleware
async def errors_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        body = exc.to_status()
        if exc.details == {}:  # kube sends an empty details object on routing 404s and 405s
            body["details"] = {}
        return json_response(body, exc.code, exc.headers)
    except web.HTTPException:
        raise
    except Exception as exc:
        log.exception("internal error on %s %s", request.method, request.path)
        err = internal(f"{type(exc).__name__}: {exc}")
        return json_response(err.to_status(), 500)


def _state(request: web.Request) -> State:
    return request.app["state"]


async def version(request: web.Request) -> web.Response:
    return json_response(discovery.VERSION_INFO)


async def api_root(request: web.Request) -> web.Response:
    state = _state(request)
    if discovery.wants_aggregated(request.headers.get("Accept", "")):
        return _aggregated(discovery.build_aggregated(state.registry, core=True))
    return json_response(discovery.build_api_versions(state.address))


async def apis_root(request: web.Request) -> web.Response:
    state = _state(request)
    if discovery.wants_aggregated(request.headers.get("Accept", "")):
        return _aggregated(discovery.build_aggregated(state.registry, core=False))
    return json_response(discovery.build_group_list(state.registry))


def _aggregated(body: dict[str, Any]) -> web.Response:
    return json_response(body, headers={"Vary": "Accept"}, content_type=discovery.AGGREGATED_V2)


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def openapi_index(request: web.Request) -> web.Response:
    from . import openapi

    state = _state(request)
    docs = {(g, v): _openapi_doc(state, g, v) for g, v in _group_versions(state)}
    return json_response(openapi.build_openapi_v3_index(docs))


def _openapi_doc(state: State, group: str, version: str) -> dict[str, Any] | None:
    """The group-version document, cached until the served resources change."""
    from . import openapi

    if state.openapi_revision != state.registry.revision:
        state.openapi_cache.clear()
        state.openapi_revision = state.registry.revision
    key = (group, version)
    if key not in state.openapi_cache:
        resources = state.registry.in_group_version(group, version)
        state.openapi_cache[key] = (
            openapi.build_group_version_doc(group, version, resources) if resources else None
        )
    return state.openapi_cache[key]


async def openapi_doc(request: web.Request) -> web.Response:
    parts = request.match_info["path"].strip("/").split("/")
    state = _state(request)
    if parts[0] == "api" and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[0] == "apis" and len(parts) == 3:
        group, version = parts[1], parts[2]
    else:
        raise no_such_path()
    doc = _openapi_doc(state, group, version)
    if doc is None:
        raise no_such_path()
    return json_response(doc)


def _group_versions(state: State) -> list[tuple[str, str]]:
    return [(g, v) for g, versions in state.registry.group_versions().items() for v in versions]


async def not_found_route(request: web.Request) -> web.Response:
    raise no_such_path()


async def faults_get(request: web.Request) -> web.Response:
    faults = _state(request).faults
    return json_response({**faults.to_dict(), "injected": dict(faults.injected)})


async def requests_get(request: web.Request) -> web.Response:
    return json_response(_state(request).audit.to_dict())


async def faults_post(request: web.Request) -> web.Response:
    try:
        data = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise bad_request(f"faults body is not JSON: {exc}") from None
    state = _state(request)
    state.faults.update(data)
    return json_response(state.faults.to_dict())


def parse_path(path: str) -> tuple[str, str, list[str]]:
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "api" and len(parts) >= 2:
        return "", parts[1], parts[2:]
    if parts and parts[0] == "apis" and len(parts) >= 3:
        return parts[1], parts[2], parts[3:]
    raise no_such_path()


async def dispatch(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    group, version, rest = parse_path(request.path)
    if not rest:
        body = discovery.build_resource_list(state.registry, group, version) if version else None
        if body is None:
            if group and not version:
                found = discovery.build_group(state.registry, group)
                if found:
                    return json_response(found)
            raise no_such_path()
        return json_response(body)
    watching = request.query.get("watch", "").lower() in ("true", "1")
    if rest[0] == "watch":
        watching, rest = True, rest[1:]
    namespace = ""
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and not (group == "" and rest[2] in ("status", "finalize"))
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise no_such_path()
    res = state.registry.get(group, version, rest[0])
    if res is None or (namespace and not res.namespaced):
        raise no_such_path()
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if res.namespaced and name and not namespace:
        raise no_such_path()
    req = Req(
        res,
        namespace,
        name,
        sub,
        request.query,
        await request.read(),
        request.headers.get("Content-Type", "application/json"),
        request.headers.get("User-Agent", ""),
        request.headers.get("Accept", ""),
    )
    verb = verb_of(request.method, name, watching)
    code = 500
    try:
        response = await _serve(request, state, req, watching)
        code = response.status
        return response
    except ApiError as exc:
        code = exc.code
        raise
    finally:
        state.audit.record(verb, res.group, res.plural, sub, code, req.user_agent)


async def _serve(
    request: web.Request, state: State, req: Req, watching: bool
) -> web.StreamResponse:
    faults, name, sub = state.faults, req.name, req.subresource
    delay = faults.pick_latency(req.user_agent)
    if delay:
        await asyncio.sleep(delay)
    error = faults.pick_error(request.method, req.res.plural, name, req.user_agent)
    if error is not None:
        raise error
    method = request.method
    if method == "GET" and watching:
        return await listwatch.watch(
            request, state.store, req, faults, state.config.bookmark_interval
        )
    result = _run_verb(state, method, req)
    headers = {}
    if result.warnings:
        headers["Warning"] = ", ".join(
            '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in result.warnings
        )
    body = result.body
    if method == "GET" and name and not sub and listwatch.wants_table(req.accept):
        body = listwatch.table_of(req, [body], {"resourceVersion": str(state.store.rv)})
    return json_response(body, result.code, headers)


def _run_verb(state: State, method: str, req: Req) -> Result:
    api = state.api
    if method == "GET":
        return api.get(req) if req.name else listwatch.list_objects(state.store, req)
    if method == "POST":
        if req.name or (req.res.namespaced and not req.namespace):
            raise not_allowed()
        return api.create(req)
    if not req.name:
        if method == "DELETE":
            return api.delete_collection(req, listwatch.matcher_for(req))
        raise not_allowed()
    if method == "PUT":
        if req.subresource == "finalize" and req.res.plural == "namespaces":
            return _finalize_namespace(state, req)
        return api.replace(req)
    if method == "PATCH":
        return api.patch(req)
    if method == "DELETE":
        return api.delete(req)
    raise not_allowed()


def _finalize_namespace(state: State, req: Req) -> Result:
    body = json.loads(req.body or b"{}")
    old = state.store.get(("", "namespaces"), "", req.name)
    if old is None:
        raise not_found("", "namespaces", req.name)
    new = {
        **old,
        "spec": {
            **(old.get("spec") or {}),
            "finalizers": (body.get("spec") or {}).get("finalizers") or [],
        },
    }
    stored = state.store.put(("", "namespaces"), new, "MODIFIED")
    state.gc.enqueue("namespace", req.name)
    return Result(200, as_version(stored, req.res))


async def _on_startup(app: web.Application) -> None:
    state: State = app["state"]
    app["tasks"] = [
        asyncio.create_task(state.gc.run()),
        asyncio.create_task(
            background.expire_events(state.store, state.gc, state.config.event_ttl)
        ),
    ]
    if state.config.snapshot_path is not None:
        app["tasks"].append(
            asyncio.create_task(background.save_snapshots(state.store, state.config.snapshot_path))
        )


async def _on_shutdown(app: web.Application) -> None:
    state: State = app["state"]
    state.store.hub.close_all()
    for task in app.get("tasks", []):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if state.config.snapshot_path is not None:
        snapshot.save(state.config.snapshot_path, state.store)


def build_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=64 * 1024 * 1024)
    app["state"] = State(config)
    add = app.router.add_route
    add("GET", "/version", version)
    add("GET", "/version/", version)
    add("GET", "/api", api_root)
    add("GET", "/api/", api_root)
    add("GET", "/apis", apis_root)
    add("GET", "/apis/", apis_root)
    for path in ("/healthz", "/livez", "/readyz"):
        add("GET", path, health)
    add("GET", "/openapi/v3", openapi_index)
    add("GET", "/openapi/v3/{path:.*}", openapi_doc)
    add("GET", "/_drover/faults", faults_get)
    add("POST", "/_drover/faults", faults_post)
    add("GET", "/_drover/requests", requests_get)
    add("*", "/api/{tail:.*}", dispatch)
    add("*", "/apis/{tail:.*}", dispatch)
    add("*", "/{tail:.*}", not_found_route)
    app.on_startup.append(_on_startup)
    app.on_shutdown.append(_on_shutdown)
    return app


__all__ = ["CRD_KEY", "Config", "build_app"]
