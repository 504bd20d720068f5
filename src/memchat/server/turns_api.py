"""Turns and their streams: a new turn, an edit (a new branch), a retry — each a server task
(``runs.py``) whose events the client reads as Server-Sent Events — and following or stopping
the turn that runs. A turn already running in the session is a 409 (``Busy``, ``errors.py``).

A new chat's first turn (``POST /api/sessions/turns``) makes its session: stored with the first
message, removed again if that turn fails, so no empty session is left behind; its id comes in
``X-Memchat-Session-Id``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from memchat.domain import SessionInfo
from memchat.server.common import CallerChats, Id, SessionId, TurnRuns, event_stream, find_session
from memchat.server.errors import errors
from memchat.server.runs import Event, Run

#: a comment line on an idle stream, so proxies and browsers keep it open
KEEPALIVE = 15.0
MAX_TEXT = 100_000

router = APIRouter(prefix="/api/sessions/{session_id}")
#: the first turn of a new chat (no session id yet)
new_chat = APIRouter(prefix="/api/sessions")


def _turn() -> dict[int | str, dict[str, Any]]:
    """What a route that starts a turn answers."""
    return {**event_stream("the turn's events"), **errors(404, 409, 503)}


class NewTurn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class FirstTurn(BaseModel):
    """A new chat's first message, with the settings chosen for the chat before it."""

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    persona: str | None = Field(default=None, max_length=20_000)
    memory: Literal["auto", "full", "window", "summary", "recall"] | None = None
    model: str | None = Field(default=None, min_length=1, max_length=200)
    incognito: bool = False


class Edit(BaseModel):
    message_id: Id
    text: str = Field(min_length=1, max_length=MAX_TEXT)


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


def sse_response(source: Run | AsyncIterator[Event], after: int = 0) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    events = source.follow(after) if isinstance(source, Run) else source
    return StreamingResponse(stream(events), media_type="text/event-stream", headers=headers)


# -- routes -----------------------------------------------------------------------------------------


@new_chat.post("/turns", response_class=Response, responses=_turn())
async def first_turn(chats: CallerChats, runs: TurnRuns, body: FirstTurn) -> StreamingResponse:
    """A new chat and its first turn: the session is stored with the message (and removed again
    if the turn fails). Its id comes in ``X-Memchat-Session-Id``."""

    def draft() -> SessionInfo:
        info = chats.draft(body.name, persona=body.persona, incognito=body.incognito)
        return chats.change(info, memory=body.memory, model=body.model)

    info = await asyncio.to_thread(draft)
    run = await runs.start_new(lambda: chats.astream(info, body.text))
    response = sse_response(run)
    response.headers["X-Memchat-Session-Id"] = str(run.session_id)
    return response


@router.post("/turns", response_class=Response, responses=_turn())
async def new_turn(chats: CallerChats, runs: TurnRuns, session_id: SessionId, body: NewTurn) -> StreamingResponse:
    info = await asyncio.to_thread(find_session, chats, session_id)
    run = await runs.start(info.id, lambda: chats.astream(info.id, body.text))
    return sse_response(run)


@router.post("/edit", response_class=Response, responses=_turn())
async def edit(chats: CallerChats, runs: TurnRuns, session_id: SessionId, body: Edit) -> StreamingResponse:
    """Edit a user message: a new branch (a fork up to just before it) gets the new text as
    its turn; the original stays as it was. The branch's id comes in ``X-Memchat-Session-Id``."""
    info = await asyncio.to_thread(find_session, chats, session_id)
    branch = await asyncio.to_thread(chats.branch_for_edit, info.id, body.message_id)
    run = await runs.start(branch.id, lambda: chats.astream(branch.id, body.text))
    response = sse_response(run)
    response.headers["X-Memchat-Session-Id"] = str(branch.id)
    return response


@router.post("/retry", response_class=Response, responses=_turn())
async def retry(chats: CallerChats, runs: TurnRuns, session_id: SessionId) -> StreamingResponse:
    info = await asyncio.to_thread(find_session, chats, session_id)
    run = await runs.start(info.id, lambda: chats.aretry(info.id))
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
    events = await runs.follow(info.id, after)
    if events is None:
        return Response(status_code=204)
    return sse_response(events)


@router.post("/stop", responses=errors(404))
async def stop(chats: CallerChats, runs: TurnRuns, session_id: SessionId) -> dict[str, Any]:
    info = await asyncio.to_thread(find_session, chats, session_id)
    return {"stopped": await runs.stop(info.id)}
