"""What a file is, read from its bytes: the magic numbers of the images and PDF memchat takes,
else UTF-8 text without NULs. The name's extension and a declared MIME type are checked against
the bytes, never trusted alone."""

from __future__ import annotations

import mimetypes
from pathlib import PurePath

from memchat.errors import AttachmentError

#: (magic bytes at offset 0, media type)
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)
#: the binary types memchat takes (anything else must be text)
BINARY_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
#: extensions that name one of those types
_BINARY_EXTENSIONS = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".pdf": "application/pdf",
}
#: a text file's type by extension, where ``mimetypes`` does not know it or says otherwise
_TEXT_TYPES = {".md": "text/markdown", ".py": "text/x-python", ".toml": "text/x-toml", ".ts": "text/x-typescript"}


def binary_type(data: bytes) -> str | None:
    """The image or PDF type ``data`` starts with (None: none of them)."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_text(data: bytes) -> bool:
    """UTF-8 with no NUL: text memchat can put in a message."""
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def text_type(name: str) -> str:
    """A text file's media type from its name (``text/plain`` when nothing better is known)."""
    suffix = PurePath(name).suffix.lower()
    if suffix in _TEXT_TYPES:
        return _TEXT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    if guessed and (guessed.startswith("text/") or guessed in ("application/json", "application/xml")):
        return guessed
    return "text/plain"


def media_type(name: str, data: bytes, declared: str | None = None) -> str:
    """The media type of ``data``, read from its bytes, checked against the name's extension and
    ``declared`` (a MIME type the caller gave); a mismatch or a type memchat does not take is
    an ``AttachmentError`` naming the file."""
    found = binary_type(data)
    named = _BINARY_EXTENSIONS.get(PurePath(name).suffix.lower())
    wanted = (declared or "").split(";")[0].strip().lower() or None
    if wanted in ("application/octet-stream", "binary/octet-stream"):
        wanted = None
    if found is not None:
        if named is not None and named != found:
            why = f"{name} is named as {named} but its bytes are {found}"
            raise AttachmentError(why, name=name, reason="named_as", named=named, found=found)
        if wanted is not None and wanted != found and not (wanted == "image/jpg" and found == "image/jpeg"):
            why = f"{name} was sent as {wanted} but its bytes are {found}"
            raise AttachmentError(why, name=name, reason="declared", declared=wanted, found=found)
        return found
    if named is not None:
        why = f"{name} is not an {named} file (its bytes do not start as one)"
        raise AttachmentError(why, name=name, reason="not_named_type", named=named)
    if wanted is not None and (wanted in BINARY_TYPES or wanted.startswith("image/")):
        why = f"{name} was sent as {wanted} but its bytes are not"
        raise AttachmentError(why, name=name, reason="declared_not", declared=wanted)
    if not is_text(data):
        why = f"{name} is neither text (UTF-8) nor an image (PNG, JPEG, GIF, WebP) or a PDF"
        raise AttachmentError(why, name=name, reason="unknown_type")
    return text_type(name)
