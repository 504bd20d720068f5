"""The files of an OpenAI chat message's content parts: ``image_url`` (a ``data:`` URI, or an
https URL fetched with the download checks) and ``file`` (``file_data`` base64 or a data URI,
with ``filename``); text parts are the message's text. Anything else is refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memchat.attachments import from_base64, from_bytes, from_data_uri
from memchat.attachments.load import too_large
from memchat.domain import Attachment
from memchat.errors import AttachmentError

#: the parts that carry no file
_TEXT = ("text", "input_text")


def content_files(parts: list[Any], limit: int) -> list[Attachment]:
    """The attachments of a message's content parts, in order."""
    files: list[Attachment] = []
    for i, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT:
            continue
        if kind == "image_url":
            files.append(_image(part.get("image_url"), i, limit))
        elif kind == "file":
            files.append(_file(part.get("file"), i, limit))
        else:
            raise AttachmentError(f"content part {i} has type {kind!r}: memchat takes text, image_url and file parts")
    return files


def _image(value: Any, i: int, limit: int) -> Attachment:
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise AttachmentError(f"content part {i}: image_url needs a 'url' (a data: URI or an https URL)")
    if url.startswith("data:"):
        found = from_data_uri(url, limit=limit)
    elif url.startswith(("http://", "https://")):
        found = from_url(url, limit=limit)
    else:
        raise AttachmentError(f"content part {i}: an image URL must be a data: URI or an https URL")
    if not found.is_image:
        raise AttachmentError(f"content part {i}: the image_url is {found.media_type}, not an image")
    return found


def _file(value: Any, i: int, limit: int) -> Attachment:
    if not isinstance(value, dict):
        raise AttachmentError(f"content part {i}: a file part needs a 'file' object")
    name = value.get("filename")
    data = value.get("file_data")
    if not isinstance(data, str) or not data:
        what = "file_id is not supported" if value.get("file_id") else "file_data is missing"
        raise AttachmentError(f"content part {i}: {what}; send the file's bytes as file_data (base64)")
    name = name if isinstance(name, str) and name.strip() else "file"
    if data.startswith("data:"):
        return from_data_uri(data, name, limit=limit)
    return from_base64(name, data, limit=limit)


def from_url(url: str, *, limit: int, timeout: float = 20.0) -> Attachment:
    """An image fetched from an https URL on a public address (private and loopback addresses,
    plain http, other redirects and bodies that are not images are refused: ``images/download``)."""
    import tempfile
    from urllib.parse import urlsplit

    from memchat.errors import ImageDownloadError
    from memchat.images.download import fetch
    from memchat.providers._httpx import httpx

    name = Path(urlsplit(url).path).name or "image"
    try:
        with tempfile.TemporaryDirectory(prefix="memchat-url-") as tmp, httpx.Client(timeout=timeout) as client:
            path, mime, _ = fetch(client, url, trusted="", dest_dir=Path(tmp), max_bytes=limit)
            data = path.read_bytes()
    except ImageDownloadError as exc:
        message = str(exc.detail)
        if "limit" in message:
            raise too_large(name, limit + 1, limit) from None
        raise AttachmentError(f"cannot fetch the image {url[:200]}: {message}", name=name) from None
    return from_bytes(name, data, declared=mime, limit=limit)
