"""What every request passes before a route sees it (a pure ASGI middleware):

- ``Host`` must be one the server answers as (no DNS rebinding);
- a state-changing request from a browser must come from the page's own origin (``Origin`` /
  ``Sec-Fetch-Site``), so other sites cannot drive the API (no CSRF, and no CORS at all);
- with a token configured (required when listening beyond loopback), every ``/api`` and ``/v1``
  request carries it: ``Authorization: Bearer …`` or the HttpOnly cookie the page gets;
- bodies are JSON (where there is one) and at most ``max_body`` bytes;
- every answer carries a strict Content-Security-Policy, ``nosniff`` and no framing;
- every answer speaks the language ``Accept-Language`` prefers, English or Chinese
  (``language.py``; the page sends the one it shows), whatever the process's own.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from memchat import i18n
from memchat.server import language  # noqa: F401  (the server's strings: http.*)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
COOKIE = "memchat_token"
#: the local user (everyone, when the server has no token and no accounts)
LOCAL_USER = 1
#: reachable without a token: liveness, and signing in
OPEN = {"/api/health", "/api/login"}
#: the paths whose bodies may carry files (a turn's attachments, ``/v1`` content parts): up to
#: ``max_upload`` bytes; every other body up to ``max_body``
UPLOADS = re.compile(r"^(/v1/chat/completions|/api/sessions(/\d+)?/turns)$")
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: Iterable[str],
        token: str | None = None,
        users: Callable[[str], int | None] | None = None,
        max_body: int = 1_000_000,
        max_upload: int = 1_000_000,
    ) -> None:
        self.app = app
        self.hosts = {h.lower() for h in hosts}
        self.token = token
        #: a user's token → their id (accounts made with ``memchat users add``); None: no accounts
        self.users = users
        self.max_body = max_body
        #: the limit of the bodies that may carry files (``UPLOADS``)
        self.max_upload = max(max_body, max_upload)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        asked = i18n.use_lang(i18n.accepted(headers.get("accept-language")))
        try:
            await self._guard(scope, receive, send, headers)
        finally:
            i18n.reset_lang(asked)

    async def _guard(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        host = headers.get("host", "").lower()
        name = host if host.endswith("]") else host.rsplit(":", 1)[0]  # the port is the server's own
        if name not in self.hosts:
            await _refuse(send, 421, "unknown_host", i18n.t("http.unknown_host"))
            return
        if method in _UNSAFE and not _same_origin(headers, host):
            await _refuse(send, 403, "cross_origin", i18n.t("http.cross_origin"))
            return
        user = LOCAL_USER
        if (self.token or self.users) and path.startswith(("/api/", "/v1/")) and path not in OPEN:
            found = self._user(headers)
            if found is None:
                await _refuse(send, 401, "unauthorized", i18n.t("http.unauthorized"))
                return
            user = found
        scope.setdefault("state", {})["user"] = user
        if method in _UNSAFE:
            length = headers.get("content-length")
            limit = self.max_upload if UPLOADS.match(path) else self.max_body
            if length is not None and (not length.isdigit() or int(length) > limit):
                await _refuse(send, 413, "too_large", i18n.t("http.too_large", limit=limit))
                return
            if length not in (None, "0") and "json" not in headers.get("content-type", "").lower():
                await _refuse(send, 415, "json_only", i18n.t("http.json_only"))
                return
            receive = self._limited(receive, send, limit)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _user(self, headers: dict[str, str]) -> int | None:
        """Who the request's token belongs to: the server token is the local user's."""
        given = token_of(headers)
        if not given:
            return None
        if self.token and hmac.compare_digest(given.encode(), self.token.encode()):
            return LOCAL_USER
        return self.users(given) if self.users is not None else None

    def _limited(self, receive: Receive, send: Send, limit: int) -> Receive:
        """``receive`` that stops a chunked body once it passes ``limit``."""
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        return wrapped


class BodyTooLarge(Exception):
    pass


def _same_origin(headers: dict[str, str], host: str) -> bool:
    """A browser says where a request comes from; programs (curl, the openai SDK) send neither
    header and are allowed (they cannot be tricked into it by a web page)."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    return origin.lower() in (f"http://{host}", f"https://{host}")


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": body})


def token_of(headers: dict[str, str]) -> str:
    """The token of a request: ``Authorization: Bearer …``, else the page's cookie."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return ""
