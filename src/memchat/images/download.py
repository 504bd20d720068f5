"""Fetch a generated image and save it, refusing what could hurt: other schemes than https
(except the service's own host), private and loopback addresses of other hosts (SSRF),
redirects to other hosts, oversized bodies, bodies that are not images."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from memchat.errors import ImageDownloadError
from memchat.providers._httpx import httpx

#: largest image accepted
MAX_BYTES = 20 * 1024 * 1024
_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def check_url(url: str, trusted: str) -> None:
    """Refuse ``url`` unless it is https to a public address, or on the ``trusted`` origin
    (the configured base URL's own scheme, host and port)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageDownloadError(f"refused URL {url[:200]!r}: not an http(s) address")
    if trusted and _origin(url) == _origin(trusted):
        return
    if parts.scheme != "https":
        raise ImageDownloadError(f"refused URL {url[:200]!r}: only https downloads are allowed")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ImageDownloadError(f"cannot resolve {parts.hostname}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            raise ImageDownloadError(f"refused URL {url[:200]!r}: {parts.hostname} is a private address ({address})")


def fetch(
    client: httpx.Client, url: str, *, trusted: str, dest_dir: Path, max_bytes: int = MAX_BYTES
) -> tuple[Path, str, int]:
    """Download ``url`` into ``dest_dir`` as ``<uuid>.<ext>`` (atomically); (path, mime, bytes)."""
    for _ in range(4):  # the URL, then at most 3 redirects, each checked again
        check_url(url, trusted)
        with client.stream("GET", url, follow_redirects=False) as response:
            if response.status_code in (301, 302, 303, 307, 308):
                url = urljoin(url, response.headers.get("location", ""))
                continue
            if response.status_code != 200:
                raise ImageDownloadError(f"HTTP {response.status_code} for the image")
            mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if mime not in _MAGIC:
                raise ImageDownloadError(f"the file is not an image (content type {mime or 'missing'!r})")
            return _save(response, mime, dest_dir, max_bytes)
    raise ImageDownloadError("too many redirects")


def _save(response: httpx.Response, mime: str, dest_dir: Path, max_bytes: int) -> tuple[Path, str, int]:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ImageDownloadError(f"the image is {int(declared):,} bytes; the limit is {max_bytes:,}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".part-")
    try:
        total = 0
        head = b""
        with os.fdopen(fd, "wb") as out:
            for block in response.iter_bytes():
                total += len(block)
                if total > max_bytes:
                    raise ImageDownloadError(f"the image is over the {max_bytes:,}-byte limit")
                if len(head) < 16:
                    head += block[: 16 - len(head)]
                out.write(block)
        return _publish(Path(tmp), head, mime, dest_dir, total)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_bytes(data: bytes, mime: str, dest_dir: Path) -> tuple[Path, str, int]:
    """Save an image that came inline (``b64_json``), with the same checks."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    mime = sniff(data) or mime
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return _publish(Path(tmp), data[:16], mime, dest_dir, len(data))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sniff(head: bytes) -> str | None:
    for mime, magics in _MAGIC.items():
        if any(head.startswith(m) for m in magics) and (mime != "image/webp" or head[8:12] == b"WEBP"):
            return mime
    return None


def _publish(tmp: Path, head: bytes, mime: str, dest_dir: Path, size: int) -> tuple[Path, str, int]:
    if sniff(head) != mime:
        raise ImageDownloadError(f"the file's bytes are not a {mime} image")
    final = dest_dir / f"{uuid.uuid4().hex}.{_EXT[mime]}"
    os.replace(tmp, final)
    return final, mime, size
