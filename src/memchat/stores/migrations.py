"""Numbered schema migrations for the SQLite store.

Each ``mNNN_name`` function is registered in order by ``@migration``; applied names are
recorded in ``_memchat_migrations``. A store runs the pending ones when it opens, inside
one write transaction, so two processes opening a blank database at once cannot both
apply them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from memchat.stores.counters import sqlite_triggers
from memchat.stores.ddl import ATTACHMENTS, MESSAGE_VERSIONS, SQLITE_TYPES, render

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Run ``;``-terminated statements one by one (``executescript`` would COMMIT the
    surrounding transaction)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {statement.strip()[:60]}")


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


@migration
def m002_memory(db: sqlite3.Connection) -> None:
    """Summaries, pins, per-model token calibration, full-text search (trigram, so Chinese
    works) and the change counters that let a reader cache a session's history. Sessions
    stored before memory strategies existed said ``full`` by default; they become ``auto``."""
    run_script(
        db,
        """
        UPDATE sessions SET memory = 'auto' WHERE memory = 'full';
        ALTER TABLE sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sessions ADD COLUMN rewrites INTEGER NOT NULL DEFAULT 0;

        CREATE TABLE summaries (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            first_seq INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            content TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            token_method TEXT NOT NULL DEFAULT 'estimate',
            model TEXT,
            created TEXT NOT NULL,
            CHECK (first_seq <= last_seq)
        );
        CREATE INDEX summaries_session ON summaries (session_id, last_seq);

        CREATE TABLE pins (
            message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            created TEXT NOT NULL
        );
        CREATE INDEX pins_session ON pins (session_id);

        CREATE TABLE calibration (
            model TEXT PRIMARY KEY,
            ratio REAL NOT NULL,
            samples INTEGER NOT NULL,
            updated TEXT NOT NULL
        );

        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, content='messages', content_rowid='id', tokenize='trigram'
        );
        INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');

        CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts (rowid, content) VALUES (NEW.id, NEW.content);
            UPDATE sessions SET version = version + 1 WHERE id = NEW.session_id;
        END;
        CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', OLD.id, OLD.content);
            UPDATE sessions SET version = version + 1,
                rewrites = rewrites + (OLD.status != 'streaming')
            WHERE id = OLD.session_id;
        END;
        CREATE TRIGGER messages_au_content AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', OLD.id, OLD.content);
            INSERT INTO messages_fts (rowid, content) VALUES (NEW.id, NEW.content);
            UPDATE sessions SET version = version + 1,
                rewrites = rewrites + (OLD.status != 'streaming')
            WHERE id = NEW.session_id;
        END;
        CREATE TRIGGER messages_au_status AFTER UPDATE OF status ON messages
        WHEN OLD.status != NEW.status BEGIN
            UPDATE sessions SET version = version + 1,
                rewrites = rewrites + (
                    OLD.status != 'streaming' OR EXISTS (
                        SELECT 1 FROM messages m WHERE m.session_id = NEW.session_id
                        AND m.seq > NEW.seq AND m.status != 'streaming'
                    )
                )
            WHERE id = NEW.session_id;
        END;
        CREATE TRIGGER summaries_ai AFTER INSERT ON summaries BEGIN
            UPDATE sessions SET version = version + 1 WHERE id = NEW.session_id;
        END;
        CREATE TRIGGER summaries_ad AFTER DELETE ON summaries BEGIN
            UPDATE sessions SET version = version + 1 WHERE id = OLD.session_id;
        END;
        CREATE TRIGGER pins_ai AFTER INSERT ON pins BEGIN
            UPDATE sessions SET version = version + 1 WHERE id = NEW.session_id;
        END;
        CREATE TRIGGER pins_ad AFTER DELETE ON pins BEGIN
            UPDATE sessions SET version = version + 1 WHERE id = OLD.session_id;
        END;
        """,
    )


@migration
def m003_stale_summaries(db: sqlite3.Connection) -> None:
    """A summary stands for the messages it covers as they were: when one of them is deleted
    (undo, truncate, a retry's replaced turn) or its text changes, the summaries covering it
    are dropped too (they are rebuilt when needed), so removed text never comes back through
    a summary and the kept messages are not hidden behind one."""
    run_script(
        db,
        """
        CREATE TRIGGER messages_ad_summaries AFTER DELETE ON messages WHEN OLD.status != 'streaming' BEGIN
            DELETE FROM summaries WHERE session_id = OLD.session_id AND OLD.seq BETWEEN first_seq AND last_seq;
        END;
        CREATE TRIGGER messages_au_summaries AFTER UPDATE OF content ON messages
        WHEN OLD.status != 'streaming' AND OLD.content != NEW.content BEGIN
            DELETE FROM summaries WHERE session_id = NEW.session_id AND OLD.seq BETWEEN first_seq AND last_seq;
        END;
        """,
    )


@migration
def m004_settled_count(db: sqlite3.Connection) -> None:
    """Each session's number of settled messages, kept by triggers, so reading a session costs
    one row instead of counting its history (2 ms at 20,000 messages, on every turn)."""
    run_script(
        db,
        """
        ALTER TABLE sessions ADD COLUMN settled_count INTEGER NOT NULL DEFAULT 0;
        UPDATE sessions SET settled_count = (
            SELECT COUNT(*) FROM messages m WHERE m.session_id = sessions.id AND m.status != 'streaming'
        );
        CREATE TRIGGER messages_ai_count AFTER INSERT ON messages WHEN NEW.status != 'streaming' BEGIN
            UPDATE sessions SET settled_count = settled_count + 1 WHERE id = NEW.session_id;
        END;
        CREATE TRIGGER messages_ad_count AFTER DELETE ON messages WHEN OLD.status != 'streaming' BEGIN
            UPDATE sessions SET settled_count = settled_count - 1 WHERE id = OLD.session_id;
        END;
        CREATE TRIGGER messages_au_count AFTER UPDATE OF status ON messages
        WHEN (OLD.status = 'streaming') != (NEW.status = 'streaming') BEGIN
            UPDATE sessions SET settled_count = settled_count + (CASE WHEN NEW.status = 'streaming' THEN -1 ELSE 1 END)
            WHERE id = NEW.session_id;
        END;
        """,
    )


@migration
def m005_fts_vocab(db: sqlite3.Connection) -> None:
    """The full-text index's vocabulary as a table, so a two-character term (a Chinese word
    like 牙医) can be looked up through the indexed trigrams that start with it instead of a
    scan of the messages."""
    run_script(db, "CREATE VIRTUAL TABLE messages_fts_vocab USING fts5vocab(messages_fts, 'row');")


@migration
def m006_images(db: sqlite3.Connection) -> None:
    """Generated images: the file, the prompt and parameters, the provider and its task id,
    placed in the session's history after the message that was last when it was made."""
    run_script(
        db,
        """
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            after_seq INTEGER NOT NULL DEFAULT 0,
            prompt TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            task_id TEXT,
            path TEXT NOT NULL,
            mime TEXT NOT NULL,
            size INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL
        );
        CREATE INDEX images_session ON images (session_id, id);
        """,
    )


@migration
def m007_user_tokens(db: sqlite3.Connection) -> None:
    """Server accounts: a user signs in with a token; only its SHA-256 is kept."""
    run_script(
        db,
        """
        ALTER TABLE users ADD COLUMN token_hash TEXT;
        CREATE UNIQUE INDEX users_token ON users (token_hash) WHERE token_hash IS NOT NULL;
        """,
    )


def _backfill_index_text(db: sqlite3.Connection, table: str) -> None:
    """Fill ``search_text`` (the word index's form of Chinese text) for existing rows."""
    from memchat.memory.terms import index_text

    rows = db.execute(f"SELECT id, content FROM {table} WHERE content GLOB '*[^ -~]*'").fetchall()
    db.executemany(
        f"UPDATE {table} SET search_text = ? WHERE id = ?",
        [(text, i) for i, content in rows if (text := index_text(content)) is not None],
    )


@migration
def m008_word_index(db: sqlite3.Connection) -> None:
    """A ranked word index over messages (FTS5 ``porter unicode61``, ranked with BM25), beside
    the trigram index that finds substrings. It reads ``search_text`` where a message has
    Chinese (its runs as two-character words, see ``memory/terms.py``), else the content."""
    db.execute("ALTER TABLE messages ADD COLUMN search_text TEXT")
    _backfill_index_text(db, "messages")  # before the index and its triggers exist
    run_script(
        db,
        """
        CREATE VIEW messages_words_source AS
            SELECT id, COALESCE(search_text, content) AS words FROM messages;
        CREATE VIRTUAL TABLE messages_words USING fts5(
            words, content='messages_words_source', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER messages_words_ai AFTER INSERT ON messages BEGIN
            INSERT INTO messages_words (rowid, words) VALUES (NEW.id, COALESCE(NEW.search_text, NEW.content));
        END;
        CREATE TRIGGER messages_words_ad AFTER DELETE ON messages BEGIN
            INSERT INTO messages_words (messages_words, rowid, words)
                VALUES ('delete', OLD.id, COALESCE(OLD.search_text, OLD.content));
        END;
        CREATE TRIGGER messages_words_au AFTER UPDATE OF content, search_text ON messages BEGIN
            INSERT INTO messages_words (messages_words, rowid, words)
                VALUES ('delete', OLD.id, COALESCE(OLD.search_text, OLD.content));
            INSERT INTO messages_words (rowid, words) VALUES (NEW.id, COALESCE(NEW.search_text, NEW.content));
        END;
        """,
    )
    db.execute("INSERT INTO messages_words (messages_words) VALUES ('rebuild')")


@migration
def m009_memories(db: sqlite3.Connection) -> None:
    """Long-term memories: what the agent knows about its user across sessions. A memory is
    never rewritten: a newer one ends it (``ended``, ``end_reason``, ``superseded_by``), so
    its history stays. ``users.memory_version`` moves with every change (readers cache)."""
    run_script(
        db,
        """
        ALTER TABLE users ADD COLUMN memory_version INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE memories (
            id INTEGER PRIMARY KEY,
            owner_id INTEGER NOT NULL DEFAULT 1 REFERENCES users(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('fact', 'preference', 'instruction', 'event')),
            content TEXT NOT NULL,
            search_text TEXT,
            event_date TEXT,
            origin TEXT NOT NULL DEFAULT 'explicit' CHECK (origin IN ('explicit', 'auto', 'import')),
            session_id INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
            source_ids TEXT NOT NULL DEFAULT '[]',
            supersedes INTEGER REFERENCES memories(id) ON DELETE SET NULL,
            tokens INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            ended TEXT,
            end_reason TEXT CHECK (end_reason IN ('superseded', 'forgotten', 'reverted')),
            superseded_by INTEGER REFERENCES memories(id) ON DELETE SET NULL
        );
        CREATE INDEX memories_owner ON memories (owner_id, ended, id);
        CREATE INDEX memories_supersedes ON memories (supersedes);
        CREATE VIEW memories_words_source AS
            SELECT id, COALESCE(search_text, content) AS words FROM memories;
        CREATE VIRTUAL TABLE memories_words USING fts5(
            words, content='memories_words_source', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
            INSERT INTO memories_words (rowid, words) VALUES (NEW.id, COALESCE(NEW.search_text, NEW.content));
            UPDATE users SET memory_version = memory_version + 1 WHERE id = NEW.owner_id;
        END;
        CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
            INSERT INTO memories_words (memories_words, rowid, words)
                VALUES ('delete', OLD.id, COALESCE(OLD.search_text, OLD.content));
            UPDATE users SET memory_version = memory_version + 1 WHERE id = OLD.owner_id;
        END;
        CREATE TRIGGER memories_au AFTER UPDATE ON memories BEGIN
            INSERT INTO memories_words (memories_words, rowid, words)
                VALUES ('delete', OLD.id, COALESCE(OLD.search_text, OLD.content));
            INSERT INTO memories_words (rowid, words) VALUES (NEW.id, COALESCE(NEW.search_text, NEW.content));
            UPDATE users SET memory_version = memory_version + 1 WHERE id = NEW.owner_id;
        END;
        """,
    )


_FULL_DEFAULT = "memory TEXT NOT NULL DEFAULT 'full'"
_AUTO_DEFAULT = "memory TEXT NOT NULL DEFAULT 'auto'"


@migration
def m010_memory_default(db: sqlite3.Connection) -> None:
    """``sessions.memory`` defaults to ``auto``, the product default (``SessionInfo`` and the
    PostgreSQL schema say so too); m001 declared ``full``.

    Only the declared default changes, no row: m002 already turned the sessions stored before
    memory strategies existed into ``auto``, and every session written since had its strategy
    written explicitly (``SQLStore._insert_session`` always passes one), so a ``full`` left
    now is someone's choice. The store never relies on the column default; this keeps the
    schema honest for anyone reading it.

    SQLite cannot ``ALTER`` a default, and rebuilding ``sessions`` (referenced by five tables,
    with triggers) for it would be heavy; a default is schema text only, with no effect on the
    stored rows, so the table's ``CREATE`` statement is edited in place, the procedure SQLite
    documents for such changes (https://sqlite.org/lang_altertable.html, "making other kinds of
    table schema changes"). Where that is refused (a connection in defensive mode) or the
    statement is not m001's, the declared default is left as it is: nothing reads it."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'sessions'").fetchone()
    if row is None or str(row[0]).count(_FULL_DEFAULT) != 1:
        return
    version = int(db.execute("PRAGMA schema_version").fetchone()[0])
    db.execute("PRAGMA writable_schema = ON")
    try:
        db.execute(
            "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'sessions'",
            (_FULL_DEFAULT, _AUTO_DEFAULT),
        )
    except sqlite3.DatabaseError:  # "table sqlite_master may not be modified": defensive mode
        return
    else:
        db.execute(f"PRAGMA schema_version = {version + 1}")  # every connection rereads the schema
    finally:
        db.execute("PRAGMA writable_schema = OFF")
    declared = [r[4] for r in db.execute("PRAGMA table_info(sessions)") if r[1] == "memory"]
    if declared != ["'auto'"]:  # raising rolls the whole migration back
        raise sqlite3.DatabaseError(f"sessions.memory still declares {declared}")


@migration
def m011_message_vectors(db: sqlite3.Connection) -> None:
    """Message vectors for semantic recall (``stores/sql_vectors.py``): one per message,
    with the model that made it; written in the background, gone with their message."""
    run_script(
        db,
        """
        CREATE TABLE message_vectors (
            message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            vector BLOB NOT NULL
        );
        CREATE INDEX message_vectors_model ON message_vectors (model, message_id);
        """,
    )


#: the triggers of m002, m003, m004 and m009 that kept counters or dropped stale summaries
_HAND_WRITTEN = (
    "messages_ai",
    "messages_ad",
    "messages_au_content",
    "messages_au_status",
    "summaries_ai",
    "summaries_ad",
    "pins_ai",
    "pins_ad",
    "messages_ad_summaries",
    "messages_au_summaries",
    "messages_ai_count",
    "messages_ad_count",
    "messages_au_count",
    "memories_ai",
    "memories_ad",
    "memories_au",
)
#: the full-text index's part of those triggers, as triggers of their own (the same statements)
_INDEX_TRIGGERS = """
CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (NEW.id, NEW.content);
END;
CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', OLD.id, OLD.content);
END;
CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', OLD.id, OLD.content);
    INSERT INTO messages_fts (rowid, content) VALUES (NEW.id, NEW.content);
END;
CREATE TRIGGER memories_words_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memories_words (rowid, words) VALUES (NEW.id, COALESCE(NEW.search_text, NEW.content));
END;
CREATE TRIGGER memories_words_ad AFTER DELETE ON memories BEGIN
    INSERT INTO memories_words (memories_words, rowid, words)
        VALUES ('delete', OLD.id, COALESCE(OLD.search_text, OLD.content));
END;
CREATE TRIGGER memories_words_au AFTER UPDATE ON memories BEGIN
    INSERT INTO memories_words (memories_words, rowid, words)
        VALUES ('delete', OLD.id, COALESCE(OLD.search_text, OLD.content));
    INSERT INTO memories_words (rowid, words) VALUES (NEW.id, COALESCE(NEW.search_text, NEW.content));
END;
"""


@migration
def m012_counter_rules(db: sqlite3.Connection) -> None:
    """The change counters (``sessions.version``/``rewrites``/``settled_count``,
    ``users.memory_version``) and the dropping of stale summaries, kept until now by triggers
    written by hand here (m002, m003, m004, m009) and again in PL/pgSQL for PostgreSQL, are made
    from the one declaration both engines share (``stores/counters.py``; PostgreSQL's pg005 does
    the same). Six of the old triggers also kept a full-text index (the messages' trigrams, the
    memories' words): that part comes back unchanged, as triggers of its own.

    One rule is stricter than m002's: a message's text set to the text it already had (a
    checkpoint of a reply with nothing new) moves no counter, as on PostgreSQL: nothing a reader
    caches has changed."""
    run_script(db, "".join(f"DROP TRIGGER {name};\n" for name in _HAND_WRITTEN))
    run_script(db, _INDEX_TRIGGERS)
    run_script(db, sqlite_triggers())


@migration
def m013_message_versions(db: sqlite3.Connection) -> None:
    """Reply versions (issue 17): a regenerated reply or an edited message keeps what it replaced
    as another version of that point of the session, set aside whole in ``message_versions``
    (``stores/ddl.py``) while ``messages`` keeps the version shown."""
    run_script(db, render(MESSAGE_VERSIONS, SQLITE_TYPES))


@migration
def m014_attachments(db: sqlite3.Connection) -> None:
    """Attachments (issue 18): the bytes of the files sent with messages, once per owner and
    sha256 (``stores/ddl.py``); ``messages.attachments`` (since m001) names them."""
    run_script(db, render(ATTACHMENTS, SQLITE_TYPES))


#: the full-text indexes' part of the message triggers before m015 (``_INDEX_TRIGGERS``, m009)
_MESSAGE_INDEX_TRIGGERS = (
    "messages_fts_ai",
    "messages_fts_ad",
    "messages_fts_au",
    "messages_words_ai",
    "messages_words_ad",
    "messages_words_au",
)


@migration
def m015_search_backlog(db: sqlite3.Connection) -> None:
    """The messages' two full-text indexes (trigrams, words) are brought up to date after the
    turn instead of inside its transactions: a change to a message queues what the old triggers
    did (the text to take out of the indexes, the text to put in) in ``search_backlog``, in the
    same transaction, and ``SQLiteStore.settle_search`` applies the queue in order — memory upkeep
    after each turn, and any search first. FTS5 writes a new segment at every commit that touched
    it: two indexes, two commits per turn, ~70% of a turn's database time (~0.6 ms here).

    Applying the queue in the order it was written is exactly what the triggers did, so the
    indexes end as they would have (an external-content index is only right if what it is told
    to take out is what it was given)."""
    run_script(
        db,
        "".join(f"DROP TRIGGER {name};\n" for name in _MESSAGE_INDEX_TRIGGERS)
        + """
        CREATE TABLE search_backlog (
            n INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL,
            old_content TEXT,
            old_words TEXT,
            new_content TEXT,
            new_words TEXT
        );
        CREATE TRIGGER messages_search_ai AFTER INSERT ON messages BEGIN
            INSERT INTO search_backlog (message_id, new_content, new_words)
                VALUES (NEW.id, NEW.content, COALESCE(NEW.search_text, NEW.content));
        END;
        CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN
            INSERT INTO search_backlog (message_id, old_content, old_words)
                VALUES (OLD.id, OLD.content, COALESCE(OLD.search_text, OLD.content));
        END;
        CREATE TRIGGER messages_search_au AFTER UPDATE OF content, search_text ON messages
        WHEN OLD.content IS NOT NEW.content OR OLD.search_text IS NOT NEW.search_text BEGIN
            INSERT INTO search_backlog (message_id, old_content, old_words, new_content, new_words)
                VALUES (OLD.id, OLD.content, COALESCE(OLD.search_text, OLD.content),
                        NEW.content, COALESCE(NEW.search_text, NEW.content));
        END;
        """,
    )
