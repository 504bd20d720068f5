"""Builds adapters from settings: the one place that names concrete providers and stores."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from memchat.config import Settings, check_db_path, default_db_path
from memchat.errors import ConfigError
from memchat.presets import LOCAL
from memchat.providers.base import ChatOptions, Provider

if TYPE_CHECKING:
    from memchat.agent import Agent
    from memchat.images.base import ImageGenerator
    from memchat.mcp import MCPManager
    from memchat.memory.semantic import SemanticIndex
    from memchat.providers.windows import WindowBook
    from memchat.stores.base import Store


def open_store(url_or_path: str | Path | None = None, *, migrate: bool | None = True) -> Store:
    """Open a store: a file path, ``":memory:"``, ``sqlite:///path``; ``None`` for the default file.
    With ``migrate=False`` a database whose schema is behind this memchat is refused (one line)."""
    target = str(url_or_path) if url_or_path is not None else str(default_db_path())
    check_db_path(target)  # a file in a folder that does not exist is refused, not made
    if target.startswith(("postgresql://", "postgres://")):
        from memchat.stores.postgres import PostgresStore

        return PostgresStore(target, migrate=migrate)
    from memchat.stores.sqlite import SQLiteStore

    return SQLiteStore.from_url(target, migrate=migrate)


def make_provider(settings: Settings) -> Provider:
    if settings.provider == LOCAL:
        from memchat.providers.local_llama import LocalLlama

        return LocalLlama(model_path=settings.model_path, context_window=settings.context_window)
    preset = settings.preset
    if preset.needs_key and not settings.api_key:
        hint = f"MEMCHAT_API_KEY or {preset.key_env}" if preset.key_env else "MEMCHAT_API_KEY"
        raise ConfigError(f"provider {settings.provider!r} needs an API key: set {hint}")
    from memchat.config import cache_dir
    from memchat.providers.openai_compat import OpenAICompatible

    assert settings.base_url is not None
    return OpenAICompatible(
        base_url=settings.base_url,
        api_key=settings.api_key,
        model=settings.model,
        name=settings.provider,
        context_window=settings.context_window,
        # a hosted API at its own address says nothing of its window; any other server is asked
        ask_window=not (preset.hosted and settings.base_url == preset.base_url),
        windows=_windows(cache_dir() / "windows.json"),
    )


_BOOKS: dict[Path, WindowBook] = {}


def _windows(path: Path) -> WindowBook:
    """One book of servers' windows per file, shared by the providers of a process."""
    from memchat.providers.windows import WindowBook

    if path not in _BOOKS:
        _BOOKS[path] = WindowBook(path)
    return _BOOKS[path]


def from_env(**flags: Any) -> Agent:
    """An agent configured from flags > environment > config file > defaults (as the CLI is)."""
    from memchat.config import resolve

    return make_agent(resolve(flags))


def make_agent(settings: Settings, store: Store | None = None) -> Agent:
    """The ``Agent`` the settings describe (``store``: an open store, else ``settings.db``)."""
    from memchat.agent import Agent  # here, not above: commands that only open the store stay fast
    from memchat.clock import timezone
    from memchat.tools import ToolRegistry, load_tool
    from memchat.tools.builtin import builtin_tools

    tools = ToolRegistry(builtin_tools())
    for spec in settings.tool:  # the user's own tools: a bad spec is a one-line error before anything opens
        tools.add(load_tool(spec))
    mcp = make_mcp(settings)  # nothing starts yet: an MCP server starts at its first use
    if mcp is not None:
        tools.add_source(mcp)
    zone = timezone(settings.timezone)
    provider = make_provider(settings)  # before the store: a bad setting must not create a database
    if "model" in settings.sources and provider.fixed_models and settings.model not in provider.list_models():
        from memchat.errors import UnknownModel

        offered = ", ".join(provider.list_models())
        provider.close()
        raise UnknownModel(
            f"the {provider.name} provider has only {offered}, not {settings.model!r}; for another model use "
            "another provider (--provider …, see: memchat models)",
            model=settings.model,
            provider=provider.name,
            offered=offered,
        )
    try:
        if store is None:
            store = open_store(settings.db)
    except BaseException:
        provider.close()
        raise
    enabled = list(settings.tools) if settings.tools is not None else None
    if enabled is not None:
        tools.select(enabled)  # unknown names: one line
    agent = Agent(
        store,
        provider,
        model=settings.model if "model" in settings.sources else None,  # else the session's, or the provider's
        persona=settings.system or "",
        memory=settings.memory,
        context_window=settings.context_window if "context_window" in settings.sources else None,
        recall_all=settings.recall == "all",
        long_term=settings.memories,
        learning=settings.learn or ("explicit" if provider.name == "local" else "auto"),
        titles=settings.titles or ("words" if provider.name == "local" else "model"),
        vision=settings.vision,
        max_attachment=settings.max_attachment,
        tools=tools,
        enabled_tools=enabled,
        max_steps=settings.max_steps,
        client_tools=settings.client_tools,
        timezone=zone,
        date_line=settings.date_line,
        semantic=make_semantic_index(settings),
        options=ChatOptions(seed=settings.seed) if settings.seed is not None else None,
    )
    agent.images = make_image_generator(settings)  # for the generate_image tool and /image
    agent.images_dir = images_dir()
    return agent


def make_mcp(settings: Settings) -> MCPManager | None:
    """The MCP servers this run uses (``[mcp.servers.*]`` and ``--mcp``/``MEMCHAT_MCP``), or None.
    Nothing starts here: each server starts when a turn first offers tools (or at ``/mcp``)."""
    from memchat.mcp_config import choose

    chosen = choose(settings.mcp_servers, settings.mcp)
    if not chosen:
        return None
    from memchat.config import cache_dir
    from memchat.mcp import MCPManager, require_sdk

    require_sdk()
    return MCPManager(chosen, log_dir=cache_dir() / "mcp")


def make_semantic_index(settings: Settings) -> SemanticIndex | None:
    """The semantic index for recall on the embedding model the settings choose (``auto``: the
    offline one when it is installed; ``local``: that one, an error without it), or None
    (recall by words only). One per process, shared by its agents."""
    if settings.embeddings == "off" or not settings.memories:
        return None
    from memchat.providers import embed_local

    index = embed_local.semantic_index()
    if index is None and settings.embeddings == "local":
        raise ConfigError(f"embeddings = local, but the offline embedding model is missing: {embed_local.INSTALL_HINT}")
    return index


def make_image_generator(settings: Settings) -> ImageGenerator | None:
    """The text-to-image adapter the settings describe, or None when none is configured."""
    if not settings.image_provider:
        return None
    if settings.image_provider == "modelscope":
        from memchat.images.modelscope_async import ModelScopeImages

        return ModelScopeImages(
            base_url=settings.image_base_url or "", api_key=settings.image_api_key, model=settings.image_model
        )
    from memchat.images.openai_images import OpenAIImages

    return OpenAIImages(
        base_url=settings.image_base_url or "", api_key=settings.image_api_key, model=settings.image_model
    )


def images_dir() -> Path:
    """Where generated images are saved (under the data directory)."""
    from memchat.config import data_dir

    return data_dir() / "images"
