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
