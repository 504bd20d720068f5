"""The web page: ``/`` and its static files (``memchat/web``): no framework, no build step."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).resolve().parent.parent / "web"

router = APIRouter()


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    # never a cookie here: anyone who can load the page would get the token with it; the page
    # asks for the token once and trades it for the HttpOnly cookie at /api/login
    return FileResponse(WEB / "index.html", media_type="text/html")


def add_page(app: FastAPI) -> None:
    """``/`` and ``/static``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=WEB), name="static")
