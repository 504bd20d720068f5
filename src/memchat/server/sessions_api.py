"""The JSON API of sessions: list, create, import, read, change, delete, fork, undo, export,
branches and pins — each the caller's own (another user's session is a 404)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from memchat import i18n
from memchat.domain import Message, SessionInfo
from memchat.errors import ImportFormatError
from memchat.serialization import export_jsonl, export_markdown, import_jsonl
from memchat.server.common import MAX_ID, CallerAgent, Id, SessionId, TurnRuns, find_session, text_content
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


class Import(BaseModel):
    text: str = Field(min_length=1, max_length=20_000_000)
    name: str | None = Field(default=None, max_length=200)


# -- shapes -----------------------------------------------------------------------------------------


def session_json(info: SessionInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "persona": info.persona,
        "model": info.model,
        "memory": info.memory,
        "messages": info.message_count,
        "incognito": info.settings.get("incognito") is True,
        "parent_id": info.parent_id,
        "created": info.created.isoformat() if info.created else None,
        "updated": info.updated.isoformat() if info.updated else None,
    }


def message_json(m: Message, index: int) -> dict[str, Any]:
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
    return out


# -- routes -----------------------------------------------------------------------------------------


@router.get("")
def list_sessions(
    agent: CallerAgent,
    q: str | None = Query(default=None, max_length=200),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    found = agent.store.list_sessions()
    if q:
        needle = q.lower()
        found = [s for s in found if needle in s.name.lower() or needle in s.persona.lower()]
    page = found[offset : offset + limit]
    return {"sessions": [session_json(s) for s in page], "total": len(found)}


@router.post("", status_code=201, responses=errors(409))
def create_session(agent: CallerAgent, body: NewSession) -> dict[str, Any]:
    persona = agent.persona if body.persona is None else body.persona
    info = agent.store.create_session(
        body.name or None, persona=persona, model=agent.model, provider=agent.provider.name
    )
    return session_json(info)


@router.post("/import", status_code=201, responses=errors(409))
def import_session(agent: CallerAgent, body: Import) -> dict[str, Any]:
    try:
        return session_json(import_jsonl(agent.store, body.text, body.name))
    except ImportFormatError as exc:
        raise HTTPException(400, i18n.describe_error(exc)) from None


@router.get("/{session_id}", responses=errors(404))
async def get_session(agent: CallerAgent, runs: TurnRuns, session_id: SessionId) -> dict[str, Any]:
    info = await asyncio.to_thread(find_session, agent, session_id)
    out = session_json(info)
    out["running"] = await runs.running(info.id)
    return out


@router.get("/{session_id}/messages", responses=errors(404))
def messages(
    agent: CallerAgent,
    session_id: SessionId,
    offset: int = Query(default=0, ge=0),
    limit: int = Query(default=200, ge=1, le=2000),
) -> dict[str, Any]:
    info = find_session(agent, session_id)
    stored = agent.store.messages(info.id)
    page = stored[offset : offset + limit]
    items = [message_json(m, offset + i + 1) for i, m in enumerate(page)]
    images = [
        {"id": im.id, "prompt": im.prompt, "after": im.after_seq, "url": f"/api/images/{im.id}"}
        for im in agent.store.images(info.id)
    ]
    return {"messages": items, "total": len(stored), "images": images}


@router.patch("/{session_id}", responses=errors(404, 409))
def change_session(agent: CallerAgent, session_id: SessionId, body: SessionChange) -> dict[str, Any]:
    info = find_session(agent, session_id)
    updated = agent.store.update_session(
        info.id, name=body.name, persona=body.persona, memory=body.memory, model=body.model
    )
    if body.incognito is not None:
        updated = agent.set_incognito(updated, body.incognito)
    return session_json(updated)


@router.delete("/{session_id}", status_code=204, responses=errors(404))
async def delete_session(agent: CallerAgent, runs: TurnRuns, session_id: SessionId) -> Response:
    info = find_session(agent, session_id)
    await runs.stop(info.id)
    await asyncio.to_thread(agent.store.delete_session, info.id)
    return Response(status_code=204)


@router.post("/{session_id}/fork", status_code=201, responses=errors(404, 409))
def fork(agent: CallerAgent, session_id: SessionId, body: Fork) -> dict[str, Any]:
    info = find_session(agent, session_id)
    return session_json(agent.store.fork_session(info.id, body.name or None, at=body.at))


@router.post("/{session_id}/undo", responses=errors(404, 409))
async def undo(agent: CallerAgent, runs: TurnRuns, session_id: SessionId) -> dict[str, Any]:
    info = await asyncio.to_thread(find_session, agent, session_id)
    if await runs.running(info.id):
        raise Busy("a reply is being generated in this session")
    removed = await asyncio.to_thread(agent.store.remove_last_turn, info.id)
    return {"removed": len(removed)}


@router.get(
    "/{session_id}/export",
    response_class=Response,
    responses={
        **text_content("application/x-ndjson", "text/markdown", description="the export (JSONL or Markdown)"),
        **errors(404),
    },
)
def export(agent: CallerAgent, session_id: SessionId, format: Literal["jsonl", "md"] = "jsonl") -> PlainTextResponse:
    info = find_session(agent, session_id)
    text = export_jsonl(agent.store, info.id) if format == "jsonl" else export_markdown(agent.store, info.id)
    kind = "application/x-ndjson" if format == "jsonl" else "text/markdown"
    disposition = f'attachment; filename="session-{info.id}.{format}"'
    return PlainTextResponse(text, media_type=kind, headers={"Content-Disposition": disposition})


@router.get("/{session_id}/branches", responses=errors(404))
def branches(agent: CallerAgent, session_id: SessionId) -> dict[str, Any]:
    """The session's family: where it was forked from, and the forks of it and of its root."""
    info = find_session(agent, session_id)
    every = agent.store.list_sessions()
    root = info.parent_id if info.parent_id is not None and agent.store.find_session(info.parent_id) else info.id
    family = [s for s in every if s.id == root or s.parent_id == root]
    family.sort(key=lambda s: (s.id != root, s.id))
    return {"root": root, "sessions": [{**session_json(s), "fork_at": s.fork_at} for s in family]}


@router.post("/{session_id}/pins", responses=errors(404))
def pin(agent: CallerAgent, session_id: SessionId, body: Pin) -> dict[str, Any]:
    info = find_session(agent, session_id)
    if body.pinned:
        agent.store.pin(info.id, body.message_id)
    else:
        agent.store.unpin(info.id, body.message_id)
    return {"pins": [m.id for m in agent.store.pins(info.id)]}
