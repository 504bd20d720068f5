"""The context of a session's next call: exactly what it would send (``serialization.ContextView``),
as ``memchat sessions context --json`` prints it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from memchat.server.common import CallerChats, SessionId, find_session
from memchat.server.errors import errors

#: a text in a URL (``…/context?text=``): HTTP servers refuse request heads much over 16 KB
#: (uvicorn drops the connection), and 1,000 characters stay under 12 KB percent-encoded
MAX_QUERY_TEXT = 1_000
_QUERY_TEXT = "plan for this next message (recall included); at most 1,000 characters, as it travels in the URL"

router = APIRouter(prefix="/api/sessions/{session_id}")


@router.get("/context", responses=errors(404))
def context(
    chats: CallerChats,
    session_id: SessionId,
    text: str | None = Query(default=None, max_length=MAX_QUERY_TEXT, description=_QUERY_TEXT),
) -> Any:
    info = find_session(chats, session_id)
    return chats.context_view(info, chats.context(info.id, text))
