"""Storage cost: bytes on disk per stored message on SQLite and on PostgreSQL, against the bytes
of the message text itself (UTF-8).

Writes the same conversation to both backends through the store's own turn path
(``begin_turn`` / ``finish_turn``): SESSIONS sessions of TURNS turns, user and assistant
messages of realistic lengths in English and Chinese. Then measures the whole database: SQLite's
pages in use after a WAL checkpoint (``page_count - freelist_count``), PostgreSQL's
``pg_total_relation_size`` of every table of a fresh schema (heap, TOAST and indexes, the trigram
index included) after ``VACUUM ANALYZE``.

    .venv/bin/python bench/bench_storage.py
    .venv/bin/python bench/bench_storage.py --sessions 20 --turns 100 --db postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import random
import tempfile
import uuid
from pathlib import Path

from memchat.domain import Message, Role, Usage
from memchat.factory import open_store

EN = (
    "The train to Lisbon leaves at nine, so we should pack tonight and leave the keys with Ana. "
    "Remember that the museum is closed on Mondays and the tram needs exact change. "
)
ZH = "我们明天早上九点出发去杭州，记得带上雨伞和充电器。西湖边的茶馆下午人很多，最好上午去。"


def text(rng: random.Random, lo: int, hi: int) -> str:
    source = EN if rng.random() < 0.5 else ZH
    n = rng.randint(lo, hi)
    start = rng.randrange(len(source))
    return ((source * (n // len(source) + 2))[start : start + n]).strip() or source[:10]


def fill(store, sessions: int, turns: int, seed: int = 7) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    count = size = 0
    for s in range(sessions):
        name = f"session {s}"
        store.create_session(name, persona="You are a concise travel assistant.")
        for _ in range(turns):
            user, reply = text(rng, 20, 200), text(rng, 80, 900)
            handle = store.begin_turn(name, Message(Role.USER, user))
            store.finish_turn(handle, reply, usage=Usage(len(user) // 3, len(reply) // 3))
            count += 2
            size += len(user.encode()) + len(reply.encode())
    return count, size


def sqlite_bytes(path: Path) -> tuple[int, int]:
    """Bytes in use, and of them the full-text index's (FTS5 shadow tables)."""
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages, free, page = (db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size"))
    (search,) = db.execute("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE '%fts%'").fetchone()
    db.close()
    return (pages - free) * page, int(search)


def postgres_bytes(base: str, schema: str) -> tuple[int, int]:
    """Bytes of every table (with TOAST and indexes), and of them the trigram index's."""
    import psycopg

    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute("VACUUM ANALYZE")  # settles the free space map and visibility
        row = admin.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema,),
        ).fetchone()
        search = admin.execute(
            "SELECT COALESCE(SUM(pg_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam "
            "WHERE n.nspname = %s AND c.relkind = 'i' AND a.amname IN ('gin', 'gist')",
            (schema,),
        ).fetchone()
    return int(row[0]), int(search[0])


def report(name: str, stored: int, text_bytes: int, disk: tuple[int, int]) -> None:
    total, search = disk
    print(
        f"| {name} | {stored:,} | {text_bytes / stored:,.0f} | {total / stored:,.0f} | {total / text_bytes:.2f}× "
        f"| {search / stored:,.0f} |",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--turns", type=int, default=200)
    ap.add_argument(
        "--db", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL to measure ('' skips)"
    )
    args = ap.parse_args()
    print(
        "| backend | messages | text bytes / message | bytes on disk / message | disk ÷ text | of which search index |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = open_store(path)
        stored, text_bytes = fill(store, args.sessions, args.turns)
        store.close()
        report("SQLite (file, WAL)", stored, text_bytes, sqlite_bytes(path))
    if args.db:
        import psycopg

        schema = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(args.db, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        try:
            sep = "&" if "?" in args.db else "?"
            store = open_store(f"{args.db}{sep}options=-csearch_path%3D{schema},public")
            stored, text_bytes = fill(store, args.sessions, args.turns)
            store.close()
            report("PostgreSQL", stored, text_bytes, postgres_bytes(args.db, schema))
        finally:
            with psycopg.connect(args.db, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
