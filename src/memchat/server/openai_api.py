"""A stateful OpenAI-compatible endpoint: any OpenAI client gets memchat's memory by changing its
base URL. A client that names the session (header ``X-Memchat-Session`` or ``metadata.session``)
sends only the new message; a stateless one (``llm``, LangChain, an SDK loop) sends the whole
conversation and memchat finds the session that conversation continues (``Conversations.
continue_conversation``; ``user`` is the end user's label, never a session key). memchat adds the
persona, the memory, the date and its tools, says which session it used (``X-Memchat-Session``)
and answers in OpenAI's shapes (streaming or not)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from memchat import i18n
from memchat.domain import Attachment, Role
from memchat.errors import AttachmentError, MemchatError, ProviderError
from memchat.providers.base import ChatOptions
from memchat.server.common import CallerChats, TurnRuns
from memchat.server.content_parts import content_files
from memchat.server.errors import status_of
from memchat.server.runs import Busy, Event, Run, planned_memory_use

HEADER = "X-Memchat-Session"
#: how many long-term memories, and past turns of the user's other sessions, the reply's
#: context held (OpenAI's body stays as it is: these ride in headers)
MEMORIES_HEADER = "X-Memchat-Memories"
RECALLED_HEADER = "X-Memchat-Recalled"


#: OpenAI's error shape (a superset of memchat's ``{"error": {"code", "message"}}``)
_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": "string"},
            },
        }
    },
}
_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "user", "assistant", "tool"]},
        "content": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "object"}},
                {"type": "null"},
            ]
        },
    },
}
#: what ``/v1/chat/completions`` reads (parsed by hand: OpenAI clients send more, which is ignored)
_COMPLETIONS_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["messages"],
                "properties": {
                    "model": {"type": "string"},
                    "messages": {"type": "array", "minItems": 1, "items": _MESSAGE_SCHEMA},
                    "stream": {"type": "boolean"},
                    "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
                    "user": {"type": "string"},
                    "metadata": {"type": "object", "properties": {"session": {"type": "string"}}},
                },
            }
        }
    },
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"description": "an error", "content": {"application/json": {"schema": _ERROR_SCHEMA}}} for c in codes}


def _header_value(name: str) -> str:
    """A session name as a response header: as it is when it is printable ASCII, else
    percent-encoded UTF-8 (a header carries only Latin-1, and no control characters)."""
    if name.isascii() and name.isprintable():
        return name
    from urllib.parse import quote

    return quote(name, safe="".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%"))


def _error(
    status: int, message: str, code: str, kind: str = "invalid_request_error", headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status, headers=headers
    )


#: what the client can fix keeps the upstream's status (OpenAI's SDKs raise BadRequestError,
#: NotFoundError … and do not retry); only a network failure or an upstream 5xx is a 502
_CLIENT_STATUSES = (400, 404, 413, 422)
#: memchat's own key refused by the upstream: memchat's configuration, not the client's request,
#: so neither 401/403 (the client's key) nor a status the SDKs retry (408, 409, 429, 5xx)
CONFIG_STATUS = 424


def _upstream_error(data: dict[str, Any]) -> JSONResponse:
    """The OpenAI error response for a failed turn, its status kept where the client can act."""
    kind, message = str(data.get("kind")), str(data.get("message"))
    upstream = data.get("upstream_status")
    if kind in ("rate_limited", "quota"):
        retry = data.get("retry_after")
        headers = {"Retry-After": str(max(1, round(float(retry))))} if retry is not None and kind != "quota" else None
        code = "insufficient_quota" if kind == "quota" else "rate_limit_exceeded"
        return _error(429, message, code, "insufficient_quota" if kind == "quota" else "rate_limit_error", headers)
    if kind == "context_length":
        return _error(400, message, "context_length_exceeded")
    if kind == "auth":
        return _error(CONFIG_STATUS, f"memchat's upstream refused memchat's API key: {message}", "upstream_auth",
                      "upstream_error")  # fmt: skip
    if kind == "bad_request" and upstream in _CLIENT_STATUSES:
        return _error(int(upstream), message, "not_found" if upstream == 404 else kind)
    if kind in _UPSTREAM:
        return _error(502, message, kind, "upstream_error")
    return _error(400, message, kind)


def _prior(messages: list[dict[str, Any]]) -> list[tuple[Role, str]]:
    """The user and assistant turns a request carries before its new message, as text (an
    assistant message that only called tools says nothing: it is matched by its calls)."""
    roles = {"user": Role.USER, "assistant": Role.ASSISTANT}
    return [
        (roles[m["role"]], _text(m.get("content")))
        for m in messages
        if m.get("role") in roles and (_text(m.get("content")).strip() or not m.get("tool_calls"))
    ]


#: OpenAI's rule for a function name (what every upstream checks)
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _tool_results(messages: list[dict[str, Any]]) -> tuple[int, list[tuple[str, str]]] | str:
    """A request that ends with ``tool`` messages answers the calls of the assistant message
    before them: (that message's index, or -1 when the request starts with the results; the
    (call id, content) pairs), or what is wrong with them."""
    first = len(messages)
    while first > 0 and messages[first - 1].get("role") == "tool":
        first -= 1
    results: list[tuple[str, str]] = []
    for m in messages[first:]:
        call_id = m.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            return "each tool message needs the 'tool_call_id' of the call it answers"
        content = m.get("content")
        results.append((call_id, content if isinstance(content, str) else _text(content)))
    if first == 0:
        return -1, results
    calling = messages[first - 1]
    calls = calling.get("tool_calls")
    if calling.get("role") != "assistant" or not isinstance(calls, list) or not calls:
        return "tool messages must follow the assistant message whose tool_calls they answer"
    ids = {c.get("id") for c in calls if isinstance(c, dict)}
    if {call_id for call_id, _ in results} != ids:
        return "the tool messages must answer every call of the assistant message before them, once each"
    return first - 1, results


def _wire_calls(calls: Any) -> list[dict[str, Any]]:
    """An assistant message's ``tool_calls`` as memchat stores them (OpenAI's shape)."""
    out: list[dict[str, Any]] = []
    for c in calls if isinstance(calls, list) else []:
        function = c.get("function") if isinstance(c, dict) else None
        if isinstance(function, dict):
            out.append({"id": str(c.get("id")), "type": "function", "function": {
                "name": str(function.get("name", "")), "arguments": str(function.get("arguments") or "")}})  # fmt: skip
    return out


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


#: the OpenAI-compatible routes, over the conversation service of the user who asks (OpenAI's
#: error shape: a turn already running is answered here, not by the app's table)
router = APIRouter(prefix="/v1")


@router.get("/models")
def models(chats: CallerChats) -> dict[str, Any]:
    provider = chats.agent.provider
    try:
        listed = provider.list_models()
    except MemchatError:
        listed = [provider.model] if provider.model else []
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": 0, "owned_by": provider.name} for m in listed],
    }


@router.post(
    "/chat/completions",
    openapi_extra={"requestBody": _COMPLETIONS_BODY},
    response_class=Response,
    responses={
        200: {
            "description": "a chat.completion, or its chunks as Server-Sent Events when `stream` is true",
            "headers": {
                HEADER: {"description": "the session's name", "schema": {"type": "string"}},
                MEMORIES_HEADER: {
                    "description": "long-term memories in the reply's context",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                },
                RECALLED_HEADER: {
                    "description": "past turns of the user's other sessions in the reply's context",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                },
            },
            "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {}},
        },
        **_errors(400, 404, 409, 413, 422, CONFIG_STATUS, 429, 502),
    },
)
async def completions(chats: CallerChats, runs: TurnRuns, request: Request) -> Response:
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the body is not valid JSON", "invalid_json")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object", "invalid_body")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return _error(400, "'messages' must be a non-empty list of messages", "invalid_messages")
    last = messages[-1]
    text = _text(last.get("content"))
    files: list[Attachment] = []
    if last.get("role") == "user" and isinstance(last.get("content"), list):
        try:  # images and files of the new message, read and checked before anything is stored
            files = await asyncio.to_thread(content_files, last["content"], chats.agent.max_attachment)
        except AttachmentError as exc:
            return _error(status_of(exc), i18n.describe_error(exc), exc.kind)
    answers: tuple[int, list[tuple[str, str]]] | None = None
    if last.get("role") == "tool":  # the client ran the tools the model called: the turn goes on
        found = _tool_results(messages)
        if isinstance(found, str):
            return _error(400, found, "invalid_messages")
        answers = found
    elif last.get("role") != "user" or not (text.strip() or files):
        return _error(400, "the last message must be the user's new message (or tool results)", "invalid_messages")
    metadata: dict[str, Any] = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
    # OpenAI's ``user`` names the end user (a label), not a conversation: it is not a session key
    name = request.headers.get(HEADER) or metadata.get("session")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 200):
        return _error(400, "the session name must be a non-empty string", "invalid_session")
    persona = next((_text(m.get("content")) for m in messages if m.get("role") == "system"), None)
    model = body.get("model") if isinstance(body.get("model"), str) and body.get("model") else None
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):  # checked before the turn starts
        return _error(400, "'stream_options' must be an object", "invalid_stream_options")
    include_usage = bool((options or {}).get("include_usage"))
    given = _chat_options(body)
    if isinstance(given, JSONResponse):
        return given
    chosen = dataclasses.replace(chats.agent.options or ChatOptions(), **given) if given else None
    try:  # the session named (created with the system message as its persona), else the one the
        # request's conversation continues (a stateless client sends it all every time)
        existing = chats.find(name) if name is not None else None
        fresh = existing is None  # made for this request: gone if its turn fails
        if files:  # an image for a model that takes text only: refused before anything is stored
            chats.agent.check_images(chats.agent.model_for(existing or chats.draft(), model), files)
        if name is not None:
            info = chats.open(name, persona=persona)
        elif answers is not None:
            if answers[0] < 0:
                return _error(400, "tool results with no conversation: send the assistant message that called "
                              "the tools before them, or name the session", "invalid_messages")  # fmt: skip
            calling = messages[answers[0]]
            info = await asyncio.to_thread(
                chats.continue_conversation, _prior(messages[: answers[0]]), persona,
                waiting=_wire_calls(calling.get("tool_calls")), waiting_text=_text(calling.get("content")),
            )  # fmt: skip
        else:
            info = await asyncio.to_thread(chats.continue_conversation, _prior(messages[:-1]), persona)
    except MemchatError as exc:
        return _error(400, i18n.describe_error(exc), exc.kind)
    if answers is not None:
        results = answers[1]
        make = lambda: chats.astream_results(info.id, results, model=model, options=chosen)  # noqa: E731
    else:
        make = lambda: chats.astream(info.id, text, model=model, options=chosen, attachments=files)  # noqa: E731
    try:
        run = await runs.start(info.id, make)
    except Busy:
        return _error(409, "a reply is already being generated in this session", "busy")
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    shown_model = model or chats.agent.model_for(info)
    headers = {HEADER: _header_value(info.name)}
    if body.get("stream"):  # the headers go before the reply: the memories as planned
        memories, recalled = planned_memory_use(run)
        headers |= {MEMORIES_HEADER: str(memories), RECALLED_HEADER: str(recalled)}
        discard = (lambda: chats.discard_if_empty(info.id)) if fresh else None
        # a turn refused before its first word (an unknown model, a bad parameter, a rate limit)
        # answers as an unstreamed one does, with its status: the SDKs raise NotFoundError … at
        # once and retry only what they retry; a failure after that is an in-stream error event
        first = await _first_event(run)
        if first is not None and first.kind == "error":
            if discard is not None:
                await asyncio.to_thread(discard)
            return _upstream_error(first.data)
        stream = _chunks(run, cid, created, shown_model, include_usage, discard)
        return StreamingResponse(
            stream, media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"}
        )
    parts: list[str] = []
    usage: dict[str, int] | None = None
    finish = "stop"
    calls: list[dict[str, Any]] = []
    async for event in run.follow():
        if event.kind == "delta":
            parts.append(event.data["text"])
        elif event.kind == "usage":
            usage = event.data
        elif event.kind == "done":
            headers[MEMORIES_HEADER] = str(len(event.data.get("memories") or []))
            headers[RECALLED_HEADER] = str(event.data.get("recalled") or 0)
            finish = _finish_reason(event.data)
            calls = list(event.data.get("tool_calls") or [])
            if usage is None and event.data.get("usage_estimate"):
                usage = event.data["usage_estimate"]
                headers[USAGE_HEADER] = "estimated"
        elif event.kind == "error":
            if fresh:  # the session was made for this turn, which failed: nothing is left behind
                await asyncio.to_thread(chats.discard_if_empty, info.id)
            return _upstream_error(event.data)
    completion = {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": shown_model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "".join(parts) or (None if calls else ""),
                    "refusal": None,
                    **({"tool_calls": calls} if calls else {}),
                },
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }
    return JSONResponse(completion, headers=headers)


_UPSTREAM = {c.kind for c in ProviderError.__subclasses__()} | {"provider"}
#: says that ``usage`` is memchat's own count (the upstream reported none)
USAGE_HEADER = "X-Memchat-Usage"
_FINISHES = ("stop", "length", "tool_calls", "content_filter", "function_call")


def _finish_reason(done: dict[str, Any]) -> str:
    """The upstream's finish reason where OpenAI's schema has it; a stopped or cut reply is
    ``length`` only when the model said so, else ``stop``."""
    reason = done.get("finish_reason")
    return reason if reason in _FINISHES else "stop"


def _number(body: dict[str, Any], key: str, low: float, high: float) -> float | None | str:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        return f"'{key}' must be a number from {low:g} to {high:g}"
    return float(value)


def _chat_options(body: dict[str, Any]) -> dict[str, Any] | JSONResponse:
    """The client's generation parameters (OpenAI's names), checked, for ``ChatOptions``; or the
    400 that says which one is wrong."""
    given: dict[str, Any] = {}
    n = body.get("n")
    if n is not None and n != 1:
        return _error(400, "n > 1 is not supported: memchat keeps one reply per turn", "unsupported_n")
    tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if tokens is not None:
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
            return _error(400, "'max_tokens' must be a whole number of at least 1", "invalid_max_tokens")
        given["max_tokens"] = tokens
    for key, low, high in (
        ("temperature", 0, 2), ("top_p", 0, 1), ("presence_penalty", -2, 2), ("frequency_penalty", -2, 2)
    ):  # fmt: skip
        value = _number(body, key, low, high)
        if isinstance(value, str):
            return _error(400, value, f"invalid_{key}")
        if value is not None:
            given[key] = value
    seed = body.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            return _error(400, "'seed' must be a whole number", "invalid_seed")
        given["seed"] = seed
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not 1 <= len(stops) <= 4 or not all(isinstance(x, str) and x for x in stops):
            return _error(400, "'stop' must be a string or a list of 1 to 4 strings", "invalid_stop")
        given["stop"] = tuple(stops)
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not all(
            isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("function"), dict)
            and isinstance(t["function"].get("name"), str) and _FUNCTION_NAME.match(t["function"]["name"])
            for t in tools
        ):  # fmt: skip
            return _error(400, "'tools' must be a list of functions, each with a name of letters, digits, _ "
                          "and - (at most 64)", "invalid_tools")  # fmt: skip
        if tools:
            given["tools"] = tuple(tools)
            choice = body.get("tool_choice")
            if choice is not None:
                if not (choice in ("none", "auto", "required") or isinstance(choice, dict)):
                    return _error(400, "'tool_choice' must be none, auto, required or a named function",
                                  "invalid_tool_choice")  # fmt: skip
                given["tool_choice"] = choice
            if isinstance(body.get("parallel_tool_calls"), bool):
                given["parallel_tool_calls"] = body["parallel_tool_calls"]
    fmt = body.get("response_format")
    if fmt is not None:
        if not isinstance(fmt, dict) or not isinstance(fmt.get("type"), str):
            return _error(400, "'response_format' must be an object with a 'type'", "invalid_response_format")
        given["response_format"] = fmt
    bias = body.get("logit_bias")
    if bias is not None:
        if not isinstance(bias, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and -100 <= v <= 100 for v in bias.values()
        ):
            return _error(400, "'logit_bias' must map token ids to numbers from -100 to 100", "invalid_logit_bias")
        given["logit_bias"] = {str(k): float(v) for k, v in bias.items()}
    return given


async def _first_event(run: Run) -> Event | None:
    """The run's first event, once there is one (None: it ended with none)."""
    events = run.follow()
    try:
        return await anext(events, None)
    finally:
        await events.aclose()


async def _chunks(
    run: Any, cid: str, created: int, model: str, include_usage: bool, discard: Callable[[], object] | None = None
) -> AsyncIterator[bytes]:
    def frame(delta: dict[str, Any], finish: str | None = None, usage: Any = None, choices: bool = True) -> bytes:
        obj: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        obj["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else []
        if include_usage:
            obj["usage"] = usage
        return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"

    yield frame({"role": "assistant", "content": ""})
    usage: dict[str, int] | None = None
    finish = "stop"
    async for event in run.follow():
        if event.kind == "delta":
            yield frame({"content": event.data["text"]})
        elif event.kind == "usage":
            usage = event.data
        elif event.kind == "done":
            finish = _finish_reason(event.data)
            usage = usage or event.data.get("usage_estimate")
            calls = event.data.get("tool_calls") or []
            if calls:  # the client's tools, whole: the SDKs gather deltas by index
                yield frame({"tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]})
        elif event.kind == "error":
            error = {
                "error": {"message": event.data["message"], "type": "upstream_error", "param": None,
                          "code": event.data["kind"]}
            }  # fmt: skip
            yield b"data: " + json.dumps(error, ensure_ascii=False).encode() + b"\n\n"
            if discard is not None:  # the session was made for this turn, which failed
                await asyncio.to_thread(discard)
            return
    yield frame({}, finish)
    if include_usage:
        yield frame({}, usage=usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, choices=False)
    yield b"data: [DONE]\n\n"
