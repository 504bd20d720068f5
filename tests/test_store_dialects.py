"""One SQL store over two dialects: the shared code names no driver, both engines raise the
same errors, and PostgreSQL's dialect changes nothing of a statement but its placeholders."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import memchat
from memchat.errors import SessionExists, StoreError
from memchat.stores.dialect import IntegrityViolation
from memchat.stores.pg_dialect import placeholders
from memchat.stores.postgres import PostgresStore
from memchat.stores.sql import SQLStore
from memchat.stores.sqlite import SQLiteStore

STORES = Path(memchat.__file__).parent / "stores"
#: the code both engines share
SHARED = ["base", "columns", "counters", "dialect", "sql", "sql_memories", "sql_memory", "sql_turns", "sql_vectors"]
DRIVERS = ("sqlite3", "psycopg", "psycopg_pool")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", SHARED)
def test_the_shared_code_imports_no_driver_and_no_engine(module: str) -> None:
    imported = _imported(STORES / f"{module}.py")
    assert not {n for n in imported if n.split(".")[0] in DRIVERS}
    engines = ("memchat.stores.sqlite", "memchat.stores.postgres", "memchat.stores.pg_")
    assert not {n for n in imported if n.startswith(engines)}


def test_the_two_stores_are_siblings() -> None:
    assert SQLiteStore.__bases__ == (SQLStore,) and PostgresStore.__bases__ == (SQLStore,)
    assert SQLiteStore not in PostgresStore.__mro__
    with pytest.raises(TypeError):  # the engine's store adds its search
        SQLStore(None)  # type: ignore[abstract, arg-type]


def test_postgresql_changes_only_the_placeholders() -> None:
    sql = "INSERT OR IGNORE INTO t (a) VALUES (?) -- kept as written"
    assert placeholders(sql) == "INSERT OR IGNORE INTO t (a) VALUES (%s) -- kept as written"
    assert placeholders("SELECT 1 WHERE a LIKE '%x%' AND b = ?") == "SELECT 1 WHERE a LIKE '%%x%%' AND b = %s"


def test_a_constraint_is_one_error_on_every_engine_and_rolls_the_transaction_back(store: Any) -> None:
    with pytest.raises(IntegrityViolation), store._write() as db:
        db.execute("INSERT INTO users (name, created) VALUES ('ann', 'then')")
        db.execute("INSERT INTO users (name, created) VALUES ('ann', 'then')")
    assert store.users() == []  # nothing of the transaction stayed
    assert issubclass(IntegrityViolation, StoreError)
    store.create_session("s")
    with pytest.raises(SessionExists):
        store.create_session("s")
    with pytest.raises(StoreError, match="already exists"):
        store.add_user("bob")
        store.add_user("bob")
    assert [name for _, name in store.users()] == ["bob"]  # the store goes on after each


def test_a_view_is_the_same_kind_of_store_on_the_same_dialect(store: Any) -> None:
    view = store.for_owner(store.add_user("ann")[0])
    assert type(view) is type(store) and view._dialect is store._dialect
    assert view.cache_key != store.cache_key and view.path == store.path
    view.close()  # a view leaves the database open
    assert store.list_sessions() == []


def test_one_table_template_renders_to_what_each_engine_was_given() -> None:
    """m011 and pg004 wrote ``message_vectors`` twice; ``stores/ddl.py`` writes it once."""
    import sqlite3

    from memchat.stores.ddl import MESSAGE_VECTORS, PG_TYPES, SQLITE_TYPES, render
    from memchat.stores.pg_migrations import PG_MIGRATIONS

    def schema(db: Any) -> list[tuple[str, str]]:
        rows = db.execute("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'message_vectors' ORDER BY name")
        return [(name, " ".join(sql.split())) for name, sql in rows]

    raw = sqlite3.connect(":memory:")
    raw.executescript(render(MESSAGE_VECTORS, SQLITE_TYPES))
    with SQLiteStore() as store:
        assert schema(raw) == schema(store._dialect.connection)
    pg004 = dict(PG_MIGRATIONS)["pg004_message_vectors"]
    assert isinstance(pg004, str) and pg004.split() == render(MESSAGE_VECTORS, PG_TYPES).split()
