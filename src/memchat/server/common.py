"""What every router of the app shares: the ids in paths and bodies, the server's state and the
dependencies over it (``CallerChats``: the conversation service of the user who asks, over
``CallerAgent``, that user's agent; ``TurnRuns``: the turns running on this worker), the session
lookup, and the non-JSON responses routes declare. Routes go through ``CallerChats``
(``memchat.service.Conversations``): none touches the store or changes an agent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam
from pydantic import Field

from memchat import i18n
from memchat.agent import Agent
from memchat.domain import SessionInfo
from memchat.server import language  # noqa: F401  (the server's strings: http.*)
from memchat.server.runs import Runs
from memchat.service import Conversations
from memchat.stores.sqlite import LOCAL_USER

#: the largest id the stores hold (SQLite INTEGER, PostgreSQL BIGINT): a larger one is a 422, not a 500
MAX_ID = 2**63 - 1
#: a session, message or image id in a path or a body
Id = Annotated[int, Field(ge=0, le=MAX_ID)]
SessionId = Annotated[int, PathParam(ge=0, le=MAX_ID)]
ImageId = Annotated[int, PathParam(ge=0, le=MAX_ID)]
MessageId = Annotated[int, PathParam(ge=0, le=MAX_ID)]


@dataclass
class Server:
    """The state of one app (``app.state.server``): the agent it serves, the server's token,
    the turns running here, and each account's agent (made on its first request)."""

    agent: Agent
    runs: Runs
    token: str | None = None
    agents: dict[int, Agent] = field(default_factory=dict)

    def agent_for(self, request: Request) -> Agent:
        """The agent of the user the guard identified (the local user without accounts)."""
        user = getattr(request.state, "user", LOCAL_USER)
        if user == LOCAL_USER:
            return self.agent
        if user not in self.agents:
            self.agents[user] = self.agent.for_user(user)
        return self.agents[user]


def server_of(request: Request) -> Server:
    server = request.app.state.server
    assert isinstance(server, Server)
    return server


async def caller_agent(request: Request) -> Agent:
    return server_of(request).agent_for(request)


async def turn_runs(request: Request) -> Runs:
    return server_of(request).runs


async def this_server(request: Request) -> Server:
    return server_of(request)


#: the agent of the user who asks: every route reaches only that user's sessions and memories
CallerAgent = Annotated[Agent, Depends(caller_agent)]


async def caller_chats(agent: CallerAgent) -> Conversations:
    return Conversations(agent)


#: the use cases over the caller's agent (one service a request: a setting a route chooses is
#: stored with the session, never left on the server's agent)
CallerChats = Annotated[Conversations, Depends(caller_chats)]
#: the turns running on this worker (shared with the others through Redis, ``fanout.py``)
TurnRuns = Annotated[Runs, Depends(turn_runs)]
#: the app's own state
ThisServer = Annotated[Server, Depends(this_server)]


def find_session(chats: Conversations, session_id: int) -> SessionInfo:
    """The session ``session_id`` of the user making the request (404 for anyone else's)."""
    info = chats.find(session_id)
    if info is None:
        raise HTTPException(404, i18n.t("http.no_session", id=session_id))
    return info


# -- responses that are not JSON (declared in /openapi.json) ---------------------------------------


def text_content(*media_types: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {t: {"schema": {"type": "string"}} for t in media_types}}}


#: one Server-Sent Event of a turn: ``id: N``, ``event: KIND``, ``data: {JSON object}``
SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string", "minLength": 1},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {"type": "object"}},
    },
}


def event_stream(description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {"text/event-stream": {"schema": SSE_EVENT}}}}
