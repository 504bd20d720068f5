"""The change-counting rules (``stores/counters.py``): one declaration, made into SQLite's
triggers and PostgreSQL's functions and triggers, which every database has after m012/pg005,
however old the schema it started from."""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from memchat import open_store
from memchat.domain import EndReason, Memory, Message, Role, Summary
from memchat.stores.counters import RULES, CounterRule, StaleRule, pg_trigger, pg_triggers, sqlite_trigger
from memchat.stores.migrations import MIGRATIONS
from memchat.stores.pg_migrations import PG_MIGRATIONS

#: what only a counting (or stale-summary) trigger touches
_COUNTING = re.compile(r"\b(version|rewrites|settled_count|memory_version)\b|DELETE FROM summaries", re.IGNORECASE)
NOW = "2025-01-01T00:00:00.000000Z"


def test_both_engines_ddl_is_made_from_the_one_declaration() -> None:
    names = [r.name for r in RULES]
    assert len(set(names)) == len(names)
    for rule in RULES:
        sqlite_ddl, pg_ddl = sqlite_trigger(rule), pg_trigger(rule)
        for ddl in (sqlite_ddl, pg_ddl):
            assert f"CREATE TRIGGER {rule.name} AFTER {rule.event} ON {rule.table}" in ddl
            assert f"{rule.statement};" in ddl
            assert (rule.when or "") in ddl
        assert f"EXECUTE FUNCTION memchat_{rule.name}()" in pg_ddl
    assert {type(r) for r in RULES} == {CounterRule, StaleRule}
    counters = {(r.target, c) for r in RULES if isinstance(r, CounterRule) for c, _ in r.moves}
    assert counters == {
        ("sessions", "version"),
        ("sessions", "rewrites"),
        ("sessions", "settled_count"),
        ("users", "memory_version"),
    }
    pg005 = dict(PG_MIGRATIONS)["pg005_counter_rules"]
    assert isinstance(pg005, str) and pg005.endswith(pg_triggers())


# -- SQLite --------------------------------------------------------------------------------------


def _sqlite_triggers(store: Any) -> dict[str, tuple[str, str]]:
    rows = store._read("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
    return {name: (table, " ".join(sql.split())) for name, table, sql in rows}


def _at_m001_with_history(path: Path) -> None:
    """A database as the first memchat left it, with a session and settled messages."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE _memchat_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
    name, m001 = MIGRATIONS[0]
    db.execute("BEGIN")
    m001(db)
    db.execute("INSERT INTO _memchat_migrations VALUES (?, ?)", (name, NOW))
    db.execute("INSERT INTO sessions (id, name, created, updated, last_seq) VALUES (1, 'old', ?, ?, 4)", (NOW, NOW))
    for seq in range(1, 5):
        db.execute(
            "INSERT INTO messages (session_id, seq, role, content, created) VALUES (1, ?, ?, ?, ?)",
            (seq, "user" if seq % 2 else "assistant", f"message {seq}", NOW),
        )
    db.execute("COMMIT")
    db.close()


def test_a_sqlite_database_migrated_from_m001_has_the_triggers_of_a_fresh_one(tmp_path: Path) -> None:
    _at_m001_with_history(tmp_path / "old.db")
    with open_store(tmp_path / "old.db") as old, open_store(tmp_path / "new.db") as new:
        assert _sqlite_triggers(old) == _sqlite_triggers(new)
        triggers = _sqlite_triggers(new)
        for rule in RULES:  # each rule as declared, and nothing else counts
            assert triggers.pop(rule.name) == (rule.table, " ".join(sqlite_trigger(rule).rstrip(";").split()))
        assert sorted(triggers) == [
            "memories_words_ad",
            "memories_words_ai",
            "memories_words_au",
            "messages_search_ad",
            "messages_search_ai",
            "messages_search_au",
        ]
        assert [name for name, (_, sql) in triggers.items() if _COUNTING.search(sql)] == []
        # the counters of the old history go on from where m004 left them
        assert old.get_session("old").message_count == 4
        old.append_messages("old", [Message(Role.USER, "new")])
        assert old.session_state("old") == (1, 0) and old.get_session("old").message_count == 5
        assert [h.message.content for h in old.search(["message 2"], session="old")] == ["message 2"]


def test_m012_keeps_counting_what_the_old_triggers_counted(tmp_path: Path) -> None:
    """A database without m012 (its hand-written triggers) with history: after m012 the counters
    and the summaries behave as before it, and the full-text indexes still follow every change.
    (The later migrations are applied, but m015, which replaces m012's index triggers and comes
    after it: today's store writes through them.)"""
    path = tmp_path / "m011.db"
    store = open_store(path, migrate=None)
    later = ("m012_counter_rules", "m015_search_backlog")
    with store._write() as db:
        db.execute("CREATE TABLE _memchat_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
        for name, fn in MIGRATIONS:
            if name not in later:
                fn(db)
                db.execute("INSERT INTO _memchat_migrations VALUES (?, 'then')", (name,))
    assert store.pending_migrations() == list(later)
    store.recover()
    store.create_session("s")
    msgs = store.append_messages("s", [Message(Role.USER, f"q{k} kayak") for k in range(6)])
    store.add_summary("s", Summary(1, 4, "sum", 1))
    before = store.session_state("s")
    store.close()
    with open_store(path) as store:
        assert store.session_state("s") == before
        store.append_messages("s", [Message(Role.USER, "more")])
        assert store.session_state("s") == (before[0] + 1, before[1])
        with store._write() as db:
            db.execute("UPDATE messages SET content = 'edited canoe' WHERE id = ?", (msgs[1].id,))
        assert store.session_state("s")[1] == before[1] + 1 and store.summaries("s") == []
        assert [h.message.content for h in store.search(["canoe"], session="s")] == ["edited canoe"]
        assert [h.message.content for h in store.search_words(["canoe"], session="s")] == ["edited canoe"]
        store.truncate("s", 2)
        assert store.get_session("s").message_count == 2 and store.search(["kayak"], session="s")
        memory = store.add_memory(Memory("likes kayaks"))
        version = store.memory_version()
        store.end_memory(memory.id or 0, EndReason.FORGOTTEN)
        assert store.memory_version() == version + 1


# -- every backend --------------------------------------------------------------------------------


def test_a_message_set_to_the_text_it_has_moves_no_counter(store: Any) -> None:
    """The one rule the two schemas disagreed on before m012/pg005: an update that leaves the
    text as it was (a checkpoint with nothing new) changes nothing a reader caches."""
    store.create_session("s")
    handle = store.begin_turn("s", Message(Role.USER, "q"))
    store.checkpoint_turn(handle, "part")
    state = store.session_state("s")
    store.checkpoint_turn(handle, "part")
    assert store.session_state("s") == state
    store.checkpoint_turn(handle, "part two")
    assert store.session_state("s") == (state[0] + 1, state[1])


# -- PostgreSQL -----------------------------------------------------------------------------------


def _pg_triggers(store: Any) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """The schema's triggers (name: table, definition) and functions (name: body)."""
    schema = store._read("SELECT current_schema()")[0][0]
    triggers = store._read(
        "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE NOT t.tgisinternal AND n.nspname = current_schema()"
    )
    functions = store._read(
        "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = current_schema()"
    )
    return (
        {name: (table, definition.replace(f"{schema}.", "")) for name, table, definition in triggers},
        {name: " ".join(body.split()) for name, body in functions},
    )


@pytest.fixture
def other_pg_url(pg_url: str) -> Any:
    """A second schema of its own, beside ``pg_url``'s."""
    import psycopg

    from conftest import PG_BASE

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_BASE, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_BASE}?options=-csearch_path%3D{schema},public"
    with psycopg.connect(PG_BASE, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_a_postgresql_database_migrated_from_pg001_has_the_triggers_of_a_fresh_one(
    pg_url: str, other_pg_url: str
) -> None:
    import psycopg

    name, script = PG_MIGRATIONS[0]
    assert isinstance(script, str)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(script)
        conn.execute("CREATE TABLE _memchat_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
        conn.execute("INSERT INTO _memchat_migrations VALUES (%s, 'then')", (name,))
        conn.execute(
            "INSERT INTO sessions (id, name, created, updated, last_seq) VALUES (7, 'old', %s, %s, 2)", (NOW, NOW)
        )
        for seq in (1, 2):
            conn.execute(
                "INSERT INTO messages (session_id, seq, role, content, created) VALUES (7, %s, 'user', %s, %s)",
                (seq, f"message {seq}", NOW),
            )
    with open_store(pg_url) as old, open_store(other_pg_url) as new:
        triggers, functions = _pg_triggers(old)
        assert (triggers, functions) == _pg_triggers(new)
        assert set(triggers) == {r.name for r in RULES}
        assert set(functions) == {f"memchat_{r.name}" for r in RULES}
        for rule in RULES:
            assert triggers[rule.name][0] == rule.table
            assert " ".join(rule.statement.split()) in functions[f"memchat_{rule.name}"]
        assert old.session_state("old") == (2, 0) and old.get_session("old").message_count == 2
        old.remove_last_turn("old")
        assert old.session_state("old") == (3, 1) and old.get_session("old").message_count == 1
