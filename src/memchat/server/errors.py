"""Errors over HTTP: every error answers ``{"error": {"code", "message"}}``, its status from one
table (``STATUS``) looked up along the exception's MRO, as Starlette finds its handlers, so the
most specific class listed wins; and the error responses the routes declare in ``/openapi.json``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from memchat import i18n
from memchat.errors import (
    AttachmentTooLarge,
    MemchatError,
    MemoryNotFound,
    ProviderError,
    SessionExists,
    SessionNotFound,
    TurnInProgress,
)
from memchat.server import language  # noqa: F401  (the server's strings: http.*)
from memchat.server.fanout import FanoutUnavailable
from memchat.server.runs import Busy
from memchat.server.security import BodyTooLarge


class MemoryEnded(MemchatError):
    """The memory is no longer served (forgotten or superseded): restore it first (a 409)."""

    kind = "memory_ended"


class BadImport(MemchatError):
    """An import body that is not JSONL or a JSON list of memories (a 400)."""

    kind = "bad_import"


#: the status of each error class; an error takes the entry of the first class of its MRO listed
STATUS: dict[type[Exception], int] = {
    SessionNotFound: 404,
    MemoryNotFound: 404,
    SessionExists: 409,
    MemoryEnded: 409,
    Busy: 409,  # a turn already runs in this session
    TurnInProgress: 409,  # another writer (the REPL, a script) streams a reply there
    BodyTooLarge: 413,
    AttachmentTooLarge: 413,  # a file over ``max_attachment``
    ProviderError: 502,  # the model or image service failed, not the request
    FanoutUnavailable: 503,  # Redis, shared by the workers, is down
    MemchatError: 400,
}
#: the ``code`` of an error that has no ``kind`` of its own
_CODES: dict[type[Exception], str] = {Busy: "busy", BodyTooLarge: "too_large"}
#: the message (its ``i18n`` key, ``language.py``) of an error raised without words
_MESSAGES: dict[type[Exception], str] = {Busy: "http.busy", BodyTooLarge: "http.too_large_body"}
#: the ``code`` of an ``HTTPException`` (FastAPI's own, routing's, and the routes') by status
_HTTP_CODES = {404: "not_found", 409: "busy", 400: "bad_request", 405: "method_not_allowed"}


T = TypeVar("T")


def _lookup(table: dict[type[Exception], T], exc: Exception) -> T | None:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return None


def status_of(exc: Exception) -> int:
    """The HTTP status of ``exc`` (500 for a class the table does not know)."""
    status = _lookup(STATUS, exc)
    return 500 if status is None else status


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


async def _known(_: Request, exc: Exception) -> JSONResponse:
    """Every class of ``STATUS``: a memchat error in the user's words, or one of the server's own."""
    if isinstance(exc, MemchatError):
        message = i18n.describe_error(exc)
        if message == f"err.{exc.kind}":  # a kind the catalog has no line for: its own words
            message = " ".join(str(exc.detail or exc.kind).split())
        return error_response(status_of(exc), exc.kind, message)
    code = _lookup(_CODES, exc) or "error"
    words = _lookup(_MESSAGES, exc)
    return error_response(status_of(exc), code, str(exc) or (i18n.t(words) if words else code))


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":  # loc is ("body", position): say what it is
        reason = (first.get("ctx") or {}).get("error", "invalid")
        return error_response(422, "invalid_json", i18n.t("http.invalid_json", reason=reason))
    where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
    reason = str(first.get("msg", "invalid"))
    message = i18n.t("http.invalid", where=where, reason=reason) if where else reason
    return error_response(422, "invalid", message)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own (a body that is not JSON), routing's, and the routes' ``HTTPException``."""
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    detail = i18n.t("http.not_found") if exc.status_code == 404 and exc.detail == "Not Found" else str(exc.detail)
    return error_response(exc.status_code, code, detail, exc.headers)


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` in memchat's shape: the classes of ``STATUS``, invalid
    requests (422) and ``HTTPException``."""
    for cls in STATUS:
        app.add_exception_handler(cls, _known)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)


# -- the error responses the routes declare (/openapi.json, checked by tests/test_http_schema.py) ----


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code", "message"}}`` with a 4xx (5xx: the model, or Redis)."""

    error: ErrorDetail


_ERRORS = {
    400: "a bad request: a body that is not UTF-8, an import that is not a memchat export, …",
    401: "a token is required (Authorization: Bearer …, or the page's cookie)",
    403: "a state-changing request from another site",
    404: "no such session or memory (or someone else's)",
    409: "busy (a reply is being generated in this session), the name is taken, or the memory is no longer served",
    413: "the body is over 1 MB",
    415: "the body is not JSON",
    421: "a Host this server does not answer as",
    422: "invalid parameters or body",
    502: "the model or image service failed",
    503: "Redis, which the workers share, is unreachable",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses."""
    return {code: {"model": ErrorBody, "description": _ERRORS[code]} for code in codes}


#: every request may meet the guard (Host, token, origin, body) and validation
COMMON_ERRORS = errors(400, 401, 403, 413, 415, 421, 422)
