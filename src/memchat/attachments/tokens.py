"""What an image costs a call, by OpenAI's published rule for ``detail: auto/high``: the image is
fitted into 2048 × 2048, then its shorter side brought down to 768; each 512 × 512 tile costs 170
tokens, plus 85. The size is read from the image's header (PNG, GIF, JPEG, WebP); an image whose
size cannot be read counts as ``IMAGE_TOKENS``."""

from __future__ import annotations

import math

#: an image whose size cannot be read (and the order of a typical photo's cost)
IMAGE_TOKENS = 800


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, GIF, JPEG or WebP (None: not readable)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind = data[12:16]
    if kind == b"VP8 " and len(data) >= 30:
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if kind == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def image_tokens(data: bytes) -> int:
    """The tokens an image costs a call (``IMAGE_TOKENS`` when its size cannot be read)."""
    size = image_size(data)
    if size is None or min(size) <= 0:
        return IMAGE_TOKENS
    width, height = float(size[0]), float(size[1])
    fit = min(1.0, 2048 / max(width, height))
    width, height = width * fit, height * fit
    short = min(width, height)
    if short > 768:
        width, height = width * 768 / short, height * 768 / short
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)
