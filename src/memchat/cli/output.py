"""Output and file helpers of the non-chat commands: tables, JSON, times, exports and imports."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from memchat.cli.cli_strings import t

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from memchat.domain import Chunk


def when(value: datetime | None) -> str:
    """A stored time in local time to the minute, or ``-``."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def print_json(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns aligned by display width (CJK characters take two cells)."""
    import unicodedata

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    widths = [max(width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [cell + " " * (w - width(cell)) for cell, w in zip(row, widths, strict=True)]
        sys.stdout.write("  ".join(cells).rstrip() + "\n")


def write_out(text: str, output: str | None) -> None:
    """``text`` as UTF-8 to ``output`` (a file) or stdout: exports are files, whatever the locale."""
    data = text.encode("utf-8")
    if output is None or output == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    from memchat.errors import MemchatError

    try:
        with open(output, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise MemchatError(t("cli.cannot_write", path=output, reason=exc.strerror or exc)) from exc


def read_in(path: str) -> str:
    """The UTF-8 text of ``path`` (``-``: stdin)."""
    from memchat.errors import ImportFormatError, MemchatError

    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise MemchatError(t("cli.cannot_read", path=path, reason=exc.strerror or exc)) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(t("cli.not_utf8", path="stdin" if path == "-" else path)) from exc


def tool_line(chunk: Chunk) -> str:
    """One line for a tool call about to run (``→ now({})``) or its result (``← …``)."""
    if chunk.tool_call is not None:
        call = chunk.tool_call
        return f"→ {call.name}({' '.join(call.arguments.split())[:200]})"
    assert chunk.tool_result is not None
    result = chunk.tool_result
    text = " ".join(result.content.split())
    return f"← {result.call.name}: {text[:200] + ('…' if len(text) > 200 else '')}"
