"""Serve layer: the router deployment (`router`), the service's OpenAI-compatible HTTP ingress.

It checks the API key, validates the request, picks a ready version by the weights of its
`user_config` (the live versions and their weights, changed in place by redeploying the config),
adds retrieved context, calls that version's `model` deployment in the version's own application
(`<router application>-<version>`) through a handle, records per-version metrics and says in every
answer which version answered (`x-drover-version` header and the `drover` field). With feedback on
it remembers each answer for `POST /v1/feedback` (serve.feedback).
"""

# No `from __future__ import annotations`: FastAPI must see `Request` as a class, not a string.
import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from ray import serve

from drover_workers.serve import protocol as oa
from drover_workers.serve.admission import Admission
from drover_workers.serve.auth import KeyCheck
from drover_workers.serve.config import (
    MODEL_DEPLOYMENT,
    AdapterRoute,
    RouterArgs,
    default_weights,
    parse_router_user_config,
    version_app_name,
)
from drover_workers.serve.feedback import Feedback, request_of
from drover_workers.serve.http import (
    VERSION_HEADER,
    api,
    error_response,
    failure_response,
    session_of,
)
from drover_workers.serve.metrics import RouterMetrics
from drover_workers.serve.protocol import ApiError
from drover_workers.serve.retrieval import Retriever, augment, query_of
from drover_workers.serve.routing import (
    WeightedPicker,
    effective_weights,
    hold_until_ready,
    ready_from_status,
)

log = logging.getLogger("ray.serve")
READY_REFRESH_SECONDS = 1.0


@serve.deployment(name="router", ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=512)
@serve.ingress(api)
class Router(Admission):
    def __init__(self, spec: dict[str, Any]) -> None:
        self.args = RouterArgs.model_validate(spec)
        self.versions: list[str] = []  # set by reconfigure from the user_config
        self.service = self.args.service.name
        self.weights: dict[str, float] = {}
        self.picker = WeightedPicker()
        self.metrics = RouterMetrics(self.service, self.args.service.namespace)
        self.in_flight: dict[str, int] = {}
        self.handles: dict[str, Any] = {}
        self.routes: dict[str, AdapterRoute] = {}  # LoRA versions on another version's engine
        self.keys = KeyCheck(self.args.auth)
        rag = self.args.retrieval
        self.retriever = Retriever(rag.index_path, rag.embedder_path, rag.top_k) if rag else None
        context = serve.get_replica_context()
        self.app_name = context.app_name
        service = self.args.service.model_dump()
        self.feedback = Feedback(self.args.feedback, service, context.replica_id.unique_id)
        self.ready: set[str] = set()
        self._refresh: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        cfg = parse_router_user_config(user_config)
        for version in cfg.versions:
            if version not in self.in_flight:
                self.in_flight[version] = 0
                self.metrics.set_in_flight(version, 0)
        self.routes = dict(cfg.routes)
        self.versions = list(cfg.versions)
        for gone in set(self.handles) - {self.engine_of(v) for v in self.versions}:
            del self.handles[gone]  # its application is being deleted
        self.ready &= set(self.versions)
        if cfg.weights:
            self.weights = {v: cfg.weights.get(v, 0.0) for v in self.versions}
        else:
            self.weights = default_weights(self.versions) if self.versions else {}
        log.info("versions %s, traffic weights now %s", self.versions, self.weights)

    def engine_of(self, version: str) -> str:
        """The version application whose engine answers `version`: its own, or for a LoRA
        version the application of its base weights (the adapter is applied per request)."""
        route = self.routes.get(version)
        return route.engine if route else version

    def model(self, version: str) -> Any:
        """The handle of the `model` deployment that serves `version`."""
        engine = self.engine_of(version)
        handle = self.handles.get(engine)
        if handle is None:
            app = version_app_name(self.app_name, engine)
            handle = serve.get_deployment_handle(MODEL_DEPLOYMENT, app_name=app)
            self.handles[engine] = handle
        return handle

    def _engine_call(self, version: str, session: str, method: str, stream: bool = False) -> Any:
        """The engine method to call; `session` (the client's session or user id) keeps a
        multi-turn chat on one replica (replica_router.PrefixAffinityRouter)."""
        handle = self.model(version).options(session_id=session, stream=stream)
        return getattr(handle, method)

    def _for_version(self, version: str, parsed: dict[str, Any]) -> dict[str, Any]:
        """The engine request: the parsed body plus which version (and adapter) it is for."""
        route = self.routes.get(version)
        return {**parsed, "version": version, "adapter": route.adapter_path if route else None}

    # -- readiness -----------------------------------------------------------------------------

    async def _load_ready(self) -> None:
        try:
            status = await asyncio.to_thread(serve.status)
            versions = list(self.versions)
            apps = {v: version_app_name(self.app_name, self.engine_of(v)) for v in versions}
            ready = ready_from_status(status.applications, apps, self.ready)
            if versions == self.versions:  # else a reconfigure raced us: wait for the next read
                self.ready = ready
        except Exception as exc:  # the controller may be briefly unreachable; keep the last view
            log.warning("could not read Serve status: %s", exc)

    async def ready_versions(self) -> set[str]:
        """Versions with a RUNNING (warmed-up) replica, refreshed at most once a second."""
        now = time.monotonic()
        if self._refresh is None or (
            self._refresh.done() and now - self._refreshed_at > READY_REFRESH_SECONDS
        ):
            self._refreshed_at = now
            self._refresh = asyncio.create_task(self._load_ready())
        if not self.ready and not self._refresh.done():
            await asyncio.shield(self._refresh)
        return self.ready

    async def check_health(self) -> None:
        await self.ready_versions()

    # -- request plumbing ----------------------------------------------------------------------

    async def _choose(self, request: Request, model: Any) -> str:
        if not isinstance(model, str) or not model:
            raise oa.bad("'model' is required: use one of GET /v1/models", "model")
        pinned = request.headers.get(VERSION_HEADER)
        if model != self.service:
            prefix = f"{self.service}:"
            if not model.startswith(prefix) or model[len(prefix) :] not in self.versions:
                names = [self.service, *(f"{prefix}{v}" for v in self.versions)]
                raise ApiError(
                    404,
                    f"The model '{model}' does not exist; this service serves {names}",
                    param="model",
                    code="model_not_found",
                )
            pinned = model[len(prefix) :]
        ready = await self.ready_versions()
        if pinned:
            if pinned not in self.versions:
                raise oa.bad(f"{VERSION_HEADER}: unknown version {pinned!r}", VERSION_HEADER)
            if pinned not in ready:
                raise self._unavailable(f"version {pinned} is not ready yet", "version_not_ready")
            return pinned
        version, reason = self.picker.next_version(self.weights, ready)
        if version is None and not ready and self.args.runtime.hold_seconds > 0:
            version = await self._hold()
            reason = f"no version became ready within {self.args.runtime.hold_seconds:g}s"
        if version is None:
            message = f"service {self.service} cannot answer: {reason}"
            raise self._unavailable(message, "no_ready_version")
        return version

    async def _hold(self) -> str | None:
        """The activator: nothing is ready (the service is at zero, or starting). Hold the
        request, counted in flight on the version with the most traffic weight, so the
        autoscaler sees load at zero and wakes that version; answer once one is ready."""
        waking = max(sorted(self.weights), key=lambda v: self.weights[v], default=None)
        if waking is not None:
            self._admit(waking)  # 429 when too many already wait
        try:
            return await hold_until_ready(
                self.ready_versions,
                lambda ready: self.picker.next_version(self.weights, ready)[0],
                self.args.runtime.hold_seconds,
            )
        finally:
            if waking is not None:
                self._release(waking)

    async def _sources(
        self, version: str, parsed: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Any]]:
        if self.retriever is None:
            return parsed, []
        sources = await asyncio.to_thread(self.retriever.search, query_of(parsed))
        self.metrics.distance(version, self.retriever.distance(sources))
        return augment(parsed, sources), sources

    # -- endpoints -----------------------------------------------------------------------------

    @api.get("/healthz")
    async def healthz(self) -> JSONResponse:
        ready = await self.ready_versions()
        body = {
            "status": "ok" if ready else "unavailable",
            "ready": sorted(ready),
            "weights": effective_weights(self.weights, ready),
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @api.get("/v1/models")
    async def models_list(self, request: Request) -> JSONResponse:
        try:
            self.keys.check(request.headers.get("authorization"))
        except ApiError as exc:
            return error_response(exc)
        ids = [self.service, *(f"{self.service}:{v}" for v in self.versions)]
        data = [{"id": i, "object": "model", "created": 0, "owned_by": "drover"} for i in ids]
        return JSONResponse({"object": "list", "data": data})

    @api.post("/v1/completions")
    async def completions(self, request: Request) -> Response:
        return await self._handle(request, "completion")

    @api.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Response:
        return await self._handle(request, "chat")

    @api.post("/v1/embeddings")
    async def embeddings(self, request: Request) -> Response:
        return await self._handle(request, "embedding")

    @api.post("/v1/feedback")
    async def feedback_post(self, request: Request) -> Response:
        try:
            self.keys.check(request.headers.get("authorization"))
            return JSONResponse(await self.feedback.submit(oa.load_json(await request.body())))
        except ApiError as exc:
            return error_response(exc)

    async def _handle(self, request: Request, kind: str) -> Response:
        start = time.perf_counter()
        version, code, streaming = "none", 500, False
        try:
            self.keys.check(request.headers.get("authorization"))
            body = oa.load_json(await request.body())
            parsed, stream = oa.parse_request(
                kind, body, self.args.task, self.service, self.args.runtime.max_tokens
            )
            version = await self._choose(request, body.get("model"))
            session = session_of(request, body)
            self._admit(version)
            try:
                if stream:
                    response = await self._stream(
                        version, kind, body["model"], parsed, start, session
                    )
                    streaming = True
                    return response
                response = await self._once(version, kind, body["model"], parsed, session)
                code = 200
                return response
            finally:
                if not streaming:
                    self._release(version)
        except ApiError as exc:
            code = exc.status
            return error_response(exc)
        except Exception as exc:
            code, response = failure_response(version, exc, self._retry_after())
            return response
        finally:
            self.metrics.flush_routing()
            if not streaming:
                elapsed = time.perf_counter() - start
                self.metrics.record(version, code, elapsed, elapsed if code == 200 else None)

    def _drover(self, version: str, sources: list[Any]) -> dict[str, Any]:
        return {"version": version, "sources": sources}

    def _who(self, model: str, version: str, sources: list[Any]) -> dict[str, Any]:
        """Who answered, for the feedback record: model, version, retrieved sources' names."""
        names = tuple(str(s.get("source", "")) for s in sources if isinstance(s, dict))
        return {"model": model, "version": version, "sources": names}

    async def _once(
        self, version: str, kind: str, model: str, parsed: Any, session: str = ""
    ) -> Response:
        headers = {VERSION_HEADER: version}
        now, rid = int(time.time()), oa.response_id()
        if kind == "embedding":
            response = self.model(version).embed.remote(parsed["input"])
            result = await self._bounded(version, response, response)
            data = oa.embedding_data(result["vectors"], parsed["encoding_format"])
            self.metrics.tokens(version, result["usage"])
            body = {"object": "list", "data": data, "model": model, "usage": result["usage"]}
            return JSONResponse({**body, "drover": self._drover(version, [])}, headers=headers)
        asked, (parsed, sources) = request_of(kind, parsed), await self._sources(version, parsed)
        generate = self._engine_call(version, session, "generate")
        response = generate.remote(self._for_version(version, parsed))
        result = await self._bounded(version, response, response)
        if "error" in result:
            raise oa.bad(result["error"], "prompt" if kind == "completion" else "messages")
        self.metrics.tokens(version, result["usage"])
        texts = [c["text"] for c in result["choices"]]
        self.feedback.remember(rid, kind, asked, texts, **self._who(model, version, sources))
        build = oa.completion_response if kind == "completion" else oa.chat_response
        body = build(rid, model, now, result)
        return JSONResponse({**body, "drover": self._drover(version, sources)}, headers=headers)

    async def _stream(
        self, version: str, kind: str, model: str, parsed: Any, start: float, session: str = ""
    ) -> Response:
        asked, (parsed, sources) = request_of(kind, parsed), await self._sources(version, parsed)
        request = self._for_version(version, parsed)
        generate = self._engine_call(version, session, "generate_stream", stream=True)
        rid, who = oa.response_id(), self._who(model, version, sources)
        response = generate.remote(request)
        pieces = self.feedback.tap(rid, kind, asked, response, **who)
        # errors before the first byte get a proper status
        first = await self._bounded(version, pieces.__anext__(), response)
        if "error" in first:
            raise oa.bad(first["error"], "prompt" if kind == "completion" else "messages")
        ttft = time.perf_counter() - start
        body = self._sse(version, kind, model, first, pieces, sources, start, ttft, rid)
        return StreamingResponse(
            body, media_type="text/event-stream", headers={VERSION_HEADER: version}
        )

    async def _sse(
        self,
        version: str,
        kind: str,
        model: str,
        first: dict[str, Any],
        pieces: Any,
        sources: list[Any],
        start: float,
        ttft: float,
        rid: str,
    ) -> AsyncIterator[bytes]:
        now, chat, code = int(time.time()), kind == "chat", 200
        generated, last = 0, time.perf_counter()
        try:
            chunk = oa.stream_chunk(rid, model, now, chat, first, first=True)
            yield oa.sse({**chunk, "drover": self._drover(version, sources)})
            if "usage" in first:
                self.metrics.tokens(version, first["usage"])
            async for piece in pieces:
                yield oa.sse(oa.stream_chunk(rid, model, now, chat, piece))
                if "usage" in piece:
                    self.metrics.tokens(version, piece["usage"])
                    generated = int(piece["usage"].get("completion_tokens", 0))
                else:
                    last = time.perf_counter()
        except Exception as exc:
            code = 500
            log.warning("version %s failed while streaming: %s", version, exc)
            err = ApiError(500, f"version {version} failed while streaming", type_="server_error")
            yield oa.sse(err.body)
        finally:
            self._release(version)
            self.metrics.record(version, code, time.perf_counter() - start, ttft)
            if code == 200 and generated > 1:  # the mean gap after the first token
                self.metrics.inter_token(version, (last - start - ttft) / (generated - 1))
        yield oa.sse("[DONE]")
