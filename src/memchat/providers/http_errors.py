"""Reading an OpenAI-compatible service's HTTP errors: both error envelopes (OpenAI's
``{"error": …}`` and ModelScope's ``{"errors": …}``), ``Retry-After``, quota vs throttling,
context overflow — shared by the chat and image adapters."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from memchat.errors import (
    AuthenticationError,
    BadRequest,
    ContextLengthExceeded,
    ProviderError,
    RateLimited,
    ServerError,
)
from memchat.providers._httpx import httpx

#: a 429 that will not clear by waiting: codes ("insufficient_quota", "credit_balance_exhausted")
_QUOTA_CODE = re.compile(r"quota|balance|billing|spend_limit|credit", re.IGNORECASE)
#: and messages ("insufficient balance (1008)", "quota exceeded"); OpenAI's throttling text
#: mentions billing, so that word alone is not enough here
_QUOTA_TEXT = re.compile(r"quota|balance", re.IGNORECASE)
_CONTEXT = re.compile(r"context[_ ]length|context window|maximum context", re.IGNORECASE)


def status_error(response: httpx.Response, scrub: Callable[[str], str]) -> ProviderError:
    """The ``memchat.errors`` exception for a non-2xx response (``scrub`` removes secrets)."""
    status = response.status_code
    message, code, kind, request_id = error_fields(response)
    detail = scrub(message or f"HTTP {status} {response.reason_phrase}".strip())
    info: dict[str, Any] = {}
    if request_id:
        info["request_id"] = request_id
    if code:
        info["code"] = code
    words = " ".join(str(x) for x in (message, code, kind) if x)
    if status in (401, 403):
        return AuthenticationError(detail, status=status, **info)
    if status == 429:
        headers = response.headers
        exhausted = any(k.lower().endswith("-remaining") and v.strip() == "0" for k, v in headers.items())
        quota = (
            exhausted
            or bool(_QUOTA_CODE.search(" ".join(str(x) for x in (code, kind) if x)))
            or bool(_QUOTA_TEXT.search(message))
        )
        return RateLimited(detail, status=status, quota=quota, retry_after=retry_after(headers), **info)
    if status == 400 and (code == "context_length_exceeded" or _CONTEXT.search(words)):
        return ContextLengthExceeded(detail, status=status, **info)
    if status == 413 and _CONTEXT.search(words):
        return ContextLengthExceeded(detail, status=status, **info)
    if 400 <= status < 500:
        return BadRequest(detail, status=status, **info)
    if status >= 500:
        return ServerError(detail, status=status, **info)
    return ProviderError(detail, status=status, **info)


def error_fields(response: httpx.Response) -> tuple[str, str | None, str | None, str | None]:
    """(message, code, type, request_id) from either error envelope, or the raw text."""
    request_id = response.headers.get("x-request-id") or response.headers.get("request-id")
    try:
        text = response.text
    except httpx.ResponseNotRead:  # the body could not be read
        text = ""
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if "html" in response.headers.get("content-type", "").lower():
            return "", None, None, request_id  # a proxy's error page says nothing useful
        return text.strip()[:500], None, None, request_id
    request_id = str(body.get("request_id") or request_id or "") or None
    err = body.get("error") if body.get("error") is not None else body.get("errors")
    if isinstance(err, dict):
        message = err.get("message") or err.get("msg") or ""
        code = err.get("code")
        kind = err.get("type")
        request_id = str(err.get("request_id") or request_id or "") or None
        return (
            str(message) or json.dumps(err, ensure_ascii=False)[:500],
            None if code is None else str(code),
            None if kind is None else str(kind),
            request_id,
        )
    if isinstance(err, str):
        return err, None, None, request_id
    message = body.get("message") or body.get("detail") or json.dumps(body, ensure_ascii=False)[:500]
    code = body.get("code")
    return str(message), None if code is None else str(code), None, request_id


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils  # rare (an HTTP date): not worth its import time at start-up

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
