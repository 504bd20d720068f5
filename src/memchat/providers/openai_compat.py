"""Any OpenAI-compatible chat-completions server (ModelScope, OpenAI, DeepSeek, vLLM, Ollama…).

Speaks the wire protocol with httpx directly (the openai SDK costs too much start-up time):
``POST {base_url}/chat/completions`` with ``stream: true`` and
``stream_options: {"include_usage": true}``, read as Server-Sent Events, and
``GET {base_url}/models``. HTTP failures become ``memchat.errors`` with the server's own
message as ``detail``; connect errors, 5xx and short throttling 429s are retried a few times,
but only before the first token arrived. The API key never appears in an error or a repr.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import ssl  # loaded by httpx already
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from memchat.providers._httpx import httpx

if TYPE_CHECKING:  # asyncio is imported where it is used: the sync path never pays ~35 ms for it
    import asyncio

from memchat import __version__
from memchat.domain import Chunk, ToolCallDelta, Usage
from memchat.errors import (
    BadRequest,
    ContextLengthExceeded,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ServerError,
    StreamError,
)
from memchat.providers.base import ChatOptions, Provider, StoredWire, WireMessage
from memchat.providers.http_errors import status_error
from memchat.providers.sse import Event, SSEDecoder
from memchat.providers.windows import WindowBook, ask_server, window_in_error
from memchat.tokens import estimate_tokens

__all__ = ["OpenAICompatible"]

#: a throttled 429 asking to wait longer than this is raised at once, not slept through
MAX_RETRY_AFTER = 10.0
#: longest pause between two attempts
MAX_BACKOFF = 8.0
#: streams open at once to the server, per event loop (a server's turns); more wait their turn,
#: in order, for a free one (as httpx's pool made them wait, but at no cost: hundreds of requests
#: queued in the pool made every connection that freed scan them all). The pool keeps as many
#: connections alive between turns
MAX_STREAMS = 100

#: stored messages' JSON kept for the next call (``StoredWire``); beyond it the memo starts again
ENCODED_KEPT = 20_000

#: what this process learned of servers' windows (a factory may give a provider a book kept on disk)
_PROCESS_WINDOWS = WindowBook()


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


#: close() called inside the loop schedules aclose(); keep the tasks alive until they finish
_CLOSING: set[asyncio.Task[None]] = set()


#: the ``ChatOptions`` sent to the API as they are, when set
PASSED_OPTIONS = (
    "max_tokens",
    "temperature",
    "top_p",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "logit_bias",
)


class OpenAICompatible(Provider):
    """A chat model behind an OpenAI-compatible HTTP API.

    ``timeout`` bounds every read (so a stream that stalls that long fails with
    ``ProviderTimeout``); ``connect_timeout`` bounds connecting. ``max_retries`` extra
    attempts are made, ``backoff`` seconds apart at first, doubling, with jitter.
    ``transport`` (an httpx transport, e.g. ``httpx.MockTransport``) replaces the network;
    ``extra_body`` adds top-level JSON fields (``{"enable_thinking": False}``).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str = "",
        *,
        name: str = "compat",
        context_window: int | None = None,
        timeout: float | None = 60.0,
        connect_timeout: float | None = 10.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        extra_body: Mapping[str, Any] | None = None,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        ask_window: bool = True,
        windows: WindowBook | None = None,
        max_streams: int = MAX_STREAMS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = name
        self.context_window = context_window
        self.supports_tools = True
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.extra_body = dict(extra_body or {})
        self._api_key = api_key or None
        #: ask the server for its context window (llama.cpp, vLLM, Ollama say it; hosted APIs do not)
        self.ask_window = ask_window
        self._windows = windows if windows is not None else _PROCESS_WINDOWS
        self._transport = transport
        self._headers = {
            "Accept": "text/event-stream, application/json",
            "User-Agent": f"memchat/{__version__}",
            **(headers or {}),
        }
        if self._api_key:
            self._headers["Authorization"] = f"Bearer {self._api_key}"
        self._lock = threading.Lock()
        #: id → (a ``StoredWire`` message, its JSON): a stored message is encoded once, not every turn
        self._encoded: dict[int, tuple[WireMessage, bytes]] = {}
        self._client: httpx.Client | None = None
        self._aclients: dict[asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, AsyncGenerator[None, None]]] = {}
        #: streams open at once per event loop (``MAX_STREAMS``), and their semaphores
        self.max_streams = max(1, max_streams)
        self._slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    @property
    def has_key(self) -> bool:
        return self._api_key is not None

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return f"OpenAICompatible(name={self.name!r}, base_url={self.base_url!r}, model={self.model!r}, api_key={key})"

    # -- clients ----------------------------------------------------------------------

    @property
    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=self.connect_timeout)

    def _verify(self) -> bool:
        """False for a plain-http endpoint reached without an https proxy: no TLS handshake can
        happen there, and skipping the CA bundle saves ~30 ms of start-up (local servers)."""
        if not self.base_url.lower().startswith("http://"):
            return True
        proxies = ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
        return any(os.environ.get(n, "").lower().startswith("https://") for n in proxies)

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                transport = self._transport if isinstance(self._transport, httpx.BaseTransport) else None
                self._client = httpx.Client(
                    headers=self._headers, timeout=self._timeout, transport=transport, verify=self._verify()
                )
            return self._client

    async def _async_client(self) -> httpx.AsyncClient:
        """The pooled async client of the running event loop.

        An ``httpx.AsyncClient`` belongs to one loop. Each gets a keeper: a started async
        generator the loop tracks, so that ``asyncio.run`` (or any ``Runner``) closes the
        client's connections in ``shutdown_asyncgens`` before the loop closes.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._aclients.get(loop)
            if entry is not None:
                return entry[0]
            for old in [lp for lp in self._aclients if lp.is_closed()]:
                del self._aclients[old]
                self._slots.pop(old, None)
            transport = self._transport if isinstance(self._transport, httpx.AsyncBaseTransport) else None
            limits = httpx.Limits(max_connections=self.max_streams, max_keepalive_connections=self.max_streams)
            client = httpx.AsyncClient(
                headers=self._headers, timeout=self._timeout, transport=transport, verify=self._verify(), limits=limits
            )
            keeper = _close_with_loop(client)
            self._aclients[loop] = (client, keeper)
        await keeper.__anext__()
        return client

    async def aprepare(self) -> None:
        """The loop's connection pool, made now (httpx loads its transport then: ~20 modules)."""
        await self._async_client()

    def close(self) -> None:
        """Close the connections. An async client is closed here when its loop is idle or runs
        in another thread; inside the loop itself prefer ``await provider.aclose()``."""
        with self._lock:
            client, self._client = self._client, None
            aclients, self._aclients = self._aclients, {}
        if client is not None:
            client.close()
        for loop, (_, keeper) in aclients.items():
            if loop.is_closed():
                continue
            with contextlib.suppress(RuntimeError):
                if not loop.is_running():
                    loop.run_until_complete(keeper.aclose())
                elif _running_loop() is loop:
                    task = loop.create_task(keeper.aclose())
                    _CLOSING.add(task)
                    task.add_done_callback(_CLOSING.discard)
                else:
                    import asyncio

                    asyncio.run_coroutine_threadsafe(keeper.aclose(), loop).result(5)

    async def aclose(self) -> None:
        """Close the connections, from inside the event loop that used ``astream``."""
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._aclients.pop(loop, None)
        if entry is not None:
            await entry[1].aclose()
        self.close()

    # -- requests ---------------------------------------------------------------------

    def _payload(self, messages: Sequence[WireMessage], model: str | None, options: ChatOptions | None) -> bytes:
        body: dict[str, Any] = {}
        chosen = model or self.model
        if chosen:
            body["model"] = chosen
        body["messages"] = []  # its place among the keys: encoded apart (``_messages_json``)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        if options is not None:
            for key in PASSED_OPTIONS:
                value = getattr(options, key)
                if value is not None:
                    body[key] = list(value) if isinstance(value, tuple) else value
            if options.tools:
                body["tools"] = list(options.tools)
                for key in ("tool_choice", "parallel_tool_calls"):  # only with tools (else a 400)
                    if getattr(options, key) is not None:
                        body[key] = getattr(options, key)
        if self.extra_body:
            body.update(self.extra_body)
        if "messages" in (self.extra_body or {}):  # the caller's own, as sent before
            return _dumps(body)
        head, tail = _dumps(body).split(b'"messages":[]', 1)
        return head + b'"messages":' + self._messages_json(messages) + tail

    def _messages_json(self, messages: Sequence[WireMessage]) -> bytes:
        """The messages as a JSON array. A ``StoredWire`` (a stored message, sent again every turn)
        is encoded once and its bytes reused; with the whole history each turn, encoding it again
        was the largest part of a turn's own time (~1.5 ms at 2,000 messages)."""
        memo = self._encoded
        if len(memo) > ENCODED_KEPT:
            memo.clear()
        parts = []
        for m in messages:
            if type(m) is not StoredWire:
                parts.append(_dumps(m))
                continue
            kept = memo.get(id(m))
            if kept is None or kept[0] is not m:  # (the memo holds the message: its id is not reused)
                kept = memo[id(m)] = (m, _dumps(m))
            parts.append(kept[1])
        return b"[" + b",".join(parts) + b"]"

    def _request(
        self, client: httpx.Client | httpx.AsyncClient, method: str, path: str, content: bytes | None
    ) -> httpx.Request:
        headers = {"Content-Type": "application/json"} if content is not None else None
        return client.build_request(method, self.base_url + path, content=content, headers=headers)

    def _delay(self, exc: ProviderError, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``exc``, or None to raise it."""
        if attempt >= self.max_retries:
            return None
        if isinstance(exc, RateLimited):
            if exc.quota:
                return None
            if exc.retry_after is not None:
                return None if exc.retry_after > MAX_RETRY_AFTER else max(0.0, exc.retry_after)
        elif not isinstance(exc, ProviderUnavailable | ServerError):
            return None
        return min(MAX_BACKOFF, self.backoff * 2.0**attempt) * random.uniform(0.75, 1.0)

    def _send(self, client: httpx.Client, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = client.send(request, stream=True)
            except httpx.HTTPError as exc:
                err = self._transport_error(exc)
                wait = self._delay(err, attempt)
                if wait is None:
                    raise err from exc
            else:
                if response.is_success:
                    return response
                try:
                    response.read()
                except httpx.HTTPError:
                    pass
                finally:
                    response.close()
                err = self._status_error(response)
                wait = self._delay(err, attempt)
                if wait is None:
                    raise err
            attempt += 1
            time.sleep(wait)

    async def _asend(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                err = self._transport_error(exc)
                wait = self._delay(err, attempt)
                if wait is None:
                    raise err from exc
            else:
                if response.is_success:
                    return response
                try:
                    await response.aread()
                except httpx.HTTPError:
                    pass
                finally:
                    await response.aclose()
                err = self._status_error(response)
                wait = self._delay(err, attempt)
                if wait is None:
                    raise err
            attempt += 1
            import asyncio

            await asyncio.sleep(wait)

    # -- the server's window -------------------------------------------------------------

    def served_window(self, model: str | None = None) -> int | None:
        """The context window the server says it serves ``model`` with (asked once, then kept
        per base URL and model; concurrent callers share one question), or what its context-length
        error said; None when it says nothing."""
        chosen = model or self.model
        if not self.ask_window:
            return self._windows.get(self.base_url, chosen)[1]
        transport = self._transport if isinstance(self._transport, httpx.BaseTransport) else None
        return self._windows.answer(
            self.base_url, chosen, lambda: ask_server(self.base_url, chosen, self._headers, transport=transport)
        )

    def _learn_window(self, exc: ProviderError, model: str | None) -> ProviderError:
        """A context-length error that names the server's window: remember it, and say it."""
        if isinstance(exc, ContextLengthExceeded):
            window = window_in_error(exc.detail)
            if window is not None:
                self._windows.put(self.base_url, model or self.model, window)
                exc.info["context_window"] = window
        return exc

    def _probe_payload(self, messages: Sequence[WireMessage], model: str | None, options: ChatOptions | None) -> bytes:
        """The same request, not streamed and one token long: a server that sent an empty
        stream says why to this (llama-cpp-python's server answers 400 with its window)."""
        body = json.loads(self._payload(messages, model, options))
        body.pop("stream_options", None)
        body["stream"] = False
        body["max_tokens"] = 1
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    def _empty_stream(self, messages: Sequence[WireMessage], probe: httpx.Response | None) -> ProviderError:
        """The error for a 200 whose stream held nothing: the probe's own error when it failed
        (a context length learned), else one line naming the likely cause and the fix."""
        if probe is not None and not probe.is_success:
            return self._status_error(probe)
        size = sum(estimate_tokens(_text_of(m.get("content"))) for m in messages)
        return StreamError(
            f"the server answered with an empty reply; the conversation (about {size:,} tokens) may be longer "
            "than the server's context window: set --context-window (context_window in config.toml) to its size",
            status=200,
        )

    # -- streaming --------------------------------------------------------------------

    def stream(
        self,
        messages: Sequence[WireMessage],
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
    ) -> Iterator[Chunk]:
        client = self._sync_client()
        request = self._request(client, "POST", "/chat/completions", self._payload(messages, model, options))
        try:
            response = self._send(client, request)
        except ProviderError as exc:
            raise self._learn_window(exc, model) from exc.__cause__
        reader = _Reader(self, response)
        try:
            if not reader.is_sse:
                response.read()
                yield from reader.plain(response.content)
                return
            for data in response.iter_bytes():
                if not reader.done:  # after [DONE], read on to the body's end: the connection is reused
                    yield from reader.feed(data)
            if reader.empty:
                response.close()
                probe = None
                payload = self._probe_payload(messages, model, options)
                for _ in range(2):  # the server may drop the connection the empty stream came on
                    with contextlib.suppress(httpx.HTTPError):
                        probe = client.send(self._request(client, "POST", "/chat/completions", payload))
                        break
                raise self._learn_window(self._empty_stream(messages, probe), model)
            if not reader.done:
                yield from reader.end()
        except httpx.HTTPError as exc:
            tail = reader.broken(exc)
            if tail is None:
                raise reader.stream_error(exc) from exc
            yield from tail
        finally:
            response.close()

    async def _slot(self) -> asyncio.Semaphore:
        """A stream's place among the ``max_streams`` open at once on this loop, taken (waited for
        at most ``timeout`` seconds, as httpx waited for a free connection)."""
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            slots = self._slots.get(loop)
            if slots is None:
                slots = self._slots[loop] = asyncio.Semaphore(self.max_streams)
        if not slots.locked():
            await slots.acquire()
            return slots
        try:
            await asyncio.wait_for(slots.acquire(), self.timeout)
        except TimeoutError:
            raise ProviderTimeout(
                f"no free connection to {self._where()} within {self.timeout} s ({self.max_streams} streams open)"
            ) from None
        return slots

    async def astream(
        self,
        messages: Sequence[WireMessage],
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
    ) -> AsyncIterator[Chunk]:
        slots = await self._slot()
        stream = self._astream(messages, model=model, options=options)
        try:
            async for chunk in stream:
                yield chunk
        finally:
            try:
                await stream.aclose()  # the response closed now, as when the caller stops reading
            finally:
                slots.release()

    async def _astream(
        self,
        messages: Sequence[WireMessage],
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
    ) -> AsyncGenerator[Chunk, None]:
        client = await self._async_client()
        request = self._request(client, "POST", "/chat/completions", self._payload(messages, model, options))
        try:
            response = await self._asend(client, request)
        except ProviderError as exc:
            raise self._learn_window(exc, model) from exc.__cause__
        reader = _Reader(self, response)
        try:
            if not reader.is_sse:
                await response.aread()
                for chunk in reader.plain(response.content):
                    yield chunk
                return
            async for data in response.aiter_bytes():
                if not reader.done:  # after [DONE], read on to the body's end: the connection is reused
                    for chunk in reader.feed(data):
                        yield chunk
            if reader.empty:
                await response.aclose()
                probe = None
                payload = self._probe_payload(messages, model, options)
                for _ in range(2):  # the server may drop the connection the empty stream came on
                    with contextlib.suppress(httpx.HTTPError):
                        probe = await client.send(self._request(client, "POST", "/chat/completions", payload))
                        break
                raise self._learn_window(self._empty_stream(messages, probe), model)
            if not reader.done:
                for chunk in reader.end():
                    yield chunk
        except httpx.HTTPError as exc:
            tail = reader.broken(exc)
            if tail is None:
                raise reader.stream_error(exc) from exc
            for chunk in tail:
                yield chunk
        finally:
            await response.aclose()

    def list_models(self) -> list[str]:
        """Model ids from ``GET /models`` (ModelScope answers it even without a valid key)."""
        client = self._sync_client()
        response = self._send(client, self._request(client, "GET", "/models", None))
        try:
            response.read()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        finally:
            response.close()
        try:
            data = json.loads(response.content)
        except ValueError as exc:
            raise BadRequest(self._scrub(f"GET /models did not return JSON: {response.text[:200]}")) from exc
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            return []
        ids = [str(m.get("id")) if isinstance(m, dict) else str(m) for m in items]
        return [i for i in ids if i and i != "None"]

    # -- error mapping ----------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        if self._api_key and self._api_key in text:
            text = text.replace(self._api_key, "***")
        return text

    def _where(self) -> str:
        url = httpx.URL(self.base_url)
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{url.host}{port}"

    def _transport_error(self, exc: httpx.HTTPError) -> ProviderError:
        """An error raised before a response arrived."""
        reason = self._scrub(_reason(exc))
        if isinstance(exc, httpx.ConnectTimeout):
            return ProviderUnavailable(f"timed out connecting to {self._where()} after {self.connect_timeout} s")
        if isinstance(exc, httpx.TimeoutException):
            return ProviderTimeout(f"no answer from {self._where()} within {self.timeout} s ({reason})")
        if isinstance(exc, httpx.ConnectError | httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return ProviderUnavailable(f"cannot connect to {self._where()}: {reason}")
        if isinstance(exc, httpx.TransportError):
            return ProviderUnavailable(f"cannot reach {self._where()}: {reason}")
        return ProviderError(f"request to {self._where()} failed: {reason}")

    def _status_error(self, response: httpx.Response) -> ProviderError:
        """The ``memchat.errors`` exception for a non-2xx response; a 404 from a base URL with
        no version in its path says that ``/v1`` is probably missing."""
        err = status_error(response, self._scrub)
        path = httpx.URL(self.base_url).path.rstrip("/")
        if response.status_code == 404 and not re.search(r"/v\d+[a-z]*$", path) and "model" not in err.detail.lower():
            err.detail += f" (is /v1 missing from the base URL? try {self.base_url}/v1)"
            err.args = (err.detail,)
        return err


class _Reader:
    """Turns the bytes of one streamed response into ``Chunk`` objects (shared by sync and async)."""

    __slots__ = ("_decoder", "_provider", "_status", "done", "events", "finished", "is_sse")

    def __init__(self, provider: OpenAICompatible, response: httpx.Response) -> None:
        self._provider = provider
        self._decoder = SSEDecoder()
        self._status = response.status_code
        ctype = response.headers.get("content-type", "").lower()
        self.is_sse = "json" not in ctype  # SSE unless the server plainly answered with JSON
        self.done = False  # [DONE] seen
        self.finished = False  # a finish_reason seen
        self.events = 0  # events with data seen

    @property
    def empty(self) -> bool:
        """The body ended without a single event (llama-cpp-python's server, when the prompt
        exceeds its window: the error happens after the 200 and is lost)."""
        return not (self.events or self.done or self._decoder.pending)

    def feed(self, data: bytes) -> list[Chunk]:
        out: list[Chunk] = []
        for event in self._decoder.feed(data):
            self._event(event, out)
            if self.done:
                break
        return out

    def end(self) -> list[Chunk]:
        """The stream closed; what was left, or ``StreamError`` if it was cut short."""
        out: list[Chunk] = []
        for event in self._decoder.flush():
            if not self.done:
                self._event(event, out)
        if not self.done and not self.finished:
            raise StreamError("the connection closed before the reply was complete", status=self._status)
        return out

    def broken(self, exc: httpx.HTTPError) -> list[Chunk] | None:
        """The transport failed mid-body: the remaining chunks if the reply had already finished."""
        if not (self.finished or self.done):
            return None
        out: list[Chunk] = []
        with contextlib.suppress(ProviderError):
            for event in self._decoder.flush():
                if not self.done:
                    self._event(event, out)
        return out

    def stream_error(self, exc: httpx.HTTPError) -> ProviderError:
        p = self._provider
        if isinstance(exc, httpx.TimeoutException):
            return ProviderTimeout(f"the stream stalled: no data for {p.timeout} s", status=self._status)
        reason = p._scrub(str(exc)) or type(exc).__name__
        return StreamError(f"the connection was cut mid-reply ({reason})", status=self._status)

    def plain(self, body: bytes) -> list[Chunk]:
        """A non-streaming ``chat.completion`` body (a server that ignored ``stream``)."""
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            raise StreamError(f"the server sent a malformed response: {body[:200]!r}", status=self._status) from exc
        out: list[Chunk] = []
        if isinstance(data, dict):
            self._check_error(data)
            self._chunk(data, out, key="message")
        self.done = True
        return out

    def _event(self, event: Event, out: list[Chunk]) -> None:
        data = event.data.strip()
        if not data:
            return
        self.events += 1
        if data == "[DONE]":
            self.done = True
            return
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise StreamError(f"the server sent a malformed stream event: {data[:200]}", status=self._status) from exc
        if not isinstance(obj, dict):
            raise StreamError(f"the server sent an unexpected stream event: {data[:200]}", status=self._status)
        if event.event == "error" and "error" not in obj:
            obj = {"error": obj}
        self._check_error(obj)
        self._chunk(obj, out, key="delta")

    def _check_error(self, obj: dict[str, Any]) -> None:
        err = obj.get("error") or obj.get("errors")
        if not err:
            return
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("msg") or json.dumps(err, ensure_ascii=False))
            code = err.get("code")
        else:
            message, code = str(err), None
        info = {"code": code} if code else {}
        raise StreamError(self._provider._scrub(message), status=self._status, **info)

    def _chunk(self, obj: dict[str, Any], out: list[Chunk], *, key: str) -> None:
        text = reasoning = ""
        finish: str | None = None
        deltas: tuple[ToolCallDelta, ...] = ()
        choices = obj.get("choices")
        if isinstance(choices, list) and choices:
            choice = next(
                (c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0),
                choices[0] if isinstance(choices[0], dict) else {},
            )
            delta = choice.get(key) or choice.get("delta") or {}
            if isinstance(delta, dict):
                content = delta.get("content")
                text = content if isinstance(content, str) else ""
                thought = delta.get("reasoning_content") or delta.get("reasoning")
                reasoning = thought if isinstance(thought, str) else ""
                calls = delta.get("tool_calls")
                if isinstance(calls, list):
                    deltas = tuple(d for d in map(_tool_delta, calls, range(len(calls))) if d is not None)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason and reason != "null":
                finish = reason
                self.finished = True
        raw_usage = obj.get("usage")
        usage = Usage.from_dict(raw_usage) if isinstance(raw_usage, dict) else None
        if text or reasoning or finish or usage is not None or deltas:
            out.append(Chunk(text=text, reasoning=reasoning, usage=usage, finish_reason=finish, tool_deltas=deltas))


def _tool_delta(raw: Any, position: int) -> ToolCallDelta | None:
    """One ``tool_calls`` item of a delta (or of a whole message, where there is no index)."""
    if not isinstance(raw, dict):
        return None
    fn: dict[str, Any] = raw["function"] if isinstance(raw.get("function"), dict) else {}
    index = raw.get("index")
    args = fn.get("arguments")
    if isinstance(args, dict | list):  # some servers send the arguments as an object
        args = json.dumps(args, ensure_ascii=False)
    return ToolCallDelta(
        index=index if isinstance(index, int) else position,
        id=raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else None,
        name=fn.get("name") if isinstance(fn.get("name"), str) and fn.get("name") else None,
        arguments=args if isinstance(args, str) else "",
    )


def _reason(exc: BaseException) -> str:
    """What went wrong, in words: the async transport says only "All connection attempts failed"
    and keeps the cause (connection refused, network unreachable…) in the exception's chain."""
    text = str(exc) or type(exc).__name__
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno and not isinstance(cause, ssl.SSLError):
            # errno for the socket's errors; DNS errors (negative) carry their own words; an SSL
            # error's number is OpenSSL's, not errno (and its text says it all)
            why = os.strerror(cause.errno) if cause.errno > 0 else str(cause.strerror or "")
            return text if why.lower() in text.lower() else f"{text} ({why})"
        cause = cause.__cause__ or cause.__context__
    return text


async def _close_with_loop(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _text_of(content: Any) -> str:
    """The text of a message's ``content``: a string, or the text parts of a list of parts."""
    if isinstance(content, list):
        return " ".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return str(content or "")
