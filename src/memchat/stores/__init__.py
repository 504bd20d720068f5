"""Session storage: the ``Store`` port (``base.py``) and memchat's SQL store over two dialects,
SQLite (``sqlite.py``) and PostgreSQL (``postgres.py``); ``memchat.factory.open_store`` opens one."""

from memchat.stores.base import SessionRef, Store, TurnHandle

__all__ = ["SessionRef", "Store", "TurnHandle"]
