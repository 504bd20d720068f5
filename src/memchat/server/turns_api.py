"""Turns and their streams: a new turn, an edit and a retry (each a new version of its point of
the session; what it replaces is kept as another) — each a server task (``runs.py``) whose
events the client reads as Server-Sent Events — and following or stopping the turn that runs.
A turn already running in the session is a 409 (``Busy``, ``errors.py``).

A new chat's first turn (``POST /api/sessions/turns``) makes its session: stored with the first
message, removed again if that turn fails, so no empty session is left behind; its id comes in
``X-Memchat-Session-Id``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from memchat import i18n
from memchat.domain import Attachment, SessionInfo
from memchat.server.attachments_api import MAX_FILES, Upload, read_uploads
from memchat.server.common import CallerChats, Id, SessionId, TurnRuns, event_stream, find_session
from memchat.server.errors import errors
from memchat.server.runs import Event, Run
from memchat.service import Conversations

#: a comment line on an idle stream, so proxies and browsers keep it open
KEEPALIVE = 15.0
MAX_TEXT = 100_000

router = APIRouter(prefix="/api/sessions/{session_id}")
#: the first turn of a new chat (no session id yet)
new_chat = APIRouter(prefix="/api/sessions")


def _turn() -> dict[int | str, dict[str, Any]]:
    """What a route that starts a turn answers."""
    return {**event_stream("the turn's events"), **errors(404, 409, 503)}


#: a sampling seed: the same seed and context give the same reply (none: a new sample each time)
Seed = Field(default=None, ge=0, le=2**31 - 1, description="sample with this seed (default: the server's setting)")


#: what the ``attachments`` of a turn say in the schema
FILES = "files sent with the message, base64 (read and checked by their bytes before the turn starts)"


class NewTurn(BaseModel):
    text: str = Field(min_length=0, max_length=MAX_TEXT)
    seed: int | None = Seed
    attachments: list[Upload] = Field(default_factory=list, max_length=MAX_FILES, description=FILES)


class FirstTurn(BaseModel):
    """A new chat's first message, with the settings chosen for the chat before it."""

    text: str = Field(min_length=0, max_length=MAX_TEXT)
    attachments: list[Upload] = Field(default_factory=list, max_length=MAX_FILES, description=FILES)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    persona: str | None = Field(default=None, max_length=20_000)
    memory: Literal["auto", "full", "window", "summary", "recall"] | None = None
    model: str | None = Field(default=None, min_length=1, max_length=200)
    incognito: bool = False


class Edit(BaseModel):
    message_id: Id
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    seed: int | None = Seed


class Retry(BaseModel):
    seed: int | None = Seed


# -- Server-Sent Events -----------------------------------------------------------------------------


def sse(event: Event) -> bytes:
    data = json.dumps(event.data, ensure_ascii=False)
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n".encode()


async def stream(source: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    events = source.__aiter__()
    pending: asyncio.Task[Event] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(events.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE)
            if not done:
                yield b": ping\n\n"
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield sse(event)
    finally:
        if pending is not None:
            pending.cancel()


async def stream_run(run: Run, after: int = 0) -> AsyncIterator[bytes]:
    """A run of this worker's: the events that came together in one write, a ping when none came
    for ``KEEPALIVE`` seconds."""
    async for batch in run.batches(after, keepalive=KEEPALIVE):
        yield b"".join(sse(event) for event in batch) if batch else b": ping\n\n"


class EventStream(StreamingResponse):
    """A turn's Server-Sent Events, written as they come; when the client goes away the stream
    ends at its next event or ping (the turn runs on regardless). Starlette's own streaming
    response runs the body and a disconnect listener in an anyio task group: ~0.7 ms of the
    event loop for a turn's dozen events, against ~0.1 ms for this one task beside the body."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self.body_iterator:
                if gone.done():
                    return
                body = chunk.encode(self.charset) if isinstance(chunk, str) else chunk
                await send({"type": "http.response.body", "body": body, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()  # a reader of the run stops waiting now


def sse_response(source: Run | AsyncIterator[Event], after: int = 0) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    body = stream_run(source, after) if isinstance(source, Run) else stream(source)
    return EventStream(body, media_type="text/event-stream", headers=headers)


# -- routes -----------------------------------------------------------------------------------------


@new_chat.post("/turns", response_class=Response, responses=_turn())
async def first_turn(chats: CallerChats, runs: TurnRuns, body: FirstTurn) -> StreamingResponse:
    """A new chat and its first turn: the session is stored with the message (and removed again
    if the turn fails). Its id comes in ``X-Memchat-Session-Id``."""

    def draft() -> SessionInfo:
        info = chats.draft(body.name, persona=body.persona, incognito=body.incognito)
        return chats.change(info, memory=body.memory, model=body.model)

    files = await _files(chats, body.text, body.attachments)
    info = await asyncio.to_thread(draft)
    run = await runs.start_new(lambda: chats.astream(info, body.text, attachments=files))
    response = sse_response(run)
    response.headers["X-Memchat-Session-Id"] = str(run.session_id)
    return response


@router.post("/turns", response_class=Response, responses=_turn())
async def new_turn(chats: CallerChats, runs: TurnRuns, session_id: SessionId, body: NewTurn) -> StreamingResponse:
    files = await _files(chats, body.text, body.attachments)
    info = await asyncio.to_thread(find_session, chats, session_id)
    run = await runs.start(info.id, lambda: chats.astream(info.id, body.text, seed=body.seed, attachments=files))
    return sse_response(run)


async def _files(chats: Conversations, text: str, uploads: list[Upload]) -> list[Attachment]:
    """The uploads read and checked (an ``AttachmentError``: 400, too large: 413) before the turn."""
    if not text.strip() and not uploads:
        raise HTTPException(422, i18n.t("http.empty_turn"))
    return await asyncio.to_thread(read_uploads, uploads, chats.agent.max_attachment)


@router.post("/edit", response_class=Response, responses=_turn())
async def edit(chats: CallerChats, runs: TurnRuns, session_id: SessionId, body: Edit) -> StreamingResponse:
    """Edit a user message in place: the new text and its reply become a new version of that
    point of the session; the message as it was, its reply and what followed are kept as
    another version (``…/messages/{id}/versions``)."""
    info = await asyncio.to_thread(find_session, chats, session_id)
    turn = await asyncio.to_thread(chats.aedit, info.id, body.message_id, body.text, seed=body.seed)
    run = await runs.start(info.id, lambda: turn)
    return sse_response(run)


@router.post("/retry", response_class=Response, responses=_turn())
async def retry(
    chats: CallerChats, runs: TurnRuns, session_id: SessionId, body: Retry | None = None
) -> StreamingResponse:
    """Regenerate the last reply: a new version of it; the earlier ones are kept as versions.
    A last message left without a reply (a turn stopped before its first word) gets one."""
    info = await asyncio.to_thread(find_session, chats, session_id)
    seed = body.seed if body is not None else None
    run = await runs.start(info.id, lambda: chats.aretry(info.id, seed=seed))
    return sse_response(run)


@router.get(
    "/stream",
    response_class=Response,
    responses={
        **event_stream("the running turn's events after `after`"),
        204: {"description": "no turn is running in this session"},
        **errors(404),
    },
)
async def reattach(
    chats: CallerChats, runs: TurnRuns, session_id: SessionId, after: int = Query(default=0, ge=0)
) -> Response:
    info = await asyncio.to_thread(find_session, chats, session_id)
    run = runs.get(info.id) if runs.fanout is None else None
    if run is not None:  # this worker's own run: its events in batches
        return sse_response(run, after)
    events = await runs.follow(info.id, after)
    if events is None:
        return Response(status_code=204)
    return sse_response(events)


@router.post("/stop", responses=errors(404))
async def stop(chats: CallerChats, runs: TurnRuns, session_id: SessionId) -> dict[str, Any]:
    info = await asyncio.to_thread(find_session, chats, session_id)
    return {"stopped": await runs.stop(info.id)}
