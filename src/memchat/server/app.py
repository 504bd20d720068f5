"""The FastAPI application: the JSON API under ``/api``, the OpenAI-compatible endpoint under
``/v1`` (``openai_api.py``), and the web page (static files, ``memchat/web``).

The routes live in routers by area — ``accounts_api`` (login, health, models), ``sessions_api``,
``turns_api`` (turns and their streams), ``context_api``, ``images_api``, ``memories_api``,
``openai_api`` and ``page`` — and reach the agent of the user who asks through one dependency
(``common.CallerAgent``); errors become statuses through one table (``errors.STATUS``).

Every route goes through the same ``Agent`` as the REPL and ``memchat ask``; a turn runs as a
server task (``runs.py``) whose events the client reads as Server-Sent Events."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from memchat import __version__
from memchat.agent import Agent
from memchat.server import (
    accounts_api,
    attachments_api,
    context_api,
    images_api,
    memories_api,
    openai_api,
    sessions_api,
    turns_api,
)
from memchat.server.common import Server
from memchat.server.errors import COMMON_ERRORS, add_error_handlers
from memchat.server.fanout import RedisFanout
from memchat.server.page import add_page
from memchat.server.runs import Runs
from memchat.server.security import Guard
from memchat.service import Sessions
from memchat.stores.base import Accounts


def _fanout(agent: Agent, redis_url: str | None) -> RedisFanout | None:
    """With ``redis_url``, the turns of this database shared with the other workers."""
    if not redis_url:
        return None
    import hashlib
    import os

    database = hashlib.sha256(str(getattr(agent.store, "path", "")).encode()).hexdigest()[:16]
    return RedisFanout(redis_url, worker=f"{os.getpid()}", namespace=database)


async def warm_up(app: FastAPI, agent: Agent) -> None:
    """What the first requests would pay, done before the server answers any: the framework's
    own setup of each route (built on the first request that reaches it: ~60 ms of the event
    loop, under the first turns) and the provider's connection pool (and its imports)."""
    for path in _route_paths(app.routes):
        concrete = re.sub(r"\{[^}]*\}", "0", path)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "OPTIONS",  # no route answers it: nothing runs, every route on the way is set up
            "scheme": "http",
            "path": concrete,
            "raw_path": concrete.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 0),
            "app": app,
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(_: Any) -> None:
            return None

        with contextlib.suppress(Exception):  # a warm-up never stops the server from starting
            await app(scope, receive, send)
    with contextlib.suppress(Exception):
        await agent.provider.aprepare()
    await asyncio.to_thread(lambda: None)  # the loop's default pool, which routes use


def _route_paths(routes: Any) -> list[str]:
    """Every route's path, routers included (however the framework nests them)."""
    paths: list[str] = []
    for route in routes or ():
        path = getattr(route, "path", None)
        if isinstance(path, str):
            paths.append(path)
            continue
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        paths += _route_paths(inner if inner is not None else getattr(route, "routes", None))
    return paths


def build_api(agent: Agent, *, token: str | None = None, redis_url: str | None = None) -> FastAPI:
    """The FastAPI application serving ``agent``, before the ``Guard``; with ``redis_url``,
    turns are shared with the other workers of the same database (``fanout.py``)."""
    fanout = _fanout(agent, redis_url)
    runs = Runs(images_of=Sessions(agent.store).images, fanout=fanout)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await warm_up(app, agent)
        if fanout is not None:
            await fanout.listen(runs.stop_local)  # stop requests from any worker
        yield
        await runs.close()  # a server shutting down stops its turns (kept as stopped)
        if fanout is not None:
            await fanout.close()

    app = FastAPI(
        title="memchat",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        responses=COMMON_ERRORS,
    )
    app.state.server = Server(agent, runs, token=token)
    add_error_handlers(app)
    app.include_router(turns_api.new_chat)
    areas = (accounts_api, sessions_api, context_api, turns_api, images_api, attachments_api, memories_api, openai_api)
    for area in areas:
        app.include_router(area.router)
    add_page(app)
    return app


def create_app(
    agent: Agent, *, hosts: list[str] | None = None, token: str | None = None, redis_url: str | None = None
) -> Guard:
    """The ASGI application serving ``agent``: ``build_api``'s app wrapped in the ``Guard``
    (Host, token or account, origin, body size, the language of the answer)."""
    app = build_api(agent, token=token, redis_url=redis_url)
    store = agent.store
    users = store.user_for_token if isinstance(store, Accounts) and store.users() else None
    return Guard(
        app,
        hosts=hosts or ["127.0.0.1", "localhost", "[::1]"],
        token=token,
        users=users,
        max_upload=upload_limit(agent.max_attachment),
    )


def upload_limit(max_attachment: int) -> int:
    """The largest body of a request that may carry files (a turn, ``/v1/chat/completions``):
    ``MAX_FILES`` of the largest size, in base64, and room for the rest."""
    return (max_attachment + 2) // 3 * 4 * attachments_api.MAX_FILES + 1_000_000


def turn_runs_of(app: object) -> Runs | None:
    """The turns of the memchat app inside ``app`` (its middlewares, uvicorn's included, each
    keep the next in ``.app``); None when there is none."""
    for _ in range(16):
        server = getattr(getattr(app, "state", None), "server", None)
        if isinstance(server, Server):
            return server.runs
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def from_env() -> Guard:
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
