"""Long-term memory and recall across sessions (issue 13): does the context memchat sends for a
question asked in a NEW session hold the facts the user gave in earlier sessions, against two
baselines on the same token budget, and what does it cost in tokens and time.

Run:  .venv/bin/python bench/bench_longmem.py [--quick] [--skip-scale] [--users 10]
          [--windows 2048,8192] [--repeat 3] [--now YYYY-MM-DD] [--json bench/results_longmem.json]

1. **accuracy** — ``bench/longmem_data.py`` builds ``--users`` histories ("haystacks") per
   language (English, Chinese; one seed each): 30–60 sessions over eight months, long
   assistant replies, evidence buried as asides in user turns, distractors on the same topics,
   12 questions each in five categories (user facts, preferences/instructions, knowledge
   updates, temporal, multi-session aggregation). Each haystack goes into its own SQLite file
   with ``Store.import_session`` (real ``created`` times), and each question is planned in a
   new empty session with ``agent.context(session, question)`` (public API only, nothing is
   written but the empty session), for the agent as constructed by default and, while
   ``recall_all`` exists and is off by default, with ``recall_all=True`` too. A needed fact is
   *found* when its answer string is in the text of the context (every entry but the new
   message). Knowledge updates: the newer value found, the stale value served without it, the
   stale value present at all. Aggregation: found only if every item is there (partial share
   reported). Temporal: also whether the evidence's date is written in the context.
   Baselines on memchat's budget for that question (``plan.budget.limit`` minus what the same
   call costs on an empty history: persona, date line, the question): *newest* — the most
   recent past messages of the user's sessions, newest first, while they fit; *BM25* — Okapi
   BM25 (k1 1.2, b 0.75; lowercase words, Chinese as character bigrams) over every past
   message, whole messages best-first while they fit. Tokens are ``memchat.tokens.estimate_tokens``
   plus the per-message overhead of the budget. Time added to a turn: per question, the
   median of ``--repeat`` runs of ``agent.context`` with the history minus the same on an
   empty store.
2. **scale** — one store with 1,000 sessions × 100 messages (100,000; ``--quick``: 10,000) and
   10,000 long-term memories (``--quick``: 1,000; ``Store.import_memories`` when the store has
   it), p50/p95 of ``agent.context`` for questions in a new session, and the same on an empty
   store.

Targets (issue 13): ≥ 90% of needed facts in context overall, ≥ 95% for user facts and
instructions, 0 stale facts served, ≤ 2,000 memory tokens per call, ≤ 15 ms p95 added to a turn
at 10,000 memories and 100,000 past messages.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import math
import pickle
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import longmem_data as data  # noqa: E402

PERSONA = {"en": "You are a helpful assistant.", "zh": "你是一个乐于助人的助手。"}
CATEGORIES = ("user_fact", "preference", "update", "temporal", "aggregation")
SYSTEMS = ("memchat", "memchat_words", "memchat_all", "newest", "bm25")
#: embedded passages kept between runs (the embedding model is slow on 2 cores; queries are never cached)
EMBED_CACHE = ROOT / "bench" / ".cache" / "passages.pkl"
RESULTS = ROOT / "bench" / "results_longmem.json"


def pct(ordered: Sequence[float], p: float) -> float:
    if not ordered:
        return float("nan")
    s = sorted(ordered)
    return s[max(0, math.ceil(p * len(s)) - 1)]


# -- baselines ---------------------------------------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def bm25_tokens(text: str) -> list[str]:
    """Lowercase words; Chinese runs as character bigrams (a lone character as itself)."""
    out = _WORD.findall(_CJK.sub(" ", text.lower()))
    for run in _CJK.findall(text):
        out += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
    return out


class BM25:
    """Okapi BM25 over whole messages (idf log(1 + (N − df + .5)/(df + .5)))."""

    def __init__(self, docs: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.tf = [Counter(bm25_tokens(d)) for d in docs]
        self.len = [sum(tf.values()) for tf in self.tf]
        self.avg = sum(self.len) / max(1, len(self.len))
        df: Counter[str] = Counter()
        for tf in self.tf:
            df.update(tf.keys())
        n = len(docs)
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        self.postings: dict[str, list[int]] = defaultdict(list)
        for i, tf in enumerate(self.tf):
            for t in tf:
                self.postings[t].append(i)

    def rank(self, query: str) -> list[tuple[int, float]]:
        scores: dict[int, float] = defaultdict(float)
        for t in set(bm25_tokens(query)):
            idf = self.idf.get(t)
            if idf is None:
                continue
            for i in self.postings[t]:
                f = self.tf[i][t]
                scores[i] += idf * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * self.len[i] / self.avg))
        return sorted(scores.items(), key=lambda kv: (-kv[1], -kv[0]))


def fill(order: Iterable[int], costs: Sequence[int], room: int, *, stop_at_first_miss: bool) -> list[int]:
    chosen, used = [], 0
    for i in order:
        if used + costs[i] > room:
            if stop_at_first_miss:
                break
            continue
        chosen.append(i)
        used += costs[i]
    return chosen


# -- one haystack --------------------------------------------------------------------------------------


@dataclass
class Row:
    """One question under one window: what each system put in context."""

    qid: str
    lang: str
    category: str
    kind: str
    overlap: str
    window: int
    limit: int = 0
    needed: int = 0
    #: system → number of needed answer strings in context
    hits: dict[str, int] = field(default_factory=dict)
    #: system → the stale value is in context / is there without the newer one
    stale: dict[str, bool] = field(default_factory=dict)
    stale_only: dict[str, bool] = field(default_factory=dict)
    #: system → tokens of the whole call
    tokens: dict[str, int] = field(default_factory=dict)
    #: memchat configs → tokens of recall/memory sections
    memory_tokens: dict[str, int] = field(default_factory=dict)
    dated: dict[str, bool] = field(default_factory=dict)
    #: memchat configs → seconds: context with the history, on an empty store
    seconds: dict[str, float] = field(default_factory=dict)
    empty_seconds: dict[str, float] = field(default_factory=dict)

    def found(self, system: str) -> bool:
        return self.hits.get(system, 0) == self.needed


def date_forms(d: date) -> list[str]:
    months = data.EN_MONTHS
    return [
        d.isoformat(),
        f"{months[d.month - 1]} {d.day}",
        f"{d.day} {months[d.month - 1]}",
        f"{months[d.month - 1][:3]} {d.day}",
        f"{d.month}月{d.day}日",
        f"{d.month}月{d.day}号",
        f"{d.year}/{d.month}/{d.day}",
        f"{d.year}/{d.month:02d}/{d.day:02d}",
    ]


def import_haystack(path: Path, hay: data.Haystack) -> None:
    from memchat.domain import Message, Role, SessionInfo
    from memchat.stores.sqlite import SQLiteStore

    store = SQLiteStore(path)
    for s in hay.sessions:
        messages = [Message(Role(t.role), t.text, created=t.created) for t in s.turns]
        info = SessionInfo(
            id=0, name=s.name, persona=PERSONA[hay.lang], memory="auto", created=s.created, updated=s.turns[-1].created
        )
        store.import_session(info, messages)
    store.close()


def agent_configs(embeddings: bool = True) -> dict[str, dict[str, Any]]:
    """memchat as the configured interfaces build it (semantic recall on the offline embedding
    model when it is installed), by words only, and with ``recall_all=True`` while that is an opt-in."""
    from memchat import Agent

    configs: dict[str, dict[str, Any]] = {"memchat": {}}
    if embeddings and semantic_available():
        configs = {"memchat": {"semantic": True}, "memchat_words": {}}
    param = inspect.signature(Agent.__init__).parameters.get("recall_all")
    if param is not None and param.default is not True:
        configs["memchat_all"] = {"recall_all": True}
    return configs


def semantic_available() -> bool:
    try:
        from memchat.providers import embed_local
    except ImportError:  # an older memchat measured with --code-label
        return False
    return embed_local.available()


class CachedEmbedder:
    """The offline embedder with its passages kept in ``EMBED_CACHE`` across runs (what is
    measured is recall, not the embedding model's speed, which is reported apart); queries
    are embedded every time (their cost is part of a turn)."""

    def __init__(self) -> None:
        from memchat.providers.embed_local import LocalEmbedder

        self.inner = LocalEmbedder()
        self.name = self.inner.name
        self.cache: dict[str, Any] = {}
        if EMBED_CACHE.exists():
            with EMBED_CACHE.open("rb") as f:
                self.cache = pickle.load(f)
        self.fresh = 0
        self.fresh_seconds = 0.0

    def query(self, text: str) -> Any:
        return self.inner.query(text)

    def passages(self, texts: Sequence[str]) -> list[Any]:
        keys = [hashlib.sha1(f"{self.name}\0{t}".encode()).hexdigest() for t in texts]
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        if todo:
            t = time.perf_counter()
            for i, v in zip(todo, self.inner.passages([texts[i] for i in todo]), strict=True):
                self.cache[keys[i]] = v
            self.fresh += len(todo)
            self.fresh_seconds += time.perf_counter() - t
        return [self.cache[k] for k in keys]

    def save(self) -> None:
        if self.fresh:
            EMBED_CACHE.parent.mkdir(parents=True, exist_ok=True)
            tmp = EMBED_CACHE.with_suffix(".tmp")
            with tmp.open("wb") as f:
                pickle.dump(self.cache, f)
            tmp.replace(EMBED_CACHE)


_EMBEDDER: CachedEmbedder | None = None


def embedder() -> CachedEmbedder:
    global _EMBEDDER
    if _EMBEDDER is None:
        _EMBEDDER = CachedEmbedder()
    return _EMBEDDER


def make_agent(url: str, db: Path, window: int, **kw: Any) -> Any:
    from memchat import Agent, OpenAICompatible
    from memchat.stores.sqlite import SQLiteStore

    if kw.pop("semantic", False):  # its own index (and the bench's passage cache)
        from memchat.memory.vectors import VectorIndex

        kw["semantic"] = VectorIndex(embedder())
    elif "semantic" in inspect.signature(Agent.__init__).parameters:
        kw["semantic"] = None  # by words only (not the process's default index)
    provider = OpenAICompatible(base_url=url, model="bench", max_retries=0)
    return Agent(store=SQLiteStore(db), provider=provider, context_window=window, **kw)


def context_text(plan: Any, question: str) -> str:
    entries = [e for e in plan.entries if e.kind != "new"]
    if len(entries) == len(plan.entries) and entries and entries[-1].content == question:
        entries = entries[:-1]
    return "\n".join(e.content for e in entries)


def memory_tokens(plan: Any) -> int:
    return sum(s.tokens for s in plan.sections if s.kind not in ("persona", "date", "summary", "pinned"))


def timed_context(agent: Any, session: str, question: str, repeat: int) -> tuple[Any, float]:
    samples, plan = [], None
    semantic = getattr(agent, "semantic", None)
    for _ in range(repeat):
        if semantic is not None:  # every run embeds the question, as a new turn does
            semantic.forget_queries()
        t = time.perf_counter()
        plan = agent.context(session, question)
        samples.append(time.perf_counter() - t)
    return plan, statistics.median(samples)


def run_haystack(
    hay: data.Haystack, tmp: Path, url: str, windows: Sequence[int], repeat: int, configs: dict[str, dict[str, Any]]
) -> list[Row]:
    from memchat.stores.sqlite import SQLiteStore
    from memchat.tokens import estimate_tokens

    db, empty = tmp / f"{hay.user}.db", tmp / f"{hay.user}-empty.db"
    import_haystack(db, hay)
    asks = {q.qid: f"ask-{q.qid}" for q in hay.questions}
    for path in (db, empty):  # the new sessions exist before anything is timed
        store = SQLiteStore(path)
        for name in asks.values():
            store.create_session(name, persona=PERSONA[hay.lang])
        store.close()

    past = [t for s in sorted(hay.sessions, key=lambda s: s.created) for t in s.turns]  # chronological
    texts = [t.text for t in past]
    index = BM25(texts)
    rows: list[Row] = []
    for window in windows:
        agents = {name: make_agent(url, db, window, **kw) for name, kw in configs.items()}
        blanks = {name: make_agent(url, empty, window, **kw) for name, kw in configs.items()}
        for agent in agents.values():  # the history's vectors, made by the agent's own background indexer
            if getattr(agent, "semantic", None) is not None:
                agent.wait_for_upkeep()
                embedder().save()
        for agent in [*agents.values(), *blanks.values()]:  # warm: first-call caches, imports
            agent.context(asks[hay.questions[0].qid], "hello")
        for q in hay.questions:
            row = Row(q.qid, q.lang, q.category, q.kind, q.overlap, window, needed=len(q.needed))
            contexts: dict[str, str] = {}
            base_plan = None
            for name, agent in agents.items():
                plan, secs = timed_context(agent, asks[q.qid], q.text, repeat)
                blank, blank_secs = timed_context(blanks[name], asks[q.qid], q.text, repeat)
                base_plan = base_plan or blank
                row.limit = plan.budget.limit
                contexts[name] = context_text(plan, q.text)
                row.tokens[name] = plan.tokens
                row.memory_tokens[name] = memory_tokens(plan)
                row.seconds[name], row.empty_seconds[name] = secs, blank_secs
            # the baselines: the same budget, less what the call costs with no history at all
            assert base_plan is not None
            ov = base_plan.budget.overhead
            fixed = base_plan.tokens
            room = row.limit - fixed
            costs = [estimate_tokens(t) + ov for t in texts]
            newest = fill(range(len(texts) - 1, -1, -1), costs, room, stop_at_first_miss=True)
            best = fill((i for i, _ in index.rank(q.text)), costs, room, stop_at_first_miss=False)
            for name, chosen in (("newest", newest), ("bm25", best)):
                contexts[name] = "\n".join(texts[i] for i in chosen)
                row.tokens[name] = fixed + sum(costs[i] for i in chosen)
            for name, text in contexts.items():
                low = text.lower()
                row.hits[name] = sum(1 for v in q.needed if v.lower() in low)
                if q.stale:
                    row.stale[name] = any(v.lower() in low for v in q.stale)
                    row.stale_only[name] = row.stale[name] and row.hits[name] < row.needed
                if q.category == "temporal":
                    row.dated[name] = row.found(name) and any(f.lower() in low for d in q.dates for f in date_forms(d))
            rows.append(row)
        for agent in [*agents.values(), *blanks.values()]:
            agent.close()
    return rows


# -- the scale run ------------------------------------------------------------------------------------------


def memory_texts(n: int, rng: random.Random) -> list[tuple[str, str]]:
    """``n`` varied memory texts (kind, text) in English and Chinese."""
    people = ("sister", "brother", "manager", "neighbour", "dentist", "landlord", "friend", "colleague", "cousin")
    names = ("Ada", "Bram", "Cleo", "Dev", "Esme", "Farid", "Greta", "Hugo", "Ines", "Jun", "Kofi", "Lena")
    things = ("cat", "bike", "car", "laptop", "phone", "flat", "garden", "team", "gym", "book club")
    prefs = ("window seats", "green tea", "early meetings", "short answers", "spicy food", "jazz", "hiking", "trains")
    zh_people = ("妹妹", "哥哥", "领导", "邻居", "同事", "表姐", "朋友")
    zh_names = ("小林", "老王", "阿梅", "大刘", "小赵", "周周")
    out = []
    for i in range(n):
        r = rng.random()
        tag = f"{i:05d}"
        if r < 0.3:
            out.append(
                ("fact", f"My {rng.choice(people)} {rng.choice(names)} {tag} lives near the {rng.choice(things)}.")
            )
        elif r < 0.5:
            out.append(("preference", f"Prefers {rng.choice(prefs)} over {rng.choice(prefs)} (note {tag})."))
        elif r < 0.6:
            out.append(("instruction", f"Always mention the {rng.choice(things)} checklist {tag} when planning."))
        elif r < 0.8:
            d = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
            out.append(
                ("event", f"Went to the {rng.choice(things)} event {tag} with {rng.choice(names)} on {d:%B %d}.")
            )
        else:
            out.append(
                (
                    "fact",
                    f"我的{rng.choice(zh_people)}{rng.choice(zh_names)}"
                    f"喜欢{rng.choice(('爬山', '做饭', '下棋', '跑步'))}，编号{tag}。",
                )
            )
    return out


@dataclass
class ScaleResult:
    sessions: int
    messages: int
    memories: int
    memories_how: str
    import_seconds: float
    #: config → seconds of each question, with the big store / an empty one
    seconds: dict[str, list[float]] = field(default_factory=dict)
    empty_seconds: dict[str, list[float]] = field(default_factory=dict)
    memory_tokens: dict[str, list[int]] = field(default_factory=dict)


def fill_random_vectors(db: Path, model: str, seed: int) -> int:
    """Give every message of ``db`` without a vector a random unit vector (384 dimensions)."""
    import numpy as np

    from memchat.memory.vectors import ENCODING
    from memchat.stores.sqlite import SQLiteStore

    rng = np.random.default_rng(seed)
    store = SQLiteStore(db)
    done = 0
    while True:
        todo = store.vectors_missing(model, 5000)
        if not todo:
            break
        vectors = rng.standard_normal((len(todo), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        blobs = [v.astype(ENCODING).tobytes() for v in vectors]
        done += store.add_vectors(model, [(mid, b) for (mid, _), b in zip(todo, blobs, strict=True)])
    store.close()
    return done


def run_scale(
    tmp: Path,
    url: str,
    sessions: int,
    per_session: int,
    memories: int,
    questions: Sequence[data.Question],
    repeat: int,
    configs: dict[str, dict[str, Any]],
) -> ScaleResult:
    from memchat.domain import Memory, MemoryKind, MemoryOrigin, Message, Role, SessionInfo
    from memchat.stores.sqlite import SQLiteStore
    from memchat.tokens import estimate_tokens

    rng = random.Random(13)
    now = datetime.now(UTC)
    pool: dict[str, list[tuple[str, str]]] = {}
    for lang in ("en", "zh"):  # a pool of real exchanges from a few haystacks, reused with a tag
        turns = []
        for seed in (101, 102, 103):
            hay = data.build(lang, seed, now)
            for s in hay.sessions:
                for u, a in zip(s.turns[::2], s.turns[1::2], strict=True):
                    turns.append((u.text, a.text))
        pool[lang] = turns
    db, empty = tmp / "scale.db", tmp / "scale-empty.db"
    store = SQLiteStore(db)
    t0 = time.perf_counter()
    start = now - timedelta(days=700)
    for i in range(sessions):
        lang = "zh" if i % 5 == 4 else "en"
        created = start + timedelta(hours=i * 16)
        messages = []
        for k in range(per_session // 2):
            u, a = rng.choice(pool[lang])
            at = created + timedelta(minutes=2 * k)
            messages += [
                Message(Role.USER, f"{u} (#{i}.{k})", created=at),
                Message(Role.ASSISTANT, a, created=at + timedelta(minutes=1)),
            ]
        store.import_session(
            SessionInfo(id=0, name=f"past-{i:04d}", persona=PERSONA[lang], memory="auto", created=created), messages
        )
    how = "none"
    if memories and hasattr(store, "import_memories"):
        kinds = {k.value: k for k in MemoryKind}
        batch = [
            Memory(
                content=text,
                kind=kinds.get(kind, MemoryKind.FACT),
                origin=MemoryOrigin.IMPORT,
                tokens=estimate_tokens(text),
            )
            for kind, text in memory_texts(memories, rng)
        ]
        store.import_memories(batch)
        how = "Store.import_memories"
    import_seconds = time.perf_counter() - t0

    asks = [f"ask-{i}" for i in range(len(questions))]
    for st in (store, SQLiteStore(empty)):
        for q, name in zip(questions, asks, strict=True):
            st.create_session(name, persona=PERSONA[q.lang])
        st.close()
    result = ScaleResult(
        sessions, sessions * (per_session // 2) * 2, memories if how != "none" else 0, how, import_seconds
    )
    for name, kw in configs.items():
        big, blank = make_agent(url, db, 2048, **kw), make_agent(url, empty, 2048, **kw)
        if kw.get("semantic"):  # the search's cost does not depend on the vectors' values: random
            # unit vectors stand in for 100,000 embeddings (days of CPU for the model on 2 cores)
            fill_random_vectors(db, big.semantic.embedder.name, seed=17)
        if memories and how != "none" and not hasattr(big, "memories"):
            result.memories_how = how + " (the agent has no `memories` yet: stored, not served)"
        big.context(asks[0], "hello")
        blank.context(asks[0], "hello")
        secs, empties, toks = [], [], []
        for q, ask in zip(questions, asks, strict=True):
            plan, s = timed_context(big, ask, q.text, repeat)
            _, e = timed_context(blank, ask, q.text, repeat)
            secs.append(s)
            empties.append(e)
            toks.append(memory_tokens(plan))
        result.seconds[name], result.empty_seconds[name], result.memory_tokens[name] = secs, empties, toks
        big.close()
        blank.close()
    return result


# -- reporting ----------------------------------------------------------------------------------------------


def share(rows: Sequence[Row], system: str) -> tuple[int, int]:
    got = [r for r in rows if system in r.hits]
    return sum(r.found(system) for r in got), len(got)


def fmt_share(rows: Sequence[Row], system: str) -> str:
    k, n = share(rows, system)
    return f"{100 * k / n:5.1f}%" if n else "    –"


def summarize(rows: Sequence[Row], systems: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"questions": len(rows)}
    for s in systems:
        k, n = share(rows, s)
        if not n:
            continue
        tokens = [r.tokens[s] for r in rows if s in r.tokens]
        fig: dict[str, Any] = {
            "found": k,
            "share": round(k / n, 4),
            "tokens_p50": pct(tokens, 0.5),
            "tokens_p95": pct(tokens, 0.95),
        }
        agg = [r for r in rows if r.category == "aggregation" and s in r.hits]
        if agg:
            fig["partial_share"] = round(sum(r.hits[s] / r.needed for r in agg) / len(agg), 4)
        upd = [r for r in rows if r.category == "update" and s in r.stale]
        if upd:
            fig["stale_in_context"] = sum(r.stale[s] for r in upd)
            fig["stale_without_newer"] = sum(r.stale_only[s] for r in upd)
        tmp = [r for r in rows if r.category == "temporal" and s in r.dated]
        if tmp:
            fig["temporal_with_date"] = sum(r.dated[s] for r in tmp)
        if any(s in r.memory_tokens for r in rows):
            mem = [r.memory_tokens[s] for r in rows if s in r.memory_tokens]
            added = [r.seconds[s] - r.empty_seconds[s] for r in rows if s in r.seconds]
            fig.update(
                memory_tokens_p50=pct(mem, 0.5),
                memory_tokens_p95=pct(mem, 0.95),
                memory_tokens_max=max(mem),
                context_ms_p50=round(1000 * pct([r.seconds[s] for r in rows if s in r.seconds], 0.5), 2),
                context_ms_p95=round(1000 * pct([r.seconds[s] for r in rows if s in r.seconds], 0.95), 2),
                empty_ms_p95=round(1000 * pct([r.empty_seconds[s] for r in rows if s in r.seconds], 0.95), 2),
                added_ms_p95=round(1000 * pct(added, 0.95), 2),
            )
        out[s] = fig
    return out


def print_tables(rows: Sequence[Row], systems: Sequence[str], windows: Sequence[int]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    label = {
        "memchat": "memchat",
        "memchat_words": "words only",
        "memchat_all": "+recall_all",
        "newest": "newest",
        "bm25": "BM25",
    }
    for w in windows:
        wrows = [r for r in rows if r.window == w]
        limit = statistics.median(r.limit for r in wrows)
        print(f"\n## context_window={w} (message budget ≈ {limit:.0f} tokens), {len(wrows)} questions")
        head = f"{'lang':<4} {'category':<12} {'n':>4} " + " ".join(f"{label[s]:>11}" for s in systems)
        print(head)
        figures[str(w)] = {"limit_p50": limit, "all": summarize(wrows, systems), "by": {}}
        for lang in ("en", "zh", "all"):
            for cat in (*CATEGORIES, "all"):
                sel = [r for r in wrows if (lang == "all" or r.lang == lang) and (cat == "all" or r.category == cat)]
                if not sel:
                    continue
                print(f"{lang:<4} {cat:<12} {len(sel):>4} " + " ".join(f"{fmt_share(sel, s):>11}" for s in systems))
                figures[str(w)]["by"][f"{lang}/{cat}"] = summarize(sel, systems)
        print("by word overlap with the evidence:")
        for ov in ("none", "one", "several"):
            sel = [r for r in wrows if r.overlap == ov]
            if sel:
                print(f"     {ov:<12} {len(sel):>4} " + " ".join(f"{fmt_share(sel, s):>11}" for s in systems))
                figures[str(w)]["by"][f"overlap/{ov}"] = summarize(sel, systems)
        upd = [r for r in wrows if r.category == "update"]
        tem = [r for r in wrows if r.category == "temporal"]
        print(f"\n{'system':<12} {'tokens p50':>10} {'p95':>6} {'mem tok p50':>11} {'p95':>5} {'max':>5} "
              f"{'aggr. partial':>13} {'stale in ctx':>12} {'stale w/o new':>13} {'temporal dated':>14}")  # fmt: skip
        for s in systems:
            fig = figures[str(w)]["all"].get(s)
            if not fig:
                continue
            mem = (
                f"{fig['memory_tokens_p50']:>11} {fig['memory_tokens_p95']:>5} {fig['memory_tokens_max']:>5}"
                if "memory_tokens_p50" in fig
                else f"{'–':>11} {'–':>5} {'–':>5}"
            )
            print(
                f"{label[s]:<12} {fig['tokens_p50']:>10} {fig['tokens_p95']:>6} {mem} "
                f"{100 * fig.get('partial_share', 0):>12.1f}% {fig.get('stale_in_context', 0):>6}/{len(upd):<5} "
                f"{fig.get('stale_without_newer', 0):>7}/{len(upd):<5} "
                f"{fig.get('temporal_with_date', 0):>8}/{len(tem):<5}"
            )
        for s in systems:
            fig = figures[str(w)]["all"].get(s, {})
            if "context_ms_p95" in fig:
                print(
                    f"time {label[s]}: agent.context p50 {fig['context_ms_p50']:.2f} ms, "
                    f"p95 {fig['context_ms_p95']:.2f} ms "
                    f"with the history; p95 {fig['empty_ms_p95']:.2f} ms empty; p95 added {fig['added_ms_p95']:.2f} ms"
                )
    return figures


def machine_reference() -> float:
    samples = []
    for _ in range(10):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def git_head() -> str:
    import memchat

    where = Path(memchat.__file__).resolve().parent
    if where != ROOT / "src" / "memchat":
        return f"memchat imported from {where}"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True).stdout
        return out.stdout.strip() + (" (src/ has uncommitted changes)" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10, help="haystacks per language (12 questions each)")
    parser.add_argument("--windows", default="2048,8192", help="context windows to plan for")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of agent.context per question (median)")
    parser.add_argument(
        "--quick", action="store_true", help="3 users per language, 2,048 only, scale at 10,000 messages"
    )
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--no-embeddings", action="store_true", help="memchat by words only (no semantic recall)")
    parser.add_argument("--scale-sessions", type=int, default=1000)
    parser.add_argument("--scale-messages", type=int, default=100, help="messages per scale session")
    parser.add_argument("--scale-memories", type=int, default=10_000)
    parser.add_argument("--now", help="the day the questions are asked (YYYY-MM-DD; default today)")
    parser.add_argument("--json", default=str(RESULTS), help="where the figures go ('' for nowhere)")
    parser.add_argument(
        "--code-label",
        default="",
        help="names the memchat code measured (e.g. a commit, when run with PYTHONPATH pointing at an exported tree)",
    )
    args = parser.parse_args()
    if args.quick:
        args.users = min(args.users, 3)
        args.windows = args.windows if args.windows != "2048,8192" else "2048"
        args.scale_sessions = min(args.scale_sessions, 100)
        args.scale_memories = min(args.scale_memories, 1000)
    windows = [int(w) for w in args.windows.split(",") if w]
    now = (
        datetime.combine(date.fromisoformat(args.now), datetime.min.time(), UTC).replace(hour=12)
        if args.now
        else datetime.now(UTC)
    )

    from fakeserver import FakeServer

    ref = machine_reference()
    code = f"{args.code_label} ({git_head()})" if args.code_label else git_head()
    print(f"machine reference: `python -c pass` takes {ref:.1f} ms; memchat code: {code}")
    started = time.perf_counter()
    configs = agent_configs(embeddings=not args.no_embeddings)
    systems = [s for s in SYSTEMS if s in configs or s in ("newest", "bm25")]
    hays = [h for lang in ("en", "zh") for h in data.dataset(lang, args.users, now)]
    sizes = [h.messages for h in hays]
    print(
        f"{len(hays)} haystacks ({args.users} per language), {sum(len(h.sessions) for h in hays)} sessions, "
        f"{sum(sizes)} messages (per user {min(sizes)}–{max(sizes)}), {sum(len(h.questions) for h in hays)} questions; "
        f"memchat configs: {', '.join(k + (str(v) if v else '') for k, v in configs.items())}"
    )
    server = FakeServer().start()
    rows: list[Row] = []
    scale = None
    try:
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            for hay in hays:
                rows += run_haystack(hay, tmp, server.url, windows, args.repeat, configs)
            accuracy_seconds = time.perf_counter() - started
            figures = print_tables(rows, systems, windows)
            if not args.skip_scale:
                qs = [q for h in hays for q in h.questions]
                qs = random.Random(5).sample(qs, min(60, len(qs)))
                t = time.perf_counter()
                scale = run_scale(
                    tmp,
                    server.url,
                    args.scale_sessions,
                    args.scale_messages,
                    args.scale_memories,
                    qs,
                    args.repeat,
                    configs,
                )
                print(
                    f"\n## scale: {scale.sessions} sessions, {scale.messages} messages, {scale.memories} memories "
                    f"({scale.memories_how}); import {scale.import_seconds:.0f} s; context_window=2048, "
                    f"{len(qs)} questions × {args.repeat}"
                )
                for cfg, secs in scale.seconds.items():
                    empt = scale.empty_seconds[cfg]
                    added = [a - b for a, b in zip(secs, empt, strict=True)]
                    print(
                        f"{cfg:<12} agent.context p50 {1000 * pct(secs, 0.5):.2f} ms, "
                        f"p95 {1000 * pct(secs, 0.95):.2f} ms; "
                        f"empty store p95 {1000 * pct(empt, 0.95):.2f} ms; p95 added {1000 * pct(added, 0.95):.2f} ms; "
                        f"memory tokens p95 {pct(scale.memory_tokens[cfg], 0.95)}"
                    )
                print(f"(scale run: {time.perf_counter() - t:.0f} s)")
    finally:
        server.close()
    total = time.perf_counter() - started
    print(f"\naccuracy run: {accuracy_seconds:.0f} s; whole run: {total:.0f} s")
    if args.json:
        out = {
            "run": {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "questions_asked_on": now.date().isoformat(),
                "memchat_code": code,
                "machine_reference_ms": round(ref, 1),
                "users_per_language": args.users,
                "windows": windows,
                "repeat": args.repeat,
                "configs": {k: v for k, v in configs.items()},
                "haystacks": len(hays),
                "messages": sum(sizes),
                "seconds": round(total),
            },
            "figures": figures,
            "scale": None
            if scale is None
            else {
                "sessions": scale.sessions,
                "messages": scale.messages,
                "memories": scale.memories,
                "memories_how": scale.memories_how,
                "import_seconds": round(scale.import_seconds, 1),
                "by_config": {
                    cfg: {
                        "context_ms_p50": round(1000 * pct(secs, 0.5), 2),
                        "context_ms_p95": round(1000 * pct(secs, 0.95), 2),
                        "empty_ms_p95": round(1000 * pct(scale.empty_seconds[cfg], 0.95), 2),
                        "added_ms_p95": round(
                            1000 * pct([a - b for a, b in zip(secs, scale.empty_seconds[cfg], strict=True)], 0.95), 2
                        ),
                        "memory_tokens_p95": pct(scale.memory_tokens[cfg], 0.95),
                    }
                    for cfg, secs in scale.seconds.items()
                },
            },
            "questions": [asdict(r) for r in rows],
        }
        Path(args.json).write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
