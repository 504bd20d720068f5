"""memchat: a chat agent whose conversations have memory.

The public names below are the contract; everything is imported lazily so that
``import memchat`` stays cheap (the one-shot CLI starts in a fraction of a second).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AsyncTurn",
    "ChatOptions",
    "Chunk",
    "LocalLlama",
    "MemchatError",
    "Message",
    "OpenAICompatible",
    "Provider",
    "ProviderError",
    "Reply",
    "Role",
    "SessionInfo",
    "SessionRef",
    "Status",
    "Store",
    "Turn",
    "Usage",
    "__version__",
    "from_env",
    "open_store",
]

_LAZY: dict[str, str] = {
    "Agent": "memchat.agent",
    "AsyncTurn": "memchat.agent",
    "Turn": "memchat.agent",
    "ChatOptions": "memchat.providers.base",
    "Provider": "memchat.providers.base",
    "Chunk": "memchat.domain",
    "Message": "memchat.domain",
    "Reply": "memchat.domain",
    "Role": "memchat.domain",
    "SessionInfo": "memchat.domain",
    "Status": "memchat.domain",
    "Usage": "memchat.domain",
    "MemchatError": "memchat.errors",
    "ProviderError": "memchat.errors",
    "SessionRef": "memchat.stores.base",
    "Store": "memchat.stores.base",
    "open_store": "memchat.factory",
    "from_env": "memchat.factory",
    "OpenAICompatible": "memchat.providers.openai_compat",
    "LocalLlama": "memchat.providers.local_llama",
}

if TYPE_CHECKING:
    from memchat.agent import Agent, AsyncTurn, Turn
    from memchat.domain import Chunk, Message, Reply, Role, SessionInfo, Status, Usage
    from memchat.errors import MemchatError, ProviderError
    from memchat.factory import from_env, open_store
    from memchat.providers.base import ChatOptions, Provider
    from memchat.providers.local_llama import LocalLlama
    from memchat.providers.openai_compat import OpenAICompatible
    from memchat.stores.base import SessionRef, Store


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'memchat' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
