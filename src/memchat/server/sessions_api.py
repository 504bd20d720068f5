"""The JSON API of sessions: list, create, import, read, change, delete, fork, undo, export,
branches, pins and the versions of a point (a regenerated reply, an edited message) — each the
caller's own (another user's session is a 404)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from memchat import i18n
from memchat.domain import Attachment, Message, SessionInfo, Version, Versions
from memchat.errors import ImportFormatError, StoreError
from memchat.serialization import snippet_view
from memchat.server.common import (
    MAX_ID,
    CallerChats,
    Id,
    MessageId,
    SessionId,
    TurnRuns,
    find_session,
    text_content,
)
from memchat.server.errors import errors
from memchat.server.runs import Busy

router = APIRouter(prefix="/api/sessions")


# -- bodies -----------------------------------------------------------------------------------------


class NewSession(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    persona: str | None = Field(default=None, max_length=20_000)


class SessionChange(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    persona: str | None = Field(default=None, max_length=20_000)
    memory: Literal["auto", "full", "window", "summary", "recall"] | None = None
    model: str | None = Field(default=None, max_length=200)
    #: an incognito session: nothing is learned from it, nothing recalled into it
    incognito: bool | None = None


class Fork(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    at: int | None = Field(default=None, ge=0, le=MAX_ID)


class Pin(BaseModel):
    message_id: Id
    pinned: bool = True


class Choose(BaseModel):
    #: the first message of the version to show (one of ``…/messages/{id}/versions``)
    message_id: Id


class Import(BaseModel):
    text: str = Field(min_length=1, max_length=20_000_000)
    name: str | None = Field(default=None, max_length=200)


# -- shapes -----------------------------------------------------------------------------------------


def session_json(info: SessionInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        # the label written from the first exchange (None: none, or the user named the session)
        "title": info.title,
        "persona": info.persona,
        "model": info.model,
        "memory": info.memory,
        "messages": info.message_count,
        "incognito": info.settings.get("incognito") is True,
        "parent_id": info.parent_id,
        "created": info.created.isoformat() if info.created else None,
        "updated": info.updated.isoformat() if info.updated else None,
    }


def attachment_json(a: Attachment) -> dict[str, Any]:
    """An attached file as the page shows it: its name, type, size and where its bytes are."""
    return {
        "name": a.name,
        "media_type": a.media_type,
        "size": a.size,
        "sha256": a.sha256,
        "url": f"/api/attachments/{a.sha256}",
    }


def message_json(m: Message, index: int | None, versions: Versions | None = None) -> dict[str, Any]:
    """A message; ``index`` counts the session's messages from 1 (None: one of a version not
    shown); ``versions``: the message's point has several (``‹ number/count ›``; ``ids``: the
    first message of each, oldest first)."""
    out: dict[str, Any] = {
        "id": m.id,
        "index": index,
        "seq": m.seq,
        "role": m.role.value,
        "content": m.content,
        "status": m.status.value,
        "tokens": m.tokens,
        "model": m.model,
        "created": m.created.isoformat() if m.created else None,
    }
    if m.tool_calls:
        out["tool_calls"] = [dict(c) for c in m.tool_calls]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.attachments:
        out["attachments"] = [attachment_json(a) for a in m.attachments]
    if versions is not None:
        out["versions"] = {"number": versions.number, "count": versions.count, "ids": list(versions.heads)}
    return out


def version_json(v: Version) -> dict[str, Any]:
    """A version of a point: ``id`` (its first message, what ``POST …/versions`` takes), whether
    it is shown, its first turn (``messages``) and how many messages it holds after that."""
    return {
        "id": v.head,
        "number": v.number,
        "shown": v.shown,
        "messages": [message_json(m, None) for m in v.messages],
        "more": v.more,
    }


# -- routes -----------------------------------------------------------------------------------------


@router.get("")
def list_sessions(
    chats: CallerChats,
    q: str | None = Query(default=None, max_length=200),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    """The sessions, the most recently used first; with ``q``, those whose messages (or name,
    title, persona) hold its words, best first, each with ``matches``: snippets of its matching
    messages and their ids (``marks``: where the words are in a snippet)."""
    if q and q.strip():
        found = chats.search(q, limit=limit, offset=offset)
        sessions = [
            {**session_json(m.session), "matches": [snippet_view(s) for s in m.snippets]} for m in found.sessions
        ]
        return {"sessions": sessions, "total": found.total}
    listed = chats.list()
    page = listed[offset : offset + limit]
    return {"sessions": [session_json(s) for s in page], "total": len(listed)}


@router.post("", status_code=201, responses=errors(409))
def create_session(chats: CallerChats, body: NewSession) -> dict[str, Any]:
    return session_json(chats.create(body.name or None, persona=body.persona))


@router.post("/import", status_code=201, responses=errors(409))
def import_session(chats: CallerChats, body: Import) -> dict[str, Any]:
    try:
        return session_json(chats.import_(body.text, body.name))
    except ImportFormatError as exc:
        raise HTTPException(400, i18n.describe_error(exc)) from None


@router.get("/{session_id}", responses=errors(404))
async def get_session(chats: CallerChats, runs: TurnRuns, session_id: SessionId) -> dict[str, Any]:
    info = await asyncio.to_thread(find_session, chats, session_id)
    out = session_json(info)
    out["running"] = await runs.running(info.id)
    return out


@router.get("/{session_id}/messages", responses=errors(404))
def messages(
    chats: CallerChats,
    session_id: SessionId,
    offset: int = Query(default=0, ge=0),
    limit: int = Query(default=200, ge=1, le=2000),
) -> dict[str, Any]:
    history = chats.history(find_session(chats, session_id).id)
    page = history.messages[offset : offset + limit]
    marks = history.versions
    items = [message_json(m, offset + i + 1, marks.get(m.id or 0)) for i, m in enumerate(page)]
    images = [
        {"id": im.id, "prompt": im.prompt, "after": im.after_seq, "url": f"/api/images/{im.id}"}
        for im in history.images
    ]
    return {"messages": items, "total": len(history.messages), "images": images}


@router.patch("/{session_id}", responses=errors(404, 409))
def change_session(chats: CallerChats, session_id: SessionId, body: SessionChange) -> dict[str, Any]:
    info = find_session(chats, session_id)
    changed = chats.change(
        info.id, name=body.name, persona=body.persona, memory=body.memory, model=body.model, incognito=body.incognito
    )
    return session_json(changed)


@router.delete("/{session_id}", status_code=204, responses=errors(404))
async def delete_session(chats: CallerChats, runs: TurnRuns, session_id: SessionId) -> Response:
    info = find_session(chats, session_id)
    await runs.stop(info.id)
    await asyncio.to_thread(chats.delete, info.id)
    return Response(status_code=204)


@router.post("/{session_id}/fork", status_code=201, responses=errors(404, 409))
def fork(chats: CallerChats, session_id: SessionId, body: Fork) -> dict[str, Any]:
    info = find_session(chats, session_id)
    return session_json(chats.fork(info.id, body.name or None, at=body.at))


@router.post("/{session_id}/undo", responses=errors(404, 409))
async def undo(chats: CallerChats, runs: TurnRuns, session_id: SessionId) -> dict[str, Any]:
    info = await asyncio.to_thread(find_session, chats, session_id)
    if await runs.running(info.id):
        raise Busy
    removed = await asyncio.to_thread(chats.undo, info.id)
    return {"removed": len(removed)}


@router.get(
    "/{session_id}/export",
    response_class=Response,
    responses={
        **text_content("application/x-ndjson", "text/markdown", description="the export (JSONL or Markdown)"),
        **errors(404),
    },
)
def export(chats: CallerChats, session_id: SessionId, format: Literal["jsonl", "md"] = "jsonl") -> PlainTextResponse:
    info = find_session(chats, session_id)
    text = chats.export(info.id, format)
    kind = "application/x-ndjson" if format == "jsonl" else "text/markdown"
    disposition = f'attachment; filename="session-{info.id}.{format}"'
    return PlainTextResponse(text, media_type=kind, headers={"Content-Disposition": disposition})


@router.get("/{session_id}/branches", responses=errors(404))
def branches(chats: CallerChats, session_id: SessionId) -> dict[str, Any]:
    """The session's family: where it was forked from, and the forks of it and of its root."""
    family = chats.branches(find_session(chats, session_id).id)
    return {"root": family.root, "sessions": [{**session_json(s), "fork_at": s.fork_at} for s in family.sessions]}


@router.post("/{session_id}/pins", responses=errors(404))
def pin(chats: CallerChats, session_id: SessionId, body: Pin) -> dict[str, Any]:
    info = find_session(chats, session_id)
    return {"pins": [m.id for m in chats.set_pinned(info.id, body.message_id, body.pinned)]}


@router.get("/{session_id}/messages/{message_id}/versions", responses=errors(404))
def versions(chats: CallerChats, session_id: SessionId, message_id: MessageId) -> dict[str, Any]:
    """The versions of the point where the shown message ``message_id`` is (the replies a
    regenerate made there, the texts an edit gave it), oldest first; one when it has no other."""
    info = find_session(chats, session_id)
    try:
        found = chats.versions(info.id, message_id)
    except StoreError:
        raise HTTPException(404, f"no message {message_id} is shown in this session") from None
    return {"versions": [version_json(v) for v in found], "count": len(found)}


@router.post("/{session_id}/versions", responses=errors(404, 409))
async def choose_version(chats: CallerChats, runs: TurnRuns, session_id: SessionId, body: Choose) -> dict[str, Any]:
    """Show another version of a point: the one whose first message is ``message_id``. The next
    turn continues from it (and memory sees it); what was shown there is kept as a version."""
    info = await asyncio.to_thread(find_session, chats, session_id)
    if await runs.running(info.id):
        raise Busy("a reply is being generated in this session")
    try:
        changed = await asyncio.to_thread(chats.choose_version, info.id, body.message_id)
    except StoreError as exc:
        raise HTTPException(404, i18n.describe_error(exc)) from None
    return {"shown": body.message_id, "changed": changed}
