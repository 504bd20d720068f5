"""Images: generate one for a session (saved under the images directory, one folder a session)
and serve a generated image's file — only the caller's, only from the images directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from memchat.server.common import CallerAgent, ImageId, SessionId, find_session
from memchat.server.errors import errors

router = APIRouter(prefix="/api")


class NewImage(BaseModel):
    prompt: str = Field(min_length=1, max_length=1999)
    size: str | None = Field(default=None, max_length=20)
    negative_prompt: str | None = Field(default=None, max_length=1999)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    n: int = Field(default=1, ge=1, le=4)


@router.post("/sessions/{session_id}/images", status_code=201, responses=errors(404, 502))
def generate_image(agent: CallerAgent, session_id: SessionId, body: NewImage) -> dict[str, Any]:
    from memchat.factory import images_dir
    from memchat.images.base import ImageRequest
    from memchat.tools.builtin import to_record

    info = find_session(agent, session_id)
    if agent.images is None:
        raise HTTPException(400, "no image provider is configured on the server (MEMCHAT_IMAGE_PROVIDER)")
    wanted = ImageRequest(
        prompt=body.prompt, size=body.size, negative_prompt=body.negative_prompt, seed=body.seed, n=body.n
    )
    made = agent.images.generate(wanted, dest_dir=(agent.images_dir or images_dir()) / str(info.id))
    saved = agent.store.add_images(info.id, [to_record(im) for im in made])
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
def image_file(agent: CallerAgent, image_id: ImageId) -> FileResponse:
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
