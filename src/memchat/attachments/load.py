"""Reading a file to attach: from a path, from bytes, from a ``data:`` URI. Every one is checked
for size (before it is read whole) and type (by its bytes) and hashed (sha256)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from pathlib import Path

from memchat.attachments.sniff import media_type
from memchat.domain import Attachment, human_size
from memchat.errors import AttachmentError, AttachmentTooLarge

#: the default size limit of one file (``max_attachment``)
DEFAULT_LIMIT = 20 * 1024 * 1024
_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*)(;base64)?,(.*)$", re.S | re.I)


def too_large(name: str, size: int, limit: int) -> AttachmentTooLarge:
    return AttachmentTooLarge(
        f"{name} is {human_size(size)}, over the limit of {human_size(limit)}",
        name=name,
        size=human_size(size),
        limit=human_size(limit),
    )


def from_bytes(name: str, data: bytes, *, declared: str | None = None, limit: int = DEFAULT_LIMIT) -> Attachment:
    """An attachment of ``data`` named ``name`` (a path's last part is kept)."""
    name = (Path(name).name if name else "") or "file"
    if len(data) > limit:
        raise too_large(name, len(data), limit)
    if not data:
        raise AttachmentError(f"{name} is empty", name=name, reason="empty")
    kind = media_type(name, data, declared)
    return Attachment(name, kind, len(data), hashlib.sha256(data).hexdigest(), data)


def from_path(path: str | Path, *, limit: int = DEFAULT_LIMIT) -> Attachment:
    """The file at ``path``; one that is too large is refused before it is read."""
    p = Path(path).expanduser()
    try:
        size = p.stat().st_size
        if p.is_dir():
            raise AttachmentError(f"{path} is a directory, not a file", name=str(path))
        if size > limit:
            raise too_large(p.name, size, limit)
        with p.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        why = f"cannot read {path}: {exc.strerror or exc}"
        raise AttachmentError(why, name=str(path), reason="unreadable") from None
    return from_bytes(p.name, data, limit=limit)


def from_base64(name: str, text: str, *, declared: str | None = None, limit: int = DEFAULT_LIMIT) -> Attachment:
    """An attachment sent as base64 text (a JSON body, a ``file`` content part)."""
    if len(text) > (limit + 2) // 3 * 4 + 8:
        raise too_large(name or "file", len(text) * 3 // 4, limit)
    try:
        data = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        shown = name or "file"
        raise AttachmentError(f"{shown} is not valid base64", name=shown, reason="bad_base64") from None
    return from_bytes(name, data, declared=declared, limit=limit)


def from_data_uri(uri: str, name: str | None = None, *, limit: int = DEFAULT_LIMIT) -> Attachment:
    """An attachment from a ``data:[type][;base64],…`` URI."""
    m = _DATA_URI.match(uri.strip()[: limit * 2])
    if m is None or not m.group(3):
        raise AttachmentError("a data URI must be data:<type>;base64,<data>", name=name or "file", reason="bad_uri")
    declared = m.group(1)
    if not name:
        ext = (declared or "").split("/")[-1].replace("jpeg", "jpg").replace("+xml", "")
        name = f"image.{ext}" if declared and declared.startswith("image/") else "file"
    return from_base64(name, m.group(4), declared=declared, limit=limit)
