"""Numbered schema migrations for the SQLite store.

Each ``mNNN_name`` function is registered in order by ``@migration``; applied names are
recorded in ``_memchat_migrations``. A store runs the pending ones when it opens, inside
one write transaction, so two processes opening a blank database at once cannot both
apply them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Run ``;``-terminated statements one by one (``executescript`` would COMMIT the
    surrounding transaction)."""
    for statement in script.split(";\n"):
        if statement.strip():
            db.execute(statement)


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL
        );
        INSERT INTO users (id, name, created) VALUES (1, 'local', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            owner_id INTEGER NOT NULL DEFAULT 1 REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            persona TEXT NOT NULL DEFAULT '',
            model TEXT,
            provider TEXT,
            memory TEXT NOT NULL DEFAULT 'full',
            settings TEXT NOT NULL DEFAULT '{}',
            parent_id INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
            fork_at INTEGER,
            last_seq INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            UNIQUE (owner_id, name)
        );

        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            parent_id INTEGER REFERENCES messages(id) ON DELETE SET NULL,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
            content TEXT NOT NULL DEFAULT '',
            tool_calls TEXT,
            tool_call_id TEXT,
            attachments TEXT,
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('streaming', 'complete', 'interrupted', 'stopped')),
            tokens INTEGER,
            token_method TEXT,
            usage TEXT,
            model TEXT,
            writer TEXT,
            heartbeat TEXT,
            created TEXT NOT NULL,
            UNIQUE (session_id, seq)
        );
        CREATE INDEX messages_streaming ON messages (status) WHERE status = 'streaming';
        CREATE INDEX messages_settled ON messages (session_id, status, seq);
        """,
    )
