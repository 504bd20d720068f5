"""What an MCP call or read gives back, as text: the model sees a call's text content joined
(an error result says it is one; an image or audio is a short note), the user a resource's or a
prompt's text."""

from __future__ import annotations

import json
from typing import Any


def call_text(result: Any) -> tuple[str, bool]:
    """(text, is error) of a ``CallToolResult``."""
    parts = [_content_text(c) for c in result.content or ()]
    text = "\n".join(p for p in parts if p)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False, default=str)
    error = bool(result.is_error)
    if error:
        text = f"error: the tool reported an error: {text or '(no details)'}"
    return text, error


def _content_text(block: Any) -> str:
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        return f"[{kind} ({block.mime_type}, {len(block.data) * 3 // 4:,} bytes) not shown]"
    if kind == "resource":
        inner = block.resource
        text = getattr(inner, "text", None)
        return str(text) if text is not None else f"[resource {inner.uri} ({inner.mime_type or 'binary'}) not shown]"
    if kind == "resource_link":
        return f"[resource {block.uri}: {block.name}]"
    return f"[{kind or 'unknown'} content not shown]"


def resource_text(result: Any) -> str:
    """The text of a ``ReadResourceResult`` (binary parts as a note)."""
    parts = []
    for item in result.contents or ():
        text = getattr(item, "text", None)
        parts.append(str(text) if text is not None else f"[{item.uri}: {item.mime_type or 'binary'} data not shown]")
    return "\n".join(parts)


def prompt_text(result: Any) -> str:
    """The text of a ``GetPromptResult``: its messages' text, one paragraph each."""
    return "\n\n".join(t for t in (_content_text(m.content) for m in result.messages or ()) if t)


def attachment(server: str, uri: str, text: str) -> str:
    """A resource's text as named context for a message (fenced; a fence in the text is made longer)."""
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{server}: {uri}\n{fence}\n{text}\n{fence}"
