"""What the model is sent for a message with attachments: text files (and a PDF's text) as
fenced, named blocks after the message's text; images as OpenAI ``image_url`` content parts
with a ``data:`` URI. Only the message of the turn carries them: in later turns the message is
sent with a description line per file (``Message.described``), so a window never carries an
image twice and older turns cost their text only."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from memchat.domain import Attachment
from memchat.errors import AttachmentError

_LANGUAGES = {
    ".py": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".ts": "typescript",
    ".md": "markdown",
    ".json": "json",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".sh": "bash",
    ".html": "html",
    ".css": "css",
    ".sql": "sql",
    ".rs": "rust",
    ".go": "go",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".java": "java",
    ".rb": "ruby",
    ".txt": "text",
}


def file_text(attachment: Attachment) -> str:
    """The text a file gives the model: a text file's own, a PDF's extracted text."""
    if attachment.data is None:
        raise AttachmentError(f"the bytes of {attachment.name} are not available", name=attachment.name)
    if attachment.media_type == "application/pdf":
        return pdf_text(attachment.name, attachment.data)
    return attachment.data.decode("utf-8")


def pdf_text(name: str, data: bytes) -> str:
    """The text of a PDF's pages (pypdf, the ``memchat[pdf]`` extra)."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:
        why = f"reading the text of {name} needs pypdf: pip install 'memchat[pdf]'"
        raise AttachmentError(why, name=name, reason="needs_pypdf") from None
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise AttachmentError(f"{name} is not a PDF pypdf can read ({exc})", name=name) from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise AttachmentError(f"{name} has no text to read (a scanned PDF?)", name=name)
    return text


def fenced(name: str, text: str) -> str:
    """``text`` as a fenced block titled with the file's name (a fence longer than any inside)."""
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * max(3, longest + 1)
    language = _LANGUAGES.get(PurePath(name).suffix.lower(), "text")
    return f"{fence}{language} title={name}\n{text.rstrip()}\n{fence}"


def text_with_files(text: str, attachments: Sequence[Attachment]) -> str:
    """The message's text followed by each text file (and PDF) as a fenced block."""
    blocks = [fenced(a.name, file_text(a)) for a in attachments if not a.is_image]
    return "\n\n".join(b for b in (text, *blocks) if b)


def image_part(attachment: Attachment) -> dict[str, Any]:
    """The OpenAI content part of an image."""
    if attachment.data is None:
        raise AttachmentError(f"the bytes of {attachment.name} are not available", name=attachment.name)
    encoded = base64.b64encode(attachment.data).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:{attachment.media_type};base64,{encoded}"}}


def wire_content(text: str, attachments: Sequence[Attachment]) -> str | list[dict[str, Any]]:
    """A user message's ``content`` as sent with its turn: text (with the files' text) alone when
    there is no image, else a text part and one ``image_url`` part per image, in order."""
    whole = [a for a in attachments if a.data is not None]
    missing = "\n".join(a.description for a in attachments if a.data is None)  # bytes no longer stored
    body = "\n".join(b for b in (text_with_files(text, whole), missing) if b)
    images = [a for a in whole if a.is_image]
    if not images:
        return body
    parts: list[dict[str, Any]] = [{"type": "text", "text": body}] if body else []
    return parts + [image_part(a) for a in images]
