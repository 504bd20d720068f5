"""Which models take images: a table of known name patterns, overridden by ``vision = true|false``
(config, ``MEMCHAT_VISION``, ``--vision``); a provider that takes text only (the embedded model)
says so itself (``Provider.accepts_images``)."""

from __future__ import annotations

import re

#: model names (matched case-insensitively anywhere in the id) that take images
VISION_MODELS: tuple[str, ...] = (
    r"qwen[\d.]*-vl",
    r"qwen3-vl",
    r"qvq",
    r"gpt-4o",
    r"gpt-4\.1",
    r"gpt-4-turbo",
    r"gpt-5",
    r"\bo3\b",
    r"o4-mini",
    r"-vl\b",
    r"-vl-",
    r"llava",
    r"bakllava",
    r"pixtral",
    r"gemma-?3",
    r"llama-?3\.2-vision",
    r"llama-4",
    r"minicpm-v",
    r"internvl",
    r"glm-4\.?\d*v",
    r"claude-3",
    r"claude-(sonnet|opus|haiku)-4",
    r"gemini",
    r"vision",
)
_PATTERN = re.compile("|".join(VISION_MODELS), re.I)


def known_vision(model: str) -> bool:
    """The model is known to take images."""
    return bool(_PATTERN.search(model))


def accepts_images(model: str, *, override: bool | None = None, provider: bool | None = None) -> bool:
    """``provider`` False (a text-only provider) wins; then the configured ``override``; then the table."""
    if provider is False:
        return False
    if override is not None:
        return override
    return known_vision(model)
