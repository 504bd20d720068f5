"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and the benchmark (stdlib only).

It speaks ``POST /v1/chat/completions`` (SSE streaming and plain JSON) and ``GET /v1/models``
the way ModelScope API-Inference and OpenAI do (see ``shared/api-protocols.md`` sections 1
and 4), records every request, and plays scripted misbehaviour on demand::

    server = FakeServer().start()            # or: with FakeServer() as server: ...
    server.url                               # "http://127.0.0.1:PORT/v1"
    server.script(FakeReply.text("Hel", "lo"), FakeReply.server_error(502))
    ...                                      # point a client at server.url
    server.chat_requests[-1].messages        # the exact messages the client sent
    server.reset(); server.close()

With ``max_context_tokens`` set, a chat request whose messages come to more tokens than that
(counted like ``memchat.tokens.estimate_tokens`` plus 4 per message: ``context_tokens``) is
refused the way OpenAI refuses it: 400 with ``code: context_length_exceeded`` (the scripted
replies are left for the next requests)::

    server.max_context_tokens = 1_000

With nothing scripted a chat request is answered ``"echo: <last user message>"`` split into a
few chunks (or ``reply`` when set), so tests can check what the model "saw".

Standalone (subprocess CLI tests, the benchmark)::

    python tests/fakeserver.py --port 0 [--host 127.0.0.1] [--delay-ms N] [--reply TEXT]
                               [--model ID ...] [--api-key KEY] [--max-context-tokens N]
                               [--tool-model]

prints its base URL (``http://127.0.0.1:PORT/v1``) as the first stdout line, then serves until
killed (SIGTERM / SIGINT).
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["FakeReply", "FakeServer", "Recorded", "context_tokens", "refused_url"]

MS_AUTH_MESSAGE = "Authentication failed, please make sure that a valid ModelScope token is supplied."
_IO_ERRORS = (OSError, ValueError)  # peer gone, socket closed


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it. ``headers`` keys are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None when the body was empty or not JSON
    raw: bytes = b""
    peer: tuple[str, int] = ("", 0)  # the client's address: the same port means a reused connection
    at: float = 0.0  # ``time.monotonic()`` when it arrived (the gaps show a client's retry pauses)

    @property
    def messages(self) -> list[dict[str, Any]]:
        body = self.body if isinstance(self.body, dict) else {}
        return list(body.get("messages") or [])

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class FakeReply:
    """One scripted answer. Counters (``*_after``) count delta frames (reasoning and content
    chunks); the opening ``role`` frame is not counted, and ``0`` means "right after the headers".
    """

    chunks: Sequence[str] | None = None  # content pieces; None → the default reply (echo)
    reasoning: Sequence[str] = ()  # ``reasoning_content`` pieces, streamed before the content
    finish_reason: str | None = "stop"
    usage: dict[str, int] | None = None  # None → computed; sent only with stream_options.include_usage
    omit_usage: bool = False  # no usage chunk even when asked (llama.cpp's server streams none)
    status: int = 200
    body: Any = None  # JSON (dict/list) or text body of an error; with 200, replaces the whole response
    headers: dict[str, str] = field(default_factory=dict)
    delay: float | None = None  # seconds before each delta frame (None → the server's ``delay``)
    stall: float = 0.0  # seconds of silence…
    stall_after: int = 0  # …after this many delta frames (0: headers sent, then nothing)
    cut_after: int | None = None  # close the connection after this many delta frames (no finish, no [DONE])
    malformed_after: int | None = None  # send a frame that is not JSON after this many delta frames
    error_after: int | None = None  # send an in-stream {"error": …} event after this many delta frames, end
    error: dict[str, Any] | None = None  # that event's error object
    choices_null: bool = False  # ModelScope's transient empty result: choices null, usage all 0
    raw: bytes | str | None = None  # a 200 text/event-stream body written verbatim
    framing: str = "chunked"  # "chunked" or "close" (no Transfer-Encoding; the body ends at EOF)
    drop: bool = False  # close the connection without answering at all
    wait: float = 0.0  # seconds of silence before anything, even the status line (a server that never starts)
    #: tool calls to stream: dicts with ``name``, ``arguments`` (JSON text) and optionally ``id``;
    #: each call's arguments arrive in ``tool_split`` pieces after a first fragment with id and name
    tool_calls: Sequence[dict[str, str]] = ()
    tool_split: int = 3
    #: Ollama-style: every call on index 0, told apart only by a new id
    tool_same_index: bool = False

    # -- builders ---------------------------------------------------------------------

    @classmethod
    def text(cls, *chunks: str, **kw: Any) -> FakeReply:
        """Stream these content chunks (no chunks: the default echo reply)."""
        return cls(chunks=list(chunks) if chunks else None, **kw)

    @classmethod
    def calls(cls, *calls: tuple[str, str] | dict[str, str], text: Sequence[str] = (), **kw: Any) -> FakeReply:
        """Ask for tool calls, ``(name, arguments JSON)`` or dicts (with an ``id``), after ``text``;
        ``finish_reason`` is ``tool_calls``."""
        items = [c if isinstance(c, dict) else {"name": c[0], "arguments": c[1]} for c in calls]
        items = [{"id": c.get("id") or f"call_{k}_{c['name']}", **c} for k, c in enumerate(items)]
        return cls(chunks=list(text), tool_calls=items, finish_reason="tool_calls", **kw)

    @classmethod
    def thinking(cls, reasoning: Sequence[str], chunks: Sequence[str], **kw: Any) -> FakeReply:
        """``reasoning_content`` deltas (with ``content: ""``), then the answer."""
        return cls(chunks=list(chunks), reasoning=list(reasoning), **kw)

    @classmethod
    def error_response(cls, status: int, body: Any = None, headers: dict[str, str] | None = None) -> FakeReply:
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def auth_modelscope(cls, message: str = MS_AUTH_MESSAGE) -> FakeReply:
        """401 in ModelScope's plural ``errors`` envelope."""
        return cls.error_response(401, {"errors": {"message": message}, "request_id": "req-fake-401"})

    @classmethod
    def auth_openai(cls, message: str = "Incorrect API key provided.") -> FakeReply:
        return cls.error_response(
            401,
            {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}},
        )

    @classmethod
    def throttled(
        cls, retry_after: float | None = 1, *, ms: bool = False, message: str = "Request limit exceeded."
    ) -> FakeReply:
        """429 throttling (ModelScope body); ``Retry-After`` in seconds, or ``retry-after-ms`` with ``ms``."""
        headers = {"modelscope-ratelimit-requests-remaining": "1500"}
        if retry_after is not None:
            if ms:
                headers["retry-after-ms"] = str(int(retry_after * 1000))
            else:
                headers["Retry-After"] = str(int(retry_after) if float(retry_after).is_integer() else retry_after)
        return cls.error_response(429, {"errors": {"message": message}, "request_id": "req-fake-429"}, headers)

    @classmethod
    def quota_modelscope(cls, message: str = "Request limit exceeded.") -> FakeReply:
        """429 with ``modelscope-ratelimit-requests-remaining: 0``: the daily quota is used up."""
        return cls.error_response(
            429,
            {"errors": {"message": message}, "request_id": "req-fake-quota"},
            {
                "modelscope-ratelimit-requests-limit": "2000",
                "modelscope-ratelimit-requests-remaining": "0",
                "Retry-After": "1",
            },
        )

    @classmethod
    def quota_openai(cls, message: str = "You exceeded your current quota, please check your plan.") -> FakeReply:
        return cls.error_response(
            429,
            {"error": {"message": message, "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}},
        )

    @classmethod
    def server_error(
        cls, status: int = 500, message: str = "The server had an error processing your request."
    ) -> FakeReply:
        return cls.error_response(status, {"error": {"message": message, "type": "server_error", "code": None}})

    @classmethod
    def context_length(cls, message: str = "This model's maximum context length is 8192 tokens.") -> FakeReply:
        return cls.error_response(
            400,
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
        )

    @classmethod
    def silent(cls, seconds: float) -> FakeReply:
        """Say nothing for ``seconds``, not even the status line (a timeout before the first byte)."""
        return cls(wait=seconds)

    @classmethod
    def stall_reply(cls, seconds: float, after: int = 0, **kw: Any) -> FakeReply:
        return cls(stall=seconds, stall_after=after, **kw)

    @classmethod
    def cut(cls, after: int = 2, chunks: Sequence[str] = ("one ", "two ", "three ", "four"), **kw: Any) -> FakeReply:
        return cls(chunks=list(chunks), cut_after=after, **kw)

    @classmethod
    def malformed(cls, after: int = 1, chunks: Sequence[str] = ("one ", "two ", "three"), **kw: Any) -> FakeReply:
        return cls(chunks=list(chunks), malformed_after=after, **kw)

    @classmethod
    def stream_error(cls, message: str = "upstream model failed", after: int = 1, **kw: Any) -> FakeReply:
        kw.setdefault("chunks", ["one ", "two ", "three"])
        return cls(
            error_after=after, error={"message": message, "type": "server_error", "code": "internal_error"}, **kw
        )

    @classmethod
    def empty(cls) -> FakeReply:
        """``choices: null`` with zero usage (ModelScope's transient empty result)."""
        return cls(choices_null=True)

    @classmethod
    def raw_sse(cls, body: bytes | str, **kw: Any) -> FakeReply:
        return cls(raw=body, **kw)


ReplySource = FakeReply | Callable[[Recorded], FakeReply]


def _last_user_text(messages: Sequence[Any]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return "" if content is None else str(content)
    return ""


def split_text(text: str, pieces: int = 4) -> list[str]:
    """Split ``text`` into at most ``pieces`` chunks at spaces; joining them gives ``text`` back."""
    words = text.split(" ")
    if len(words) <= 1:
        return [text]
    n = min(pieces, len(words))
    size = -(-len(words) // n)
    out = []
    for i in range(0, len(words), size):
        part = " ".join(words[i : i + size])
        out.append(part if i == 0 else " " + part)
    return out


def _words(text: Any) -> int:
    return len(str(text or "").split())


def _is_wide(code: int) -> bool:
    return (
        0x2E80 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF
        or 0x20000 <= code <= 0x2FFFF
    )


def estimate_tokens(text: str) -> int:
    """The same estimate as ``memchat.tokens.estimate_tokens`` (this module stays stdlib-only):
    one token per CJK character, one per four bytes of other text, never 0 for non-empty text."""
    if not text:
        return 0
    wide = other = 0
    for ch in text:
        code = ord(ch)
        if _is_wide(code):
            wide += 1
        else:
            other += len(ch.encode("utf-8")) if code > 0x7F else 1
    return max(1, wide + -(-other // 4))


def context_tokens(messages: Sequence[Any]) -> int:
    """Tokens a request's messages come to, as the server counts them: the estimate of each
    message's text plus 4 for its template markers."""
    total = 0
    for m in messages:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        total += estimate_tokens("" if content is None else str(content)) + 4
    return total


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except _IO_ERRORS:
            pass
        self.server.fake._track(self.connection, False)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            self.server.fake._dispatch(self, method, raw)
        except _IO_ERRORS:
            self.close_connection = True

    # -- writing ----------------------------------------------------------------------

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        body = obj.encode() if isinstance(obj, str) else obj if isinstance(obj, bytes) else _dumps(obj)
        self.send_response(status)
        ctype = "text/plain; charset=utf-8" if isinstance(obj, str | bytes) else "application/json"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024  # the load benchmark opens hundreds of connections at once
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _IO_ERRORS):
            return  # the client went away (closed a pooled connection, timed out): not news
        super().handle_error(request, client_address)


class FakeServer:
    """The fake server. Thread-safe; ``start()`` before use, ``close()`` after."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        delay: float = 0.0,
        reply: str | None = None,
        models: Iterable[str] = ("fake/model-a", "fake/model-b"),
        api_key: str | None = None,
    ) -> None:
        self.host = host
        self.delay = delay  # default seconds before each delta frame
        self.default_reply = reply  # fixed reply text instead of the echo
        self.models = list(models)
        self.api_key = api_key  # when set, requests without this Bearer token get a ModelScope 401
        #: when set, chat requests longer than this (``context_tokens``) get a 400 context_length_exceeded
        self.max_context_tokens: int | None = None
        #: unscripted requests that offer ``now`` and ask the date get a tool call (``_tool_model``)
        self.tool_model = False
        #: answer as this server does where it tells its context window (``window`` tokens):
        #: "llama.cpp" (``GET /props``), "vllm" (``max_model_len`` in ``/v1/models``), "ollama"
        #: (``POST /api/show``, with ``num_ctx`` set when ``window`` is); None: it says nothing
        self.serves_like: str | None = None
        self.window: int | None = None
        self._defaults = (delay, reply, list(self.models), api_key)
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._scripts: dict[str, deque[ReplySource]] = {"chat": deque(), "models": deque()}
        self._abort = threading.Event()
        self._conns: set[socket.socket] = set()
        #: connections accepted since the last ``reset`` (also those that never sent a valid request,
        #: such as a TLS handshake sent to this plain-HTTP port)
        self.connections = 0
        self._seq = 0
        self._created = int(time.time())
        self._httpd = _HTTPServer((host, port), _Handler, bind_and_activate=True)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    # -- life -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, ending in ``/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fakeserver", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        self._abort.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scripting and records --------------------------------------------------------

    def script(self, *replies: ReplySource, endpoint: str = "chat") -> None:
        """Queue replies, one per request, for ``chat`` (completions) or ``models``.

        A reply is a ``FakeReply`` or a callable ``(Recorded) -> FakeReply``.
        """
        with self._lock:
            self._scripts[endpoint].extend(replies)

    enqueue = script

    @property
    def pending(self) -> int:
        """Scripted chat replies not yet used."""
        with self._lock:
            return len(self._scripts["chat"])

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def last(self) -> Recorded:
        with self._lock:
            return self._requests[-1]

    def reset(self) -> None:
        """Forget requests and scripts, end any stall in progress, restore the defaults."""
        with self._lock:
            self._requests.clear()
            self.connections = 0
            for q in self._scripts.values():
                q.clear()
            old, self._abort = self._abort, threading.Event()
        old.set()
        delay, reply, models, api_key = self._defaults
        self.delay, self.default_reply, self.models, self.api_key = delay, reply, list(models), api_key
        self.max_context_tokens = None
        self.tool_model = False
        self.serves_like = None
        self.window = None

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
                self.connections += 1
            else:
                self._conns.discard(conn)

    def _next(self, endpoint: str) -> ReplySource | None:
        with self._lock:
            q = self._scripts[endpoint]
            return q.popleft() if q else None

    # -- serving ----------------------------------------------------------------------

    def _dispatch(self, h: _Handler, method: str, raw: bytes) -> None:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in h.headers.items()}
        peer = (h.client_address[0], h.client_address[1])
        rec = Recorded(method, h.path, headers, body, raw, peer, time.monotonic())
        with self._lock:
            self._requests.append(rec)
            abort = self._abort
        path = urlsplit(h.path).path.rstrip("/")
        if self.api_key is not None and h.headers.get("Authorization") != f"Bearer {self.api_key}":
            r = FakeReply.auth_modelscope()
            h.send_json(r.status, r.body)
        elif method == "POST" and path.endswith("/chat/completions"):
            self._chat(h, rec, abort)
        elif method == "GET" and path.endswith("/models"):
            self._models(h, rec)
        elif method == "GET" and path == "/props" and self.serves_like == "llama.cpp":
            h.send_json(200, {"default_generation_settings": {"n_ctx": self.window}, "total_slots": 1})
        elif method == "POST" and path == "/api/show" and self.serves_like == "ollama":
            parameters = f'num_ctx                        {self.window}\nstop "<|eot_id|>"' if self.window else ""
            h.send_json(200, {"parameters": parameters, "model_info": {"llama.context_length": 131072}})
        else:
            h.send_json(404, {"error": {"message": f"no route {method} {path}", "type": "not_found", "code": None}})

    def _resolve(self, endpoint: str, rec: Recorded) -> FakeReply | None:
        src = self._next(endpoint)
        if src is None or isinstance(src, FakeReply):
            return src
        return src(rec)

    @staticmethod
    def _tool_model(req: dict[str, Any]) -> FakeReply | None:
        """A model that uses the ``now`` tool when offered and asked about the date or time, and
        answers from the tool's result: enough to try tool calling by hand (``--tool-model``)."""
        messages = [m for m in req.get("messages") or [] if isinstance(m, dict)]
        if not messages:
            return None
        last = messages[-1]
        if last.get("role") == "tool":
            try:
                now = json.loads(str(last.get("content") or ""))
                return FakeReply.text(
                    f"Today is {now['weekday']}, {now['date']}; it is {now['time']} ({now['timezone']})."
                )
            except (ValueError, KeyError, TypeError):
                return FakeReply.text(f"The tool said: {last.get('content')}")
        offered = {t.get("function", {}).get("name") for t in req.get("tools") or [] if isinstance(t, dict)}
        question = str(last.get("content") or "").lower()
        asks_time = any(w in question for w in ("day", "date", "time", "几号", "星期", "日期", "几点"))
        if "now" in offered and last.get("role") == "user" and asks_time:
            return FakeReply.calls(("now", "{}"))
        return None

    def _models(self, h: _Handler, rec: Recorded) -> None:
        reply = self._resolve("models", rec)
        if reply is not None and (reply.status != 200 or reply.body is not None):
            h.send_json(reply.status, reply.body, reply.headers)
            return
        data: list[dict[str, Any]] = [
            {"id": m, "object": "model", "created": self._created, "owned_by": "fake"} for m in self.models
        ]
        if self.serves_like == "vllm":
            data = [{**m, "max_model_len": self.window} for m in data]
        h.send_json(200, {"object": "list", "data": data})

    def _chat(self, h: _Handler, rec: Recorded, abort: threading.Event) -> None:
        limit = self.max_context_tokens
        if limit is not None and (used := context_tokens(rec.messages)) > limit:
            r = FakeReply.context_length(
                f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
                f"{used} tokens. Please reduce the length of the messages."
            )
            h.send_json(r.status, r.body, r.headers)
            return
        req = rec.body if isinstance(rec.body, dict) else {}
        reply = self._resolve("chat", rec) or (self._tool_model(req) if self.tool_model else None) or FakeReply()
        if reply.wait and abort.wait(reply.wait):
            h.close_connection = True
            return
        if reply.drop:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.status != 200 or (reply.body is not None and reply.raw is None):
            h.send_json(reply.status, reply.body if reply.body is not None else "", reply.headers)
            return
        chunks = list(reply.chunks) if reply.chunks is not None else self._default_chunks(req)
        model = str(req.get("model") or "fake-model")
        with self._lock:
            self._seq += 1
            cid = f"chatcmpl-fake-{self._seq}"
        usage = reply.usage or {
            "prompt_tokens": sum(
                _words(m.get("content")) + 1 for m in req.get("messages") or [] if isinstance(m, dict)
            ),
            "completion_tokens": len(chunks) + len(reply.reasoning),
        }
        usage = {**usage, "total_tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)}
        if not req.get("stream"):
            self._plain(h, reply, cid, model, chunks, usage)
            return
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        self._stream(h, reply, cid, model, chunks, usage, include_usage, abort)

    def _default_chunks(self, req: dict[str, Any]) -> list[str]:
        text = (
            self.default_reply
            if self.default_reply is not None
            else "echo: " + _last_user_text(req.get("messages") or [])
        )
        return split_text(text)

    def _plain(
        self, h: _Handler, reply: FakeReply, cid: str, model: str, chunks: list[str], usage: dict[str, int]
    ) -> None:
        if reply.choices_null:
            body: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion",
                "created": self._created,
                "model": model,
                "choices": None,
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
        else:
            message: dict[str, Any] = {"role": "assistant", "content": "".join(chunks) or None}
            if reply.reasoning:
                message["reasoning_content"] = "".join(reply.reasoning)
            if reply.tool_calls:
                message["tool_calls"] = [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in reply.tool_calls
                ]
            elif message["content"] is None:
                message["content"] = ""
            choice = {"index": 0, "message": message, "finish_reason": reply.finish_reason}
            body = {
                "id": cid,
                "object": "chat.completion",
                "created": self._created,
                "model": model,
                "choices": [choice],
                "usage": usage,
            }
        h.send_json(200, body, reply.headers)

    def _stream(
        self,
        h: _Handler,
        reply: FakeReply,
        cid: str,
        model: str,
        chunks: list[str],
        usage: dict[str, int],
        include_usage: bool,
        abort: threading.Event,
    ) -> None:
        chunked = reply.framing == "chunked"
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream; charset=utf-8")
        h.send_header("Cache-Control", "no-cache")
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Connection", "close")
            h.close_connection = True
        for k, v in reply.headers.items():
            h.send_header(k, v)
        h.end_headers()

        def write(data: bytes) -> None:
            if data:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)

        def end() -> None:
            if chunked:
                h.wfile.write(b"0\r\n\r\n")

        if reply.raw is not None:
            write(reply.raw.encode() if isinstance(reply.raw, str) else reply.raw)
            end()
            return

        head_b = (
            f'data: {{"id":"{cid}","object":"chat.completion.chunk","created":{self._created},'
            f'"model":{json.dumps(model)},"choices":'
        ).encode()

        def frame(choices: Any, usage_obj: Any = None) -> bytes:
            return head_b + _dumps(choices) + b',"usage":' + _dumps(usage_obj) + b"}\n\n"

        # (kind, bytes): "head" opening frame, "delta" counted frames, "tail" finish/usage/[DONE]
        items: list[tuple[str, bytes]] = []
        if reply.choices_null:
            zero = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            items.append(("tail", frame(None, zero)))
        else:
            items.append(
                ("head", frame([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]))
            )
            for r in reply.reasoning:
                delta = {"content": "", "reasoning_content": r}
                items.append(("delta", frame([{"index": 0, "delta": delta, "finish_reason": None}])))
            for c in chunks:
                delta2: dict[str, Any] = {"content": c}
                if reply.reasoning:
                    delta2["reasoning_content"] = None
                items.append(("delta", frame([{"index": 0, "delta": delta2, "finish_reason": None}])))
            for k, call in enumerate(reply.tool_calls):
                index = 0 if reply.tool_same_index else k
                first = {"index": index, "id": call["id"], "type": "function"}
                first["function"] = {"name": call["name"], "arguments": ""}
                items.append(("delta", frame([{"index": 0, "delta": {"tool_calls": [first]}, "finish_reason": None}])))
                args, n = call["arguments"], max(1, reply.tool_split)
                size = -(-len(args) // n) or 1
                for piece in (args[i : i + size] for i in range(0, len(args), size)):
                    more = {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                    items.append(("delta", frame([{"index": 0, "delta": more, "finish_reason": None}])))
            items.append(("tail", frame([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}])))
            if include_usage and not reply.omit_usage:
                items.append(("tail", frame([], usage)))
        items.append(("tail", b"data: [DONE]\n\n"))

        delay = self.delay if reply.delay is None else reply.delay
        simple = not (
            delay
            or reply.stall
            or reply.cut_after is not None
            or reply.malformed_after is not None
            or reply.error_after is not None
        )
        if simple:  # one write: the fast path the benchmark takes
            write(b"".join(data for _, data in items))
            end()
            return

        sent = 0
        stalled = malformed = errored = False
        for kind, data in items:
            if reply.stall and not stalled and sent == reply.stall_after:
                stalled = True
                if abort.wait(reply.stall):
                    h.close_connection = True
                    return
            if reply.cut_after is not None and sent == reply.cut_after:
                h.close_connection = True
                return
            if reply.malformed_after is not None and not malformed and sent == reply.malformed_after:
                malformed = True
                write(b'data: {"id":"' + cid.encode() + b'","choices":[{"index":0,"delta":{"content":"x"\n\n')
            if reply.error_after is not None and not errored and sent == reply.error_after:
                errored = True
                write(b"data: " + _dumps({"error": reply.error or {"message": "error"}}) + b"\n\n")
                write(b"data: [DONE]\n\n")
                end()
                return
            if kind == "delta":
                if delay:
                    time.sleep(delay)
                sent += 1
            write(data)
        end()


def refused_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible server (prints its base URL first).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="milliseconds before each streamed chunk")
    parser.add_argument("--reply", default=None, help="fixed reply text (default: echo of the last user message)")
    parser.add_argument("--model", action="append", default=None, help="a model id for /v1/models (repeatable)")
    parser.add_argument("--api-key", default=None, help="require this Bearer token (else 401)")
    parser.add_argument(
        "--max-context-tokens", type=int, default=None, help="refuse longer requests (400 context_length_exceeded)"
    )
    parser.add_argument("--tool-model", action="store_true", help="call the now tool when asked the date")
    args = parser.parse_args(argv)
    server = FakeServer(
        args.host,
        args.port,
        delay=args.delay_ms / 1000.0,
        reply=args.reply,
        models=args.model or ("fake/model-a", "fake/model-b"),
        api_key=args.api_key,
    )
    server.max_context_tokens = args.max_context_tokens
    server.tool_model = args.tool_model

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    sys.stdout.write(server.url + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
