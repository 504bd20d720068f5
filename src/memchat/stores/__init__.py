"""Session storage: the ``Store`` port, its SQLite adapter, and ``open_store``."""

from memchat.stores.base import SessionRef, Store, TurnHandle

__all__ = ["SessionRef", "Store", "TurnHandle"]
