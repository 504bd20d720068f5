"""Recall within ONE long session (issue 13): the same histories as ``bench_longmem.py``, each
user's sessions joined into one long session in time order, every question asked at its end in
that session (``agent.context``: the newest turns verbatim, recall for the rest), against plain
BM25 over single messages and the newest messages, both filling memchat's whole message budget
(minus the persona and the question).

Run:  .venv/bin/python bench/bench_longmem_within.py [--windows 2048,8192] [--users 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import bench_longmem as bench  # noqa: E402
import longmem_data as data  # noqa: E402
from fakeserver import FakeServer  # noqa: E402

CATEGORIES = ("user_fact", "preference", "update", "temporal", "aggregation")
SYSTEMS = ("memchat", "bm25", "newest")


def run(window: int, users: int, url: str, tmp: Path) -> dict[tuple[str, str], list[int]]:
    from memchat.domain import Message, Role, SessionInfo
    from memchat.stores.sqlite import SQLiteStore
    from memchat.tokens import estimate_tokens

    found: dict[tuple[str, str], list[int]] = {}
    for lang in ("en", "zh"):
        for hay in data.dataset(lang, users, datetime.now(UTC)):
            db = tmp / f"{hay.user}-{window}.db"
            store = SQLiteStore(db)
            past = [t for s in sorted(hay.sessions, key=lambda s: s.created) for t in s.turns]
            messages = [
                Message(Role.USER if t.role == "user" else Role.ASSISTANT, t.text, created=t.created) for t in past
            ]
            store.import_session(SessionInfo(0, "life", persona=bench.PERSONA[lang], memory="auto"), messages)
            store.close()
            agent = bench.make_agent(url, db, window)
            texts = [t.text for t in past]
            index = bench.BM25(texts)
            for q in hay.questions:
                plan = agent.context("life", q.text)
                ov = plan.budget.overhead
                room = plan.budget.limit - estimate_tokens(bench.PERSONA[lang]) - estimate_tokens(q.text) - 2 * ov
                costs = [estimate_tokens(t) + ov for t in texts]
                best = bench.fill((i for i, _ in index.rank(q.text)), costs, room, stop_at_first_miss=False)
                newest = bench.fill(range(len(texts) - 1, -1, -1), costs, room, stop_at_first_miss=True)
                contexts = {
                    "memchat": bench.context_text(plan, q.text),
                    "bm25": "\n".join(texts[i] for i in best),
                    "newest": "\n".join(texts[i] for i in newest),
                }
                for name, text in contexts.items():
                    low = text.lower()
                    ok = int(all(v.lower() in low for v in q.needed))
                    for key in ((q.category, name), ("all", name)):
                        found.setdefault(key, [0, 0])
                        found[key][0] += ok
                        found[key][1] += 1
            agent.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", default="2048,8192")
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    with FakeServer() as fake, tempfile.TemporaryDirectory() as tmp:
        for window in (int(w) for w in args.windows.split(",")):
            found = run(window, args.users, fake.url, Path(tmp))
            print(f"## one long session, context_window={window}")
            print(f"{'category':14}{'n':>5}" + "".join(f"{s:>10}" for s in SYSTEMS))
            for cat in (*CATEGORIES, "all"):
                n = found[(cat, "memchat")][1]
                shares = "".join(f"{100 * found[(cat, s)][0] / n:9.1f}%" for s in SYSTEMS)
                print(f"{cat:14}{n:>5}{shares}")


if __name__ == "__main__":
    main()
