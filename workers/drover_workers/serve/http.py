"""Serve layer: the router's FastAPI application and its OpenAI-shaped error handlers.

Every error the router's HTTP layer raises (an unknown path, a method not allowed, a body FastAPI
cannot read) is answered with OpenAI's error body, as the router's own errors are.
"""

# No `from __future__ import annotations`: FastAPI must see `Request` as a class, not a string.
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray.exceptions import RayActorError
from starlette.exceptions import HTTPException as StarletteHTTPException

from drover_workers.serve import protocol as oa
from drover_workers.serve.protocol import ApiError

SESSION_HEADER = "x-session-id"
VERSION_HEADER = "x-drover-version"
log = logging.getLogger("ray.serve")

api = FastAPI(title="Drover router", docs_url=None, redoc_url=None, openapi_url=None)


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    err = ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")
    return JSONResponse(err.body, status_code=exc.status_code)


@api.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(oa.bad(f"invalid request: {exc.errors()}").body, status_code=400)


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


def session_of(request: Request, body: dict[str, Any]) -> str:
    """The client's session: the `x-session-id` header, else OpenAI's `user` field."""
    session = request.headers.get(SESSION_HEADER) or body.get("user") or ""
    return session if isinstance(session, str) else ""


def unavailable(message: str, code: str, retry_after: int) -> ApiError:
    """503 with Retry-After: nothing ready can answer yet."""
    return ApiError(503, message, type_="server_error", code=code, retry_after=retry_after)


def failure_response(version: str, exc: Exception, retry_after: int) -> tuple[int, JSONResponse]:
    """The status and OpenAI-shaped answer for a request the version failed with `exc`: a
    replica that died with the request is a 503 (a retry may land on another), anything else a
    500 that names the version, never a traceback."""
    headers = {VERSION_HEADER: version}
    if isinstance(exc, RayActorError):
        log.warning("version %s: its replica died: %s", version, exc)
        died = f"version {version}: the replica answering died; retry"
        err = unavailable(died, "replica_died", retry_after)
        return 503, JSONResponse(err.body, status_code=503, headers={**err.headers, **headers})
    log.warning("version %s failed: %s", version, exc)
    message = f"version {version} failed to answer: {type(exc).__name__}"
    err = ApiError(500, message, type_="server_error", code="internal_error")
    return 500, JSONResponse(err.body, status_code=500, headers=headers)
