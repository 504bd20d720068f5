"""Images: generate one for a session (saved under the images directory, one folder a session)
and serve a generated image's file — only the caller's, only from the images directory."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from memchat import i18n
from memchat.images.base import ImageRequest
from memchat.server.common import CallerChats, ImageId, SessionId, find_session
from memchat.server.errors import errors

router = APIRouter(prefix="/api")


class NewImage(BaseModel):
    prompt: str = Field(min_length=1, max_length=1999)
    size: str | None = Field(default=None, max_length=20)
    negative_prompt: str | None = Field(default=None, max_length=1999)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    n: int = Field(default=1, ge=1, le=4)


@router.post("/sessions/{session_id}/images", status_code=201, responses=errors(404, 502))
def generate_image(chats: CallerChats, session_id: SessionId, body: NewImage) -> dict[str, Any]:
    info = find_session(chats, session_id)
    wanted = ImageRequest(
        prompt=body.prompt, size=body.size, negative_prompt=body.negative_prompt, seed=body.seed, n=body.n
    )
    saved = chats.generate_image(info.id, wanted)
    return {"images": [{"id": im.id, "prompt": im.prompt, "url": f"/api/images/{im.id}"} for im in saved]}


@router.get(
    "/images/{image_id}",
    response_class=Response,
    responses={
        200: {
            "description": "the image file",
            "content": {t: {} for t in ("image/png", "image/jpeg", "image/webp", "image/gif")},
        },
        **errors(404),
    },
)
def image_file(chats: CallerChats, image_id: ImageId) -> FileResponse:
    found = chats.image_file(image_id)  # owner-scoped: only this user's sessions' images
    if found is None:
        raise HTTPException(404, i18n.t("http.no_image"))
    image, path = found
    return FileResponse(path, media_type=image.mime)
