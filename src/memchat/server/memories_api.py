"""The JSON API of long-term memories (issue 13): what memchat remembers about the user who asks.

Every route is the caller's own, exactly as the session routes are: the guard names the user,
``CallerChats`` gives that user's conversation service, and its ``memories`` (a ``MemoryService``
over the user's store) never reaches anyone else's memories; another user's id is a 404.

A memory is never rewritten or deleted: ``PATCH`` adds a new version (the old one is kept,
superseded), ``DELETE`` forgets it (kept, ended), and ``restore`` serves it again."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from memchat.domain import Memory
from memchat.memories.service import MAX_CHARS, to_record
from memchat.server.common import MAX_ID, CallerChats, text_content
from memchat.server.errors import BadImport, MemoryEnded, errors
from memchat.service import Conversations

MemoryId = Annotated[int, PathParam(ge=0, le=MAX_ID)]
Kind = Literal["fact", "preference", "instruction", "event"]
#: the most memories one import takes (the body is at most 1 MB anyway)
MAX_IMPORT = 10_000


# -- bodies -----------------------------------------------------------------------------------------


class NewMemory(BaseModel):
    text: str = Field(min_length=1, max_length=4 * MAX_CHARS)
    #: guessed from the text when left out ("always …" is an instruction, "I like …" a preference)
    kind: Kind | None = None
    #: for an event: the day it happened (read from the text, "yesterday", when left out)
    date: dt.date | None = None


class MemoryChange(BaseModel):
    text: str = Field(min_length=1, max_length=4 * MAX_CHARS)
    kind: Kind | None = None


# -- answers ----------------------------------------------------------------------------------------


class MemoryOut(BaseModel):
    """One memory: what it says, its kind, how and when it was learned (``origin``, ``created``),
    the session it came from (``session_exists``: that session can still be opened), and, once
    ended, when and why (``superseded`` by ``superseded_by``, ``forgotten``, ``reverted``)."""

    id: int
    content: str
    kind: Kind
    origin: Literal["explicit", "auto", "import"]
    event_date: str | None
    session_id: int | None
    session: str | None
    session_exists: bool
    source_ids: list[int]
    supersedes: int | None
    superseded_by: int | None
    created: str | None
    ended: str | None
    end_reason: Literal["superseded", "forgotten", "reverted"] | None
    active: bool


class MemoryList(BaseModel):
    memories: list[MemoryOut]
    total: int


class MemoryDetail(MemoryOut):
    #: every version of this memory's line, oldest first (this one included)
    history: list[MemoryOut]


class Imported(BaseModel):
    imported: int
    ids: list[int]


_IMPORT_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/x-ndjson": {"schema": {"type": "string", "description": "one exported memory per line"}},
        "application/json": {
            "schema": {
                "anyOf": [
                    {"type": "array", "items": {"type": "object"}, "description": "exported memories"},
                    {
                        "type": "object",
                        "properties": {"memories": {"type": "array", "items": {"type": "object"}}},
                        "required": ["memories"],
                    },
                ]
            }
        },
    },
}


def memory_json(m: Memory, sessions: set[int]) -> dict[str, Any]:
    out = to_record(m)
    out["session_exists"] = m.session_id is not None and m.session_id in sessions
    out["active"] = m.active
    return out


def parse_import(raw: bytes, content_type: str) -> list[Any]:
    """The records of an import body: JSONL (one object a line), a JSON list, or
    ``{"memories": [...]}``; a ``BadImport`` naming the line that is not JSON."""
    try:
        text = raw.decode("utf-8").lstrip("\ufeff").strip()
    except UnicodeDecodeError:
        raise BadImport("the body is not UTF-8 text") from None
    if not text:
        raise BadImport("nothing to import: the body is empty")
    if text.startswith("[") or "ndjson" not in content_type.lower():
        try:
            whole = json.loads(text)
        except ValueError:
            whole = None  # JSONL sent as application/json: read it line by line below
        else:
            if isinstance(whole, list):
                records = whole
            elif isinstance(whole, dict) and isinstance(whole.get("memories"), list):
                records = whole["memories"]
            elif isinstance(whole, dict):
                records = [whole]  # JSONL of one line
            else:
                raise BadImport('send exported memories: JSONL, a JSON list, or {"memories": [...]}')
            if len(records) > MAX_IMPORT:
                raise BadImport(f"at most {MAX_IMPORT:,} memories at a time")
            return records
    records = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise BadImport(f"line {line_no}: not a JSON object ({exc.msg})") from None
        if len(records) > MAX_IMPORT:
            raise BadImport(f"at most {MAX_IMPORT:,} memories at a time")
    return records


def sessions_of(chats: Conversations) -> set[int]:
    return {s.id for s in chats.list()}


def out(chats: Conversations, *memories: Memory) -> list[dict[str, Any]]:
    sessions = sessions_of(chats) if any(m.session_id is not None for m in memories) else set()
    return [memory_json(m, sessions) for m in memories]


#: the ``/api/memories`` routes over the conversation service of the user who asks
router = APIRouter(prefix="/api/memories", tags=["memories"])


@router.get("", response_model=MemoryList)
def list_memories(
    chats: CallerChats,
    include_ended: bool = Query(default=False, alias="all", description="forgotten and superseded ones too"),
    kind: Kind | None = None,
    q: str | None = Query(default=None, max_length=200, description="words to look for (served memories)"),
) -> dict[str, Any]:
    """The caller's memories, newest first; with ``q``, those that match it, best first."""
    # Any: MemoryService.list shadows the builtin in its own annotations, which mypy misreads
    service: Any = chats.memories
    found: list[Memory]
    if q and q.strip():
        found = [m for m in service.search(q, limit=200) if kind is None or m.kind.value == kind]
    else:
        found = service.list(include_ended=include_ended, kind=kind)
    return {"memories": out(chats, *found), "total": len(found)}


@router.post("", status_code=201, response_model=MemoryOut)
def add_memory(chats: CallerChats, body: NewMemory) -> dict[str, Any]:
    """Remember something (a newer fact about the same subject supersedes the older one)."""
    made = chats.memories.add(body.text, kind=body.kind, event_date=body.date)
    return out(chats, made)[0]


@router.get(
    "/export",
    response_class=Response,
    responses=text_content("application/x-ndjson", description="every memory, one JSON object a line"),
)
def export_memories(
    chats: CallerChats, include_ended: bool = Query(default=True, alias="all", description="ended ones too")
) -> PlainTextResponse:
    """Every memory as JSONL (ended ones too: the history travels), oldest first."""
    service: Any = chats.memories  # see list_memories
    records: list[dict[str, Any]] = service.export(include_ended=include_ended)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    headers = {"Content-Disposition": 'attachment; filename="memories.jsonl"'}
    return PlainTextResponse(text, media_type="application/x-ndjson", headers=headers)


@router.post("/import", status_code=201, response_model=Imported, openapi_extra={"requestBody": _IMPORT_BODY})
async def import_memories(chats: CallerChats, request: Request) -> dict[str, Any]:
    """Exported memories (JSONL, or a JSON list): all of them or none, a 400 naming the
    record that is not one."""
    records = parse_import(await request.body(), request.headers.get("content-type", ""))
    made = await asyncio.to_thread(chats.memories.import_records, records)
    return {"imported": len(made), "ids": [m.id for m in made if m.id is not None]}


@router.get("/{memory_id}", response_model=MemoryDetail, responses=errors(404))
def get_memory(chats: CallerChats, memory_id: MemoryId) -> dict[str, Any]:
    """One memory with its history (every version of it, oldest first)."""
    memory = chats.memories.get(memory_id)
    history = chats.memories.history(memory_id)
    shown = out(chats, memory, *history)
    return {**shown[0], "history": shown[1:]}


@router.patch("/{memory_id}", response_model=MemoryOut, responses=errors(404, 409))
def edit_memory(chats: CallerChats, memory_id: MemoryId, body: MemoryChange) -> dict[str, Any]:
    """A new version of a served memory (the old one is kept, superseded by it)."""
    if not chats.memories.get(memory_id).active:
        raise MemoryEnded(f"memory {memory_id} is no longer served; restore it first")
    return out(chats, chats.memories.edit(memory_id, body.text, kind=body.kind))[0]


@router.delete("/{memory_id}", response_model=MemoryOut, responses=errors(404, 409))
def forget_memory(chats: CallerChats, memory_id: MemoryId) -> dict[str, Any]:
    """Forget a memory: it is no longer served, kept in its history (``restore`` undoes it)."""
    if not chats.memories.get(memory_id).active:
        raise MemoryEnded(f"memory {memory_id} is not served (already forgotten or replaced)")
    return out(chats, chats.memories.forget(memory_id))[0]


@router.post("/{memory_id}/restore", response_model=MemoryOut, responses=errors(404))
def restore_memory(chats: CallerChats, memory_id: MemoryId) -> dict[str, Any]:
    """Serve an ended memory again (undo a forget, or go back to an older version)."""
    memory = chats.memories.get(memory_id)
    if not memory.active:
        memory = chats.memories.restore(memory_id)
    return out(chats, memory)[0]
