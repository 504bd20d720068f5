"""The FastAPI application: the JSON API under ``/api``, the OpenAI-compatible endpoint under
``/v1`` (``openai_api.py``), and the web page (static files, ``memchat/web``).

Every route goes through the same ``Agent`` as the REPL and ``memchat ask``; a turn runs as a
server task (``runs.py``) whose events the client reads as Server-Sent Events."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from memchat import __version__, i18n
from memchat.agent import Agent
from memchat.domain import Message, SessionInfo
from memchat.errors import (
    ImportFormatError,
    MemchatError,
    MemoryNotFound,
    ProviderError,
    SessionExists,
    SessionNotFound,
)
from memchat.memory.plan import STRATEGIES
from memchat.server.runs import Busy, Event, Run, Runs
from memchat.server.security import COOKIE, BodyTooLarge, Guard
from memchat.stores.sqlite import LOCAL_USER

WEB = Path(__file__).resolve().parent.parent / "web"
#: a comment line on an idle stream, so proxies and browsers keep it open
KEEPALIVE = 15.0
MAX_TEXT = 100_000
#: a text in a URL (``…/context?text=``): HTTP servers refuse request heads much over 16 KB
#: (uvicorn drops the connection), and 1,000 characters stay under 12 KB percent-encoded
MAX_QUERY_TEXT = 1_000
_QUERY_TEXT = "plan for this next message (recall included); at most 1,000 characters, as it travels in the URL"
#: the largest id the stores hold (SQLite INTEGER, PostgreSQL BIGINT): a larger one is a 422, not a 500
MAX_ID = 2**63 - 1
#: a session, message or image id in a path or a body
Id = Annotated[int, Field(ge=0, le=MAX_ID)]
SessionId = Annotated[int, PathParam(ge=0, le=MAX_ID)]
ImageId = Annotated[int, PathParam(ge=0, le=MAX_ID)]


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


class NewTurn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class Pin(BaseModel):
    message_id: Id
    pinned: bool = True


class NewImage(BaseModel):
    prompt: str = Field(min_length=1, max_length=1999)
    size: str | None = Field(default=None, max_length=20)
    negative_prompt: str | None = Field(default=None, max_length=1999)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    n: int = Field(default=1, ge=1, le=4)


class Edit(BaseModel):
    message_id: Id
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class Login(BaseModel):
    token: str = Field(min_length=1, max_length=500)


class Import(BaseModel):
    text: str = Field(min_length=1, max_length=20_000_000)
    name: str | None = Field(default=None, max_length=200)


# -- what the routes answer (declared in /openapi.json, checked by tests/test_schema_fuzz.py) ----------


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code", "message"}}`` with a 4xx (5xx: the model, or Redis)."""

    error: ErrorDetail


_ERRORS = {
    400: "a bad request: a body that is not UTF-8, an import that is not a memchat export, …",
    401: "a token is required (Authorization: Bearer …, or the page's cookie)",
    403: "a state-changing request from another site",
    404: "no such session or memory (or someone else's)",
    409: "busy (a reply is being generated in this session), the name is taken, or the memory is no longer served",
    413: "the body is over 1 MB",
    415: "the body is not JSON",
    421: "a Host this server does not answer as",
    422: "invalid parameters or body",
    502: "the model or image service failed",
    503: "Redis, which the workers share, is unreachable",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses."""
    return {code: {"model": ErrorBody, "description": _ERRORS[code]} for code in codes}


#: every request may meet the guard (Host, token, origin, body) and validation
COMMON_ERRORS = errors(400, 401, 403, 413, 415, 421, 422)


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


def sse(event: Event) -> bytes:
    data = json.dumps(event.data, ensure_ascii=False)
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n".encode()


# -- the application ----------------------------------------------------------------------------------


def create_app(
    agent: Agent, *, hosts: list[str] | None = None, token: str | None = None, redis_url: str | None = None
) -> Any:
    """The ASGI application serving ``agent`` (wrapped in the ``Guard``); with ``redis_url``,
    turns are shared with the other workers of the same database (``fanout.py``)."""
    fanout = None
    if redis_url:
        import hashlib
        import os

        from memchat.server.fanout import RedisFanout

        database = hashlib.sha256(str(getattr(agent.store, "path", "")).encode()).hexdigest()[:16]
        fanout = RedisFanout(redis_url, worker=f"{os.getpid()}", namespace=database)
    runs = Runs(images_of=agent.store.images, fanout=fanout)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if fanout is not None:
            await fanout.listen(runs.stop_local)  # stop requests from any worker
        yield
        await runs.close()  # a server shutting down stops its turns (kept as stopped)
        if fanout is not None:
            await fanout.close()

    agents: dict[int, Agent] = {}

    def agent_for(request: Request) -> Agent:
        """The agent of the user the guard identified (the local user without accounts)."""
        user = getattr(request.state, "user", LOCAL_USER)
        if user == LOCAL_USER:
            return agent
        if user not in agents:
            agents[user] = agent.with_store(agent.store.for_owner(user))
        return agents[user]

    app = FastAPI(
        title="memchat",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        responses=COMMON_ERRORS,
    )
    app.state.agent = agent
    app.state.runs = runs

    @app.exception_handler(MemchatError)
    async def memchat_error(_: Request, exc: MemchatError) -> JSONResponse:
        status = (
            404
            if isinstance(exc, (SessionNotFound, MemoryNotFound))
            else 409
            if isinstance(exc, SessionExists) or exc.kind == "memory_ended"
            else 502
            if isinstance(exc, ProviderError)  # the model or image service failed, not the request
            else 503
            if exc.kind == "fanout_unavailable"  # Redis, shared by the workers, is down
            else 400
        )
        message = i18n.describe_error(exc)
        if message == f"err.{exc.kind}":  # a kind the catalog has no line for: its own words
            message = " ".join(str(exc.detail or exc.kind).split())
        return JSONResponse({"error": {"code": exc.kind, "message": message}}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":  # loc is ("body", position): say what it is
            reason = (first.get("ctx") or {}).get("error", "invalid")
            return JSONResponse(
                {"error": {"code": "invalid_json", "message": f"the body is not valid JSON: {reason}"}}, status_code=422
            )
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        message = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid request"))
        return JSONResponse({"error": {"code": "invalid", "message": message}}, status_code=422)

    @app.exception_handler(BodyTooLarge)
    async def too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse({"error": {"code": "too_large", "message": "the body is too large"}}, status_code=413)

    def session(agent: Agent, session_id: int) -> SessionInfo:
        """The session ``session_id`` of the user making the request (404 for anyone else's)."""
        info = agent.store.find_session(session_id)
        if info is None:
            raise HTTPException(404, f"no session {session_id}")
        return info

    @app.exception_handler(StarletteHTTPException)  # FastAPI's own (a body that is not JSON) and routing's too
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 409: "busy", 400: "bad_request", 405: "method_not_allowed"}.get(
            exc.status_code, "error"
        )
        return JSONResponse(
            {"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code, headers=exc.headers
        )

    # -- service -------------------------------------------------------------------------------

    @app.post("/api/login", responses=errors(401))
    def login(body: Login) -> JSONResponse:
        """Trade a token for the page's HttpOnly cookie (the token never reaches script)."""
        lookup = getattr(agent.store, "user_for_token", None)
        known = (token is not None and hmac.compare_digest(body.token.encode(), token.encode())) or (
            callable(lookup) and lookup(body.token) is not None
        )
        if not known:
            return JSONResponse({"error": {"code": "unauthorized", "message": "unknown token"}}, status_code=401)
        response = JSONResponse({"ok": True})
        response.set_cookie(COOKIE, body.token, httponly=True, samesite="strict")
        return response

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    @app.get("/api/models")
    def models(request: Request) -> dict[str, Any]:
        agent = agent_for(request)
        provider = agent.provider
        try:
            listed = provider.list_models()
        except MemchatError:
            listed = [provider.model] if provider.model else []
        return {
            "provider": provider.name,
            "default": agent.model or provider.model,
            "models": listed,
            "key_configured": provider.has_key or provider.name == "local",  # never the key itself
            "strategies": list(STRATEGIES),
            "tools": agent.tools.names(),
            "images": agent.images is not None,
        }

    # -- sessions --------------------------------------------------------------------------------

    @app.get("/api/sessions")
    def list_sessions(
        request: Request,
        q: str | None = Query(default=None, max_length=200),
        limit: int = Query(default=50, ge=1, le=500),
        offset: int = Query(default=0, ge=0),
    ) -> dict[str, Any]:
        agent = agent_for(request)
        found = agent.store.list_sessions()
        if q:
            needle = q.lower()
            found = [s for s in found if needle in s.name.lower() or needle in s.persona.lower()]
        page = found[offset : offset + limit]
        return {"sessions": [session_json(s) for s in page], "total": len(found)}

    @app.post("/api/sessions", status_code=201, responses=errors(409))
    def create_session(request: Request, body: NewSession) -> dict[str, Any]:
        agent = agent_for(request)
        persona = agent.persona if body.persona is None else body.persona
        info = agent.store.create_session(
            body.name or None, persona=persona, model=agent.model, provider=agent.provider.name
        )
        return session_json(info)

    @app.post("/api/sessions/import", status_code=201, responses=errors(409))
    def import_session(request: Request, body: Import) -> dict[str, Any]:
        agent = agent_for(request)
        from memchat.serialization import import_jsonl

        try:
            return session_json(import_jsonl(agent.store, body.text, body.name))
        except ImportFormatError as exc:
            raise HTTPException(400, i18n.describe_error(exc)) from None

    @app.get("/api/sessions/{session_id}", responses=errors(404))
    async def get_session(request: Request, session_id: SessionId) -> dict[str, Any]:
        agent = agent_for(request)
        info = await asyncio.to_thread(session, agent, session_id)
        out = session_json(info)
        out["running"] = await runs.running(info.id)
        return out

    @app.get("/api/sessions/{session_id}/messages", responses=errors(404))
    def messages(
        request: Request,
        session_id: SessionId,
        offset: int = Query(default=0, ge=0),
        limit: int = Query(default=200, ge=1, le=2000),
    ) -> dict[str, Any]:
        agent = agent_for(request)
        info = session(agent, session_id)
        stored = agent.store.messages(info.id)
        page = stored[offset : offset + limit]
        items = [message_json(m, offset + i + 1) for i, m in enumerate(page)]
        images = [
            {"id": im.id, "prompt": im.prompt, "after": im.after_seq, "url": f"/api/images/{im.id}"}
            for im in agent.store.images(info.id)
        ]
        return {"messages": items, "total": len(stored), "images": images}

    @app.patch("/api/sessions/{session_id}", responses=errors(404, 409))
    def change_session(request: Request, session_id: SessionId, body: SessionChange) -> dict[str, Any]:
        agent = agent_for(request)
        info = session(agent, session_id)
        updated = agent.store.update_session(
            info.id, name=body.name, persona=body.persona, memory=body.memory, model=body.model
        )
        if body.incognito is not None:
            updated = agent.set_incognito(updated, body.incognito)
        return session_json(updated)

    @app.delete("/api/sessions/{session_id}", status_code=204, responses=errors(404))
    async def delete_session(request: Request, session_id: SessionId) -> Response:
        agent = agent_for(request)
        info = session(agent, session_id)
        await runs.stop(info.id)
        await asyncio.to_thread(agent.store.delete_session, info.id)
        return Response(status_code=204)

    @app.post("/api/sessions/{session_id}/fork", status_code=201, responses=errors(404, 409))
    def fork(request: Request, session_id: SessionId, body: Fork) -> dict[str, Any]:
        agent = agent_for(request)
        info = session(agent, session_id)
        return session_json(agent.store.fork_session(info.id, body.name or None, at=body.at))

    @app.post("/api/sessions/{session_id}/undo", responses=errors(404, 409))
    async def undo(request: Request, session_id: SessionId) -> dict[str, Any]:
        agent = agent_for(request)
        info = await asyncio.to_thread(session, agent, session_id)
        if await runs.running(info.id):
            raise HTTPException(409, "a reply is being generated in this session")
        removed = await asyncio.to_thread(agent.store.remove_last_turn, info.id)
        return {"removed": len(removed)}

    @app.get(
        "/api/sessions/{session_id}/export",
        response_class=Response,
        responses={
            **text_content("application/x-ndjson", "text/markdown", description="the export (JSONL or Markdown)"),
            **errors(404),
        },
    )
    def export(request: Request, session_id: SessionId, format: Literal["jsonl", "md"] = "jsonl") -> PlainTextResponse:
        agent = agent_for(request)
        from memchat.serialization import export_jsonl, export_markdown

        info = session(agent, session_id)
        text = export_jsonl(agent.store, info.id) if format == "jsonl" else export_markdown(agent.store, info.id)
        kind = "application/x-ndjson" if format == "jsonl" else "text/markdown"
        disposition = f'attachment; filename="session-{info.id}.{format}"'
        return PlainTextResponse(text, media_type=kind, headers={"Content-Disposition": disposition})

    @app.get("/api/sessions/{session_id}/context", responses=errors(404))
    def context(
        request: Request,
        session_id: SessionId,
        text: str | None = Query(default=None, max_length=MAX_QUERY_TEXT, description=_QUERY_TEXT),
    ) -> Any:
        agent = agent_for(request)
        from memchat.serialization import context_view

        info = session(agent, session_id)
        plan = agent.context(info.id, text)
        return context_view(agent.store, info, plan, model=agent.model_for(info))

    # -- turns -----------------------------------------------------------------------------------

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

    @app.post(
        "/api/sessions/{session_id}/turns",
        response_class=Response,
        responses={**event_stream("the turn's events"), **errors(404, 409, 503)},
    )
    async def new_turn(request: Request, session_id: SessionId, body: NewTurn) -> StreamingResponse:
        agent = agent_for(request)
        info = await asyncio.to_thread(session, agent, session_id)
        try:
            run = await runs.start(info.id, lambda: agent.astream(info.id, body.text))
        except Busy:
            raise HTTPException(409, "a reply is already being generated in this session") from None
        return sse_response(run)

    @app.post(
        "/api/sessions/{session_id}/edit",
        response_class=Response,
        responses={**event_stream("the turn's events"), **errors(404, 409, 503)},
    )
    async def edit(request: Request, session_id: SessionId, body: Edit) -> StreamingResponse:
        """Edit a user message: a new branch (a fork up to just before it) gets the new text as
        its turn; the original stays as it was. The branch's id comes in ``X-Memchat-Session-Id``."""
        agent = agent_for(request)
        info = await asyncio.to_thread(session, agent, session_id)
        stored = await asyncio.to_thread(agent.store.messages, info.id)
        position = next((i for i, m in enumerate(stored) if m.id == body.message_id), None)
        if position is None or stored[position].role.value != "user":
            raise HTTPException(400, "that is not a user message of this session")
        branch = await asyncio.to_thread(
            agent.store.fork_session, info.id, f"{info.name} · edit {position + 1}", at=position
        )
        run = await runs.start(branch.id, lambda: agent.astream(branch.id, body.text))
        response = sse_response(run)
        response.headers["X-Memchat-Session-Id"] = str(branch.id)
        return response

    @app.get("/api/sessions/{session_id}/branches", responses=errors(404))
    def branches(request: Request, session_id: SessionId) -> dict[str, Any]:
        """The session's family: where it was forked from, and the forks of it and of its root."""
        agent = agent_for(request)
        info = session(agent, session_id)
        every = agent.store.list_sessions()
        root = info.parent_id if info.parent_id is not None and agent.store.find_session(info.parent_id) else info.id
        family = [s for s in every if s.id == root or s.parent_id == root]
        family.sort(key=lambda s: (s.id != root, s.id))
        return {"root": root, "sessions": [{**session_json(s), "fork_at": s.fork_at} for s in family]}

    @app.post(
        "/api/sessions/{session_id}/retry",
        response_class=Response,
        responses={**event_stream("the turn's events"), **errors(404, 409, 503)},
    )
    async def retry(request: Request, session_id: SessionId) -> StreamingResponse:
        agent = agent_for(request)
        info = await asyncio.to_thread(session, agent, session_id)
        try:
            run = await runs.start(info.id, lambda: agent.aretry(info.id))
        except Busy:
            raise HTTPException(409, "a reply is already being generated in this session") from None
        return sse_response(run)

    @app.get(
        "/api/sessions/{session_id}/stream",
        response_class=Response,
        responses={
            **event_stream("the running turn's events after `after`"),
            204: {"description": "no turn is running in this session"},
            **errors(404),
        },
    )
    async def reattach(request: Request, session_id: SessionId, after: int = Query(default=0, ge=0)) -> Response:
        agent = agent_for(request)
        info = await asyncio.to_thread(session, agent, session_id)
        events = await runs.follow(info.id, after)
        if events is None:
            return Response(status_code=204)
        return sse_response(events)

    @app.post("/api/sessions/{session_id}/stop", responses=errors(404))
    async def stop(request: Request, session_id: SessionId) -> dict[str, Any]:
        agent = agent_for(request)
        info = await asyncio.to_thread(session, agent, session_id)
        return {"stopped": await runs.stop(info.id)}

    @app.post("/api/sessions/{session_id}/pins", responses=errors(404))
    def pin(request: Request, session_id: SessionId, body: Pin) -> dict[str, Any]:
        agent = agent_for(request)
        info = session(agent, session_id)
        if body.pinned:
            agent.store.pin(info.id, body.message_id)
        else:
            agent.store.unpin(info.id, body.message_id)
        return {"pins": [m.id for m in agent.store.pins(info.id)]}

    # -- images ----------------------------------------------------------------------------------

    @app.post("/api/sessions/{session_id}/images", status_code=201, responses=errors(404, 502))
    def generate_image(request: Request, session_id: SessionId, body: NewImage) -> dict[str, Any]:
        agent = agent_for(request)
        from memchat.images.base import ImageRequest
        from memchat.tools.builtin import to_record

        info = session(agent, session_id)
        if agent.images is None:
            raise HTTPException(400, "no image provider is configured on the server (MEMCHAT_IMAGE_PROVIDER)")
        wanted = ImageRequest(
            prompt=body.prompt, size=body.size, negative_prompt=body.negative_prompt, seed=body.seed, n=body.n
        )
        from memchat.factory import images_dir

        made = agent.images.generate(wanted, dest_dir=(agent.images_dir or images_dir()) / str(info.id))
        saved = agent.store.add_images(info.id, [to_record(im) for im in made])
        return {"images": [{"id": im.id, "prompt": im.prompt, "url": f"/api/images/{im.id}"} for im in saved]}

    @app.get(
        "/api/images/{image_id}",
        response_class=Response,
        responses={
            200: {
                "description": "the image file",
                "content": {t: {} for t in ("image/png", "image/jpeg", "image/webp", "image/gif")},
            },
            **errors(404),
        },
    )
    def image_file(request: Request, image_id: ImageId) -> FileResponse:
        agent = agent_for(request)
        from memchat.factory import images_dir

        for info in agent.store.list_sessions():  # owner-scoped: only this user's sessions
            for im in agent.store.images(info.id):
                if im.id == image_id:
                    path = Path(im.path).resolve()
                    base = (agent.images_dir or images_dir()).resolve()
                    if not path.is_relative_to(base) or not path.is_file():
                        raise HTTPException(404, "no such image")
                    return FileResponse(path, media_type=im.mime)
        raise HTTPException(404, "no such image")

    # -- long-term memories (the caller's own; memories_api.py) -----------------------------------

    from memchat.server.memories_api import memory_router

    app.include_router(memory_router(agent_for))

    # -- the OpenAI-compatible endpoint and the page ------------------------------------------------

    from memchat.server.openai_api import add_openai_routes

    add_openai_routes(app, agent_for, runs)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        # never a cookie here: anyone who can load the page would get the token with it; the page
        # asks for the token once and trades it for the HttpOnly cookie at /api/login
        return FileResponse(WEB / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    lookup = getattr(agent.store, "user_for_token", None)
    has_users = bool(getattr(agent.store, "users", lambda: [])())
    users = lookup if callable(lookup) and has_users else None
    return Guard(app, hosts=hosts or ["127.0.0.1", "localhost", "[::1]"], token=token, users=users)


def from_env() -> Any:
    """The application as ``memchat serve --workers N`` starts it in each worker: settings from
    the environment (``serve`` exports its flags there), ``MEMCHAT_SERVER_TOKEN``,
    ``MEMCHAT_REDIS_URL`` and ``MEMCHAT_ALLOWED_HOSTS`` (comma-separated)."""
    import os

    from memchat.config import resolve
    from memchat.factory import make_agent, open_store

    settings = resolve()
    agent = make_agent(settings, store=open_store(settings.db, migrate=os.environ.get("MEMCHAT_NO_MIGRATE") != "1"))
    hosts = [h for h in os.environ.get("MEMCHAT_ALLOWED_HOSTS", "").split(",") if h] or None
    return create_app(
        agent,
        hosts=hosts,
        token=os.environ.get("MEMCHAT_SERVER_TOKEN") or None,
        redis_url=os.environ.get("MEMCHAT_REDIS_URL") or None,
    )
