"""Attachments over HTTP: files sent with a turn in its JSON body (base64, ``Upload``), read and
checked by the core before the turn starts, and each stored file served back to its owner only
(``GET /api/attachments/{sha256}``: another account's hash is a 404)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field

from memchat import i18n
from memchat.attachments import from_base64
from memchat.domain import Attachment
from memchat.server.common import CallerChats, text_content
from memchat.server.errors import errors

router = APIRouter(prefix="/api")
#: files one turn may carry
MAX_FILES = 8
_HASH = re.compile(r"^[0-9a-f]{64}$")


class Upload(BaseModel):
    """A file sent with a message: its name, the type the client says (checked against the
    bytes, never trusted alone) and its bytes in base64."""

    name: str = Field(min_length=1, max_length=255)
    type: str | None = Field(default=None, max_length=100)
    data: str = Field(min_length=1)


def read_uploads(uploads: Sequence[Upload], limit: int) -> list[Attachment]:
    """The uploads as attachments (an ``AttachmentError`` for the first that is refused)."""
    return [from_base64(u.name, u.data, declared=u.type, limit=limit) for u in uploads]


#: how an attached file is served: an image shown in the page, anything else downloaded
_SHOWN = ("image/png", "image/jpeg", "image/gif", "image/webp")


@router.get(
    "/attachments/{sha256}",
    response_class=Response,
    responses={**text_content(*_SHOWN, "application/octet-stream", description="the file"), **errors(404)},
)
def attachment(chats: CallerChats, sha256: str = PathParam(max_length=200)) -> Response:
    """The bytes of a file the caller attached (by the sha256 a message names)."""
    found = chats.attachment(sha256) if _HASH.match(sha256) else None
    if found is None:
        raise HTTPException(404, i18n.t("http.no_attachment"))
    data, kind = found
    shown = kind in _SHOWN
    return Response(
        data,
        media_type=kind if shown else "application/octet-stream",
        headers={
            "Content-Disposition": "inline" if shown else "attachment",
            "Cache-Control": "private, max-age=31536000, immutable",
        },
    )
