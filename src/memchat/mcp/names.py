"""An MCP tool's name as an OpenAI function name: ``SERVER__TOOL``, only ``[A-Za-z0-9_-]``, at
most 64 characters (longer: cut, with a short hash of the whole so two long names stay apart)."""

from __future__ import annotations

import hashlib
import re

MAX = 64
SEPARATOR = "__"
_BAD = re.compile(r"[^A-Za-z0-9_-]")


def sanitise(name: str) -> str:
    return _BAD.sub("_", name)


def function_name(server: str, tool: str) -> str:
    """The name the model calls (the map back to ``tool`` is kept by the caller)."""
    full = f"{sanitise(server)}{SEPARATOR}{sanitise(tool)}"
    if len(full) <= MAX:
        return full
    digest = hashlib.sha1(f"{server}\0{tool}".encode()).hexdigest()[:8]
    return f"{full[: MAX - len(digest) - 1]}_{digest}"
