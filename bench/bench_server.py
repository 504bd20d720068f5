"""Load on ``memchat serve``: N concurrent chats streaming from the loopback model server.

Both servers run in their own processes (the model server: ``tests/fakeserver.py``, a fixed
reply of CHUNKS pieces DELAY ms apart; memchat: ``memchat serve`` on a temporary SQLite file).
First the model server alone is measured at the same concurrency (the baseline), then the same
turns through memchat. Printed: time to the first text and to the end of each turn, p50/p99,
what memchat adds over the baseline, turns per second, and turns lost or duplicated (every
stream must end with ``done``, its event ids 1…n without gaps, and the database must hold
exactly one reply per turn).

    .venv/bin/python bench/bench_server.py            # 500 chats
    .venv/bin/python bench/bench_server.py --chats 50 # quicker
    .venv/bin/python bench/bench_server.py --chats 50 --floor  # the floor (bench/floor_proxy.py)

``--floor`` runs the same turns through a bare pass-through proxy instead of memchat (uvicorn and
httpx, no framework, no database, no memory): what any Python proxy adds on this machine, against
which memchat's figure is read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHUNKS = 8
DELAY_MS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def direct_turn(client: httpx.AsyncClient, url: str, k: int) -> tuple[float, float]:
    body = {"model": "fake/model-a", "stream": True, "messages": [{"role": "user", "content": f"chat {k}"}]}
    start = time.perf_counter()
    first = None
    async with client.stream("POST", url + "/chat/completions", json=body) as r:
        async for line in r.aiter_lines():
            if first is None and '"content":"' in line and '"content":""' not in line:
                first = time.perf_counter() - start
    return first or 0.0, time.perf_counter() - start


async def memchat_turn(client: httpx.AsyncClient, sid: int, k: int) -> tuple[float, float, list[int], bool]:
    start = time.perf_counter()
    first = None
    ids: list[int] = []
    done = False
    async with client.stream("POST", f"/api/sessions/{sid}/turns", json={"text": f"chat {k}"}) as r:
        async for line in r.aiter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            elif line.startswith("event: delta") and first is None:
                first = time.perf_counter() - start
            elif line.startswith("event: done"):
                done = True
    return first or 0.0, time.perf_counter() - start, ids, done


def start_servers(
    tmp: Path, workers: int = 1, db: str | None = None, floor: bool = False
) -> tuple[subprocess.Popen[str], subprocess.Popen[bytes], str, int]:
    """The model server and ``memchat serve``, each in its own process."""
    words = " ".join(f"w{k}" for k in range(CHUNKS * 3))
    model = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "fakeserver.py"),
            "--port",
            "0",
            "--delay-ms",
            str(DELAY_MS),
            "--reply",
            words,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert model.stdout is not None
    model_url = model.stdout.readline().strip()
    port = free_port()
    env = {
        **os.environ,
        "MEMCHAT_HOME": str(tmp),
        "MEMCHAT_PROVIDER": "compat",
        "MEMCHAT_BASE_URL": model_url,
        "MEMCHAT_MODEL": "fake/model-a",
        "MEMCHAT_TOOLS": "none",
        "MEMCHAT_DATE_LINE": "off",
        **({"MEMCHAT_DB": db} if db else {}),
        **(
            {"MEMCHAT_REDIS_URL": os.environ.get("MEMCHAT_REDIS_URL", "redis://127.0.0.1:6379/0")}
            if workers > 1
            else {}
        ),
    }
    command = (
        [sys.executable, str(ROOT / "bench" / "floor_proxy.py"), "--port", str(port), "--upstream", model_url]
        if floor
        else [sys.executable, "-m", "memchat.cli.main", "serve", "--port", str(port), "--workers", str(workers)]
    )
    serve = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    return model, serve, model_url, port


async def run(args: argparse.Namespace, tmp: Path, model_url: str, port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=args.chats + 10, max_keepalive_connections=args.chats + 10)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        for _ in range(200):
            try:
                if (await client.get("/api/health")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        sids = [
            (await client.post("/api/sessions", json={"name": f"chat-{k}"})).json()["id"] for k in range(args.chats)
        ]
        async with httpx.AsyncClient(timeout=120, limits=limits) as direct:
            t0 = time.perf_counter()
            baseline = await asyncio.gather(*(direct_turn(direct, model_url, k) for k in range(args.chats)))
            base_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = await asyncio.gather(*(memchat_turn(client, sid, k) for k, sid in enumerate(sids)))
        wall = time.perf_counter() - t0
    lost = sum(1 for *_, done in results if not done)
    broken = sum(1 for _, _, ids, _ in results if ids != list(range(1, len(ids) + 1)))
    users = replies = 0
    if not args.floor:
        from memchat.factory import open_store

        with open_store(args.db or str(tmp / "memchat.db")) as store:
            stored = [m for info in store.list_sessions() for m in store.messages(info.id)]
        replies = sum(1 for m in stored if m.role.value == "assistant" and m.status.value == "complete")
        users = sum(1 for m in stored if m.role.value == "user")
    b_first = [f for f, _ in baseline]
    b_total = [t for _, t in baseline]
    m_first = [f for f, _, _, _ in results]
    m_total = [t for _, t, _, _ in results]
    through = "the floor proxy" if args.floor else "memchat"
    reply = f"reply {CHUNKS * 3} words streamed {DELAY_MS} ms apart by the model server"
    print(f"{args.chats} concurrent chats through {through}, {reply}")
    print(f"{'':28}{'p50':>10}{'p99':>10}")
    print(f"{'model server, first text':28}{pct(b_first, 0.5):>8.1f}ms{pct(b_first, 0.99):>8.1f}ms")
    print(f"{through + ', first text':28}{pct(m_first, 0.5):>8.1f}ms{pct(m_first, 0.99):>8.1f}ms")
    print(f"{'model server, whole reply':28}{pct(b_total, 0.5):>8.1f}ms{pct(b_total, 0.99):>8.1f}ms")
    print(f"{through + ', whole reply':28}{pct(m_total, 0.5):>8.1f}ms{pct(m_total, 0.99):>8.1f}ms")
    added = [pct(m, q) - pct(b, q) for m, b in ((m_first, b_first), (m_total, b_total)) for q in (0.5, 0.99)]
    print(
        f"added by {through}: first text p50 {added[0]:.1f} ms, p99 {added[1]:.1f} ms; "
        f"whole reply p50 {added[2]:.1f} ms, p99 {added[3]:.1f} ms (target: p99 added <= 50 ms)"
    )
    rates = f"{args.chats / wall:.1f} through {through}, {args.chats / base_wall:.1f} straight to the model server"
    print(f"turns per second: {rates}")
    stored = "nothing (no database)" if args.floor else f"{users} questions, {replies} replies"
    print(f"lost turns: {lost}; streams with gaps or duplicates: {broken}; stored: {stored}")
    print(json.dumps({"median_first_ms": statistics.median(m_first) * 1000}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1, help="memchat serve --workers (2+: through Redis)")
    parser.add_argument("--db", default=None, help="a database URL, e.g. postgresql://postgres@127.0.0.1/test")
    parser.add_argument("--floor", action="store_true", help="a bare pass-through proxy instead of memchat")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memchat-bench-"))
    schema = None
    if args.db and args.db.startswith("postgres"):  # a fresh schema of its own, dropped afterwards
        import uuid

        import psycopg

        schema = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(args.db, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        base = args.db
        args.db = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema},public"
    model, serve, model_url, port = start_servers(tmp, args.workers, args.db, args.floor)
    try:
        asyncio.run(run(args, tmp, model_url, port))
    finally:
        serve.terminate()
        model.terminate()
        serve.wait(10)
        model.wait(10)
        if schema is not None:
            import psycopg

            with psycopg.connect(base, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
