"""Builds adapters from settings: the one place that names concrete providers and stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memchat.config import Settings, default_db_path
from memchat.errors import ConfigError
from memchat.presets import LOCAL
from memchat.providers.base import Provider


def open_store(url_or_path: str | Path | None = None) -> Any:
    """Open a store: a file path, ``":memory:"``, ``sqlite:///path``; ``None`` for the default file."""
    target = str(url_or_path) if url_or_path is not None else str(default_db_path())
    if target.startswith(("postgresql://", "postgres://")):
        raise ConfigError("PostgreSQL storage is not available in this version; use a SQLite path")
    from memchat.stores.sqlite import SQLiteStore

    return SQLiteStore.from_url(target)


def make_provider(settings: Settings) -> Provider:
    if settings.provider == LOCAL:
        from memchat.providers.local_llama import LocalLlama

        return LocalLlama(model_path=settings.model_path, context_window=settings.context_window)
    preset = settings.preset
    if preset.needs_key and not settings.api_key:
        hint = f"MEMCHAT_API_KEY or {preset.key_env}" if preset.key_env else "MEMCHAT_API_KEY"
        raise ConfigError(f"provider {settings.provider!r} needs an API key: set {hint}")
    from memchat.providers.openai_compat import OpenAICompatible

    assert settings.base_url is not None
    return OpenAICompatible(
        base_url=settings.base_url,
        api_key=settings.api_key,
        model=settings.model,
        name=settings.provider,
        context_window=settings.context_window,
    )
