"""Accounts and health: trade a token for the page's cookie, the server's health, and the
models, memory strategies and tools on offer to the caller."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from memchat import __version__, i18n
from memchat.errors import MemchatError
from memchat.memory.plan import STRATEGIES
from memchat.server.common import CallerAgent, ThisServer
from memchat.server.errors import errors
from memchat.server.security import COOKIE
from memchat.stores.base import Accounts

router = APIRouter(prefix="/api")


class Login(BaseModel):
    token: str = Field(min_length=1, max_length=500)


@router.post("/login", responses=errors(401))
def login(server: ThisServer, body: Login) -> JSONResponse:
    """Trade a token for the page's HttpOnly cookie (the token never reaches script)."""
    token = server.token
    accounts = server.agent.store
    known = (token is not None and hmac.compare_digest(body.token.encode(), token.encode())) or (
        isinstance(accounts, Accounts) and accounts.user_for_token(body.token) is not None
    )
    if not known:
        refused = {"error": {"code": "unauthorized", "message": i18n.t("http.unknown_token")}}
        return JSONResponse(refused, status_code=401)
    response = JSONResponse({"ok": True})
    response.set_cookie(COOKIE, body.token, httponly=True, samesite="strict")
    return response


@router.get("/health")
def health() -> dict[str, Any]:
    return {"ok": True, "version": __version__}


@router.get("/models")
def models(agent: CallerAgent) -> dict[str, Any]:
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


@router.get("/mcp")
def mcp_servers(agent: CallerAgent) -> dict[str, Any]:
    """The MCP servers of this server (started on first use): state, tools, resources, prompts.
    Env and header values are never sent (``***``)."""
    shown: list[dict[str, Any]] = []
    for source in agent.tools.sources:
        servers = getattr(source, "servers", None)
        if servers is None:
            continue
        for s in servers():
            shown.append(
                {
                    "name": s.name,
                    "transport": s.transport,
                    "state": s.state,
                    "error": s.error,
                    "env": s.env,
                    "headers": s.headers,
                    "tools": [
                        {"name": t.function, "server_name": t.name, "description": t.description, "asks": t.approval}
                        for t in s.tools
                    ],
                    "resources": [{"uri": uri, "name": name} for uri, name in s.resources],
                    "prompts": [{"name": name, "description": text} for name, text in s.prompts],
                }
            )
    return {"servers": shown}
