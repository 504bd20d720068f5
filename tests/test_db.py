"""``memchat db``: migrations run once (also when processes race), a stale schema is refused on
request, and ``db copy`` moves every session and account losslessly."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from memchat.domain import ImageRecord, Message, Role, Summary
from memchat.errors import StoreError
from memchat.factory import open_store
from memchat.serialization import export_jsonl
from memchat.stores.migrations import MIGRATIONS
from memchat.stores.sqlite import SQLiteStore

CLI = [sys.executable, "-m", "memchat.cli.main"]


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **env},
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def one_version_behind(path: Path) -> None:
    """A database as the previous memchat left it: every migration but the last."""
    store = SQLiteStore(path, migrate=None)
    with store._write() as db:
        db.execute("CREATE TABLE _memchat_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
        for name, fn in MIGRATIONS[:-1]:
            fn(db)
            db.execute("INSERT INTO _memchat_migrations VALUES (?, 'then')", (name,))
    store.close()


def test_a_stale_schema_is_refused_on_request_and_migrated_by_the_command(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    one_version_behind(path)
    last = MIGRATIONS[-1][0]
    with pytest.raises(StoreError, match=f"needs 1 migration\\(s\\) \\({last}\\); run: memchat db migrate"):
        open_store(path, migrate=False)
    assert cli("db", "status", "--db", str(path)).stdout == f"{path}: 1 pending: {last}\n"
    served = cli(
        "serve", "--no-migrate", "--port", "0", "--db", str(path),
        MEMCHAT_PROVIDER="compat", MEMCHAT_BASE_URL="http://127.0.0.1:9/v1",
    )  # fmt: skip
    assert served.returncode == 1 and served.stderr.strip().endswith("run: memchat db migrate")
    migrated = cli("db", "migrate", "--db", str(path))
    assert migrated.returncode == 0 and f"applied 1 migration(s): {last}" in migrated.stderr
    assert cli("db", "status", "--db", str(path)).stdout == f"{path}: up to date\n"
    open_store(path, migrate=False).close()


def test_processes_racing_to_migrate_a_blank_database_apply_each_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    code = f"from memchat.factory import open_store; s = open_store({str(path)!r}); s.close()"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        _, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr
    store = SQLiteStore(path, migrate=None)
    names = [r[0] for r in store._read("SELECT name FROM _memchat_migrations ORDER BY name")]
    store.close()
    assert names == sorted(name for name, _ in MIGRATIONS)


def test_db_copy_moves_every_session_and_account_losslessly(tmp_path: Path) -> None:
    src_path, dst_path = tmp_path / "src.db", tmp_path / "dst.db"
    with open_store(src_path) as src:
        src.create_session("trip", persona="Be brief.")
        call = {"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
        rows = src.append_messages(
            "trip",
            [
                Message(Role.USER, "我们去杭州"),
                Message(Role.ASSISTANT, "", tool_calls=(call,)),
                Message(Role.TOOL, "{}", tool_call_id="c1"),
                Message(Role.ASSISTANT, "好的 😀"),
            ],
        )
        src.pin("trip", rows[0].id or 0)
        src.add_summary("trip", Summary(1, 2, "They plan a trip.", 4))
        src.add_images("trip", [ImageRecord("a lake", str(tmp_path / "x.png"), "modelscope", "Qwen/Qwen-Image")])
        src.create_session("notes")
        ann_id, ann_token = src.add_user("ann")
        ann = src.for_owner(ann_id)
        ann.create_session("trip")  # the same name, another owner
        ann.append_messages("trip", [Message(Role.USER, "ann's secret")])
        exports = {("local", s.name): export_jsonl(src, s.id) for s in src.list_sessions()}
        exports[("ann", "trip")] = export_jsonl(ann, "trip")
    done = cli("db", "copy", str(src_path), str(dst_path))
    assert done.returncode == 0, done.stderr
    assert "copied 3 session(s) and 1 user(s)" in done.stderr
    with open_store(dst_path) as dst:
        assert {s.name for s in dst.list_sessions()} == {"trip", "notes"}
        for (owner, name), text in exports.items():
            view = dst if owner == "local" else dst.for_owner(dst.user_for_token(ann_token) or 0)
            assert export_jsonl(view, name) == text  # byte for byte: summaries, pins, images, tool calls
    again = cli("db", "copy", str(src_path), str(dst_path))
    assert again.returncode == 2 and again.stderr.strip().endswith("copy into an empty database")


def test_a_postgres_url_without_its_extra_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from memchat.errors import ConfigError

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r'pip install "memchat\[postgres\]"'):
        open_store("postgresql://postgres@127.0.0.1:5432/test")


def test_copy_sqlite_to_postgresql_and_back_is_lossless(tmp_path: Path, pg_url: str) -> None:
    src_path, back_path = tmp_path / "src.db", tmp_path / "back.db"
    with open_store(src_path) as src:
        src.create_session("trip", persona="Be brief.")
        call = {"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
        rows = src.append_messages(
            "trip",
            [
                Message(Role.USER, "我们去杭州 \x07 tab\tand ‘quotes’"),
                Message(Role.ASSISTANT, "", tool_calls=(call,)),
                Message(Role.TOOL, "{}", tool_call_id="c1"),
                Message(Role.ASSISTANT, "好的 😀"),
            ],
        )
        src.pin("trip", rows[3].id or 0)
        src.add_summary("trip", Summary(1, 2, "They plan a trip.", 4))
        _, token = src.add_user("ann")
        src.for_owner(src.user_for_token(token) or 0).create_session("ann's")
        before = export_jsonl(src, "trip")
    assert cli("db", "copy", str(src_path), pg_url).returncode == 0
    with open_store(pg_url) as pg:
        assert export_jsonl(pg, "trip") == before
        assert pg.user_for_token(token) is not None
    back = cli("db", "copy", pg_url, str(back_path))
    assert back.returncode == 0, back.stderr
    with open_store(back_path) as again:
        assert export_jsonl(again, "trip") == before
        assert [s.name for s in again.for_owner(again.user_for_token(token) or 0).list_sessions()] == ["ann's"]


def test_processes_racing_to_migrate_postgresql_apply_each_migration_once(pg_url: str) -> None:
    code = f"from memchat.factory import open_store; s = open_store({pg_url!r}); s.close()"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        _, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr
    from memchat.stores.pg_migrations import PG_MIGRATIONS

    store = open_store(pg_url, migrate=None)
    assert store.pending_migrations() == []
    names = [r[0] for r in store._read("SELECT name FROM _memchat_migrations")]
    store.close()
    assert sorted(names) == sorted(name for name, _ in PG_MIGRATIONS)


def test_a_dropped_postgresql_connection_is_replaced_by_the_pool(pg_url: str) -> None:
    import psycopg

    from conftest import PG_BASE

    store = open_store(pg_url)
    store.create_session("kept")
    (pid,) = store._read("SELECT pg_backend_pid()")[0]
    with psycopg.connect(PG_BASE, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # the pool notices the dropped connection and makes a new one: the store keeps working
    assert [s.name for s in store.list_sessions()] == ["kept"]
    store.create_session("after")
    store.close()
    with open_store(pg_url) as again:  # nothing half-written
        assert sorted(s.name for s in again.list_sessions()) == ["after", "kept"]


def test_a_new_database_its_directory_and_the_repl_history_are_private(tmp_path: Path) -> None:
    from memchat.cli.repl import file_history
    from memchat.config import data_dir

    db = data_dir() / "memchat.db"  # the default location: made when missing (another folder must exist)
    assert not db.parent.exists()
    open_store(db).close()
    assert (db.stat().st_mode & 0o777, db.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    history = tmp_path / "data" / "history"
    file_history(history)
    assert history.stat().st_mode & 0o777 == 0o600
    kept = tmp_path / "shared.db"  # a file the user made themselves keeps its mode
    kept.touch(mode=0o640)
    kept.chmod(0o640)
    open_store(kept).close()
    assert kept.stat().st_mode & 0o777 == 0o640


def _memory_default(db: sqlite3.Connection) -> str:
    return next(str(r[4]) for r in db.execute("PRAGMA table_info(sessions)") if r[1] == "memory")


def _at_m009(path: Path) -> None:
    """A database as memchat left it before m010, with sessions (explicit strategies, as the
    store always writes them) and a turn."""
    store = SQLiteStore(path, migrate=None)
    index = [name for name, _ in MIGRATIONS].index("m010_memory_default")
    with store._write() as db:
        db.execute("CREATE TABLE _memchat_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
        for name, fn in MIGRATIONS[:index]:
            fn(db)
            db.execute("INSERT INTO _memchat_migrations VALUES (?, 'then')", (name,))
    for name, memory in [("auto", "auto"), ("full", "full"), ("window", "window")]:
        store.create_session(name, memory=memory)
    with store._write() as db:  # a turn, as the store of that time wrote it (the engine numbered ids)
        sid = db.execute("SELECT id FROM sessions WHERE name = 'full'").fetchone()[0]
        for seq, role, content in ((1, "user", "q"), (2, "assistant", "a")):
            db.execute(
                "INSERT INTO messages (session_id, seq, role, content, status, created) "
                "VALUES (?, ?, ?, ?, 'complete', '2025-01-01T00:00:00.000000Z')",
                (sid, seq, role, content),
            )
        db.execute("UPDATE sessions SET last_seq = 2 WHERE id = ?", (sid,))
    store.close()


def test_m010_makes_auto_the_declared_default_and_keeps_every_sessions_choice(tmp_path: Path) -> None:
    path = tmp_path / "m009.db"
    _at_m009(path)
    other = sqlite3.connect(path, isolation_level=None)  # another process, open across the migration
    assert _memory_default(other) == "'full'"  # m001's
    store = open_store(path)
    assert "m010_memory_default" in [r[0] for r in store._read("SELECT name FROM _memchat_migrations")]
    assert {s.name: s.memory for s in store.list_sessions()} == {"auto": "auto", "full": "full", "window": "window"}
    assert [m.content for m in store.messages("full")] == ["q", "a"]
    assert store._read("PRAGMA integrity_check") == [("ok",)]
    store.close()
    # the connection opened before sees the new declaration (the schema version moved)
    other.execute(
        "INSERT INTO sessions (name, created, updated) VALUES ('raw', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z')"
    )
    assert other.execute("SELECT memory FROM sessions WHERE name = 'raw'").fetchone() == ("auto",)
    assert _memory_default(other) == "'auto'" and other.execute("PRAGMA writable_schema").fetchone() == (0,)
    other.close()
    with open_store(path) as again:
        assert again.migrate() == [] and again.get_session("raw").memory == "auto"


def test_m010_on_a_connection_that_refuses_schema_edits_leaves_the_default_and_succeeds(tmp_path: Path) -> None:
    """In defensive mode SQLite refuses writes to ``sqlite_master``: the migration leaves the
    declared default (nothing reads it: the store writes every session's strategy)."""
    from memchat.stores.migrations import m010_memory_default

    path = tmp_path / "m009.db"
    _at_m009(path)
    db = sqlite3.connect(path, isolation_level=None)

    class Defensive:
        def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
            if sql.startswith("UPDATE sqlite_master"):
                raise sqlite3.OperationalError("table sqlite_master may not be modified")
            return db.execute(sql, params)

    db.execute("BEGIN IMMEDIATE")
    m010_memory_default(Defensive())  # type: ignore[arg-type]
    db.execute("COMMIT")
    assert _memory_default(db) == "'full'" and db.execute("PRAGMA writable_schema").fetchone() == (0,)
    db.close()
    with open_store(path) as store:  # the store is unaffected: it writes the strategy itself
        assert store.create_session("new").memory == "auto"
