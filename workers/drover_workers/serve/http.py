"""Serve layer: the router's FastAPI application and its OpenAI-shaped error handlers.

Every error the router's HTTP layer raises (an unknown path, a method not allowed, a body FastAPI
cannot read) is answered with OpenAI's error body, as the router's own errors are.
"""

# No `from __future__ import annotations`: FastAPI must see `Request` as a class, not a string.
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from drover_workers.serve import protocol as oa
from drover_workers.serve.protocol import ApiError

SESSION_HEADER = "x-session-id"

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
