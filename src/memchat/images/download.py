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


#: IPv6 forms that carry an IPv4 address (IPv4-compatible, NAT64): judged by that address
_EMBEDDING = (ipaddress.ip_network("::/96"), ipaddress.ip_network("64:ff9b::/96"))
#: the only IPv6 addresses that may be public (global unicast)
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``address`` is a public unicast address (not private, loopback, link-local,
    site-local, reserved, multicast — nor an IPv6 address wrapping one of those)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in net for net in _EMBEDDING):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return public(embedded)
        if address not in _GLOBAL_UNICAST or address in _LOCAL_NAT64:
            return False
    return address.is_global and not address.is_multicast


def check_url(url: str, trusted: str) -> str | None:
    """Refuse ``url`` unless it is https to a public address, or on the ``trusted`` origin
    (the configured base URL's own scheme, host and port). Returns the vetted address to
    connect to (so a second DNS answer cannot differ), or None on the trusted origin."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageDownloadError(f"refused URL {url[:200]!r}: not an http(s) address")
    if trusted and _origin(url) == _origin(trusted):
        return None
    if parts.scheme != "https":
        raise ImageDownloadError(f"refused URL {url[:200]!r}: only https downloads are allowed")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:
        raise ImageDownloadError(f"cannot resolve {parts.hostname}: {exc}") from exc
    vetted: str | None = None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not public(address):
            shown = (
                address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
            )
            raise ImageDownloadError(f"refused URL {url[:200]!r}: {parts.hostname} is a private address ({shown})")
        vetted = vetted or str(address)
    if vetted is None:
        raise ImageDownloadError(f"cannot resolve {parts.hostname}: no address")
    return vetted


def fetch(
    client: httpx.Client, url: str, *, trusted: str, dest_dir: Path, max_bytes: int = MAX_BYTES
) -> tuple[Path, str, int]:
    """Download ``url`` into ``dest_dir`` as ``<uuid>.<ext>`` (atomically); (path, mime, bytes)."""
    for _ in range(4):  # the URL, then at most 3 redirects, each checked again
        request = _request(client, url, check_url(url, trusted))
        try:
            response = client.send(request, stream=True, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise ImageDownloadError(f"cannot download the image from {urlsplit(url).hostname}: {exc}") from None
        try:
            if response.status_code in (301, 302, 303, 307, 308):
                url = urljoin(url, response.headers.get("location", ""))
                continue
            if response.status_code != 200:
                raise ImageDownloadError(f"HTTP {response.status_code} for the image")
            mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if mime not in _MAGIC:
                raise ImageDownloadError(f"the file is not an image (content type {mime or 'missing'!r})")
            return _save(response, mime, dest_dir, max_bytes)
        except httpx.HTTPError as exc:
            raise ImageDownloadError(f"the image download failed: {exc}") from None
        finally:
            response.close()
    raise ImageDownloadError("too many redirects")


def _request(client: httpx.Client, url: str, pinned: str | None) -> httpx.Request:
    """The GET for ``url``: on the service's own origin as configured (with its key); anywhere
    else without the client's ``Authorization`` (the key is the service's, not a CDN's) and
    connected to the ``pinned`` address that was checked (Host and TLS name stay the URL's)."""
    request = client.build_request("GET", url)
    if pinned is not None:
        request.headers.pop("authorization", None)
        request.extensions["sni_hostname"] = request.url.host
        request.url = request.url.copy_with(host=pinned)
    return request


def _save(response: httpx.Response, mime: str, dest_dir: Path, max_bytes: int) -> tuple[Path, str, int]:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ImageDownloadError(f"the image is {int(declared):,} bytes; the limit is {max_bytes:,}")
    dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
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
    dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
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
