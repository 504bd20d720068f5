"""Learning memories after a turn (issue 13): the extraction prompt and its validated JSON answer
(``memories/extract.py``), the background learner (``memories/learner.py``) against the real
loopback OpenAI-compatible server replying with scripted JSON — clean, updating, malformed,
fenced in prose, contradictory, failing and stalling — and ``detect_explicit``.

Memories are stored through ``MemoryService`` over a real ``SQLiteStore(":memory:")``."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from fakeserver import FakeReply, FakeServer
from memchat.domain import EndReason, Memory, MemoryKind, MemoryOrigin
from memchat.memories.extract import (
    INSTRUCTIONS,
    MAX_OPERATIONS,
    MAX_TEXT,
    Operation,
    apply,
    build_messages,
    parse_operations,
    related_memories,
)
from memchat.memories.learner import BACKOFF_MAX, LearnJob, MemoryLearner, detect_explicit
from memchat.memories.service import MemoryService
from memchat.providers.openai_compat import OpenAICompatible
from memchat.stores.sqlite import SQLiteStore

TODAY = date(2026, 3, 18)  # a Wednesday
MODEL = "fake/model-a"


def answer(*entries: dict[str, Any]) -> str:
    return json.dumps({"memories": list(entries)}, ensure_ascii=False)


def reply(text: str, **kw: Any) -> FakeReply:
    """``text`` streamed in a few pieces (the learner must join them)."""
    step = max(1, len(text) // 3)
    return FakeReply.text(*[text[i : i + step] for i in range(0, len(text), step)], **kw)


@pytest.fixture
def provider(fake: FakeServer) -> Iterator[OpenAICompatible]:
    p = OpenAICompatible(fake.url, api_key="k", model=MODEL, max_retries=0, timeout=2.0)
    yield p
    p.close()


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    s = SQLiteStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def service(store: SQLiteStore, provider: OpenAICompatible) -> MemoryService:
    return MemoryService(store, provider.count_tokens)


@pytest.fixture
def session_id(store: SQLiteStore) -> int:
    return store.create_session("chat").id


@pytest.fixture
def learned() -> list[list[Memory]]:
    return []


@pytest.fixture
def learner(provider: OpenAICompatible, learned: list[list[Memory]]) -> Iterator[MemoryLearner]:
    lr = MemoryLearner(provider, on_learned=learned.append)
    yield lr
    lr.close()


def job(service: MemoryService, session_id: int | None, user: str, said: str = "Noted.", **kw: Any) -> LearnJob:
    return LearnJob(
        service=service,
        session_id=session_id,
        user=user,
        reply=said,
        model=kw.pop("model", MODEL),
        today=kw.pop("today", TODAY),
        source_ids=kw.pop("source_ids", (11, 12)),
    )


def run(learner: MemoryLearner, j: LearnJob) -> None:
    assert learner.submit(j)
    assert learner.flush(10)


def served(service: MemoryService) -> list[str]:
    return sorted(m.content for m in service.list())


# -- the learner against the loopback server ------------------------------------------------------


def test_a_clean_add_is_stored_with_its_sources_and_the_request_says_everything(
    fake: FakeServer, learner: MemoryLearner, service: MemoryService, session_id: int, learned: list[list[Memory]]
) -> None:
    service.add("Always answer in metric units", today=TODAY)
    fake.script(reply(answer({"op": "add", "kind": "fact", "text": "Lives in Munich", "date": None})))
    run(learner, job(service, session_id, "Hi! I'm Anna and I live in Munich.", "Nice to meet you, Anna!"))

    (stored,) = [m for m in service.list() if m.content == "Lives in Munich"]
    assert stored.origin is MemoryOrigin.AUTO and stored.kind is MemoryKind.FACT
    assert stored.session_id == session_id and stored.source_ids == (11, 12)
    assert learned == [[stored]]
    assert learner.last_error is None and learner.stats.learned == 1 and learner.stats.calls == 1

    (request,) = fake.chat_requests
    body = request.body
    assert body["model"] == MODEL and body["temperature"] == 0 and body["max_tokens"] == 512
    system, prompt = request.messages
    assert system == {"role": "system", "content": INSTRUCTIONS}
    assert prompt["role"] == "user"
    text = prompt["content"]
    assert "Today's date: 2026-03-18 (Wednesday)" in text
    assert "<user>\nHi! I'm Anna and I live in Munich.\n</user>" in text
    assert "<assistant>\nNice to meet you, Anna!\n</assistant>" in text
    # the memories shown carry their ids (the always-on instruction is among the newest)
    shown = [json.loads(line) for line in text.split("\n") if line.startswith('{"id"')]
    assert {"id": 1, "kind": "instruction", "text": "Always answer in metric units", "date": None} in shown


def test_an_update_supersedes_the_memory_it_names(
    fake: FakeServer, learner: MemoryLearner, service: MemoryService, session_id: int
) -> None:
    old = service.add("I live in Berlin", today=TODAY)
    service.add("Has two cats", today=TODAY)
    fake.script(reply(answer({"op": "update", "id": old.id, "kind": "fact", "text": "Lives in Munich since February"})))
    run(learner, job(service, session_id, "Big news: I moved to Munich last month!", "Congratulations!"))

    # the related memory was shown with its id: the one on the same subject comes first
    text = fake.chat_requests[-1].messages[1]["content"]
    first = next(line for line in text.split("\n") if line.startswith('{"id"'))
    assert json.loads(first) == {"id": old.id, "kind": "fact", "text": "I live in Berlin", "date": None}

    assert served(service) == ["Has two cats", "Lives in Munich since February"]
    ended = service.get(old.id or 0)
    assert ended.end_reason is EndReason.SUPERSEDED
    new = service.get(ended.superseded_by or 0)
    assert new.supersedes == old.id and new.origin is MemoryOrigin.AUTO
    assert [m.content for m in service.history(new.id or 0)] == ["I live in Berlin", "Lives in Munich since February"]


def test_an_event_keeps_its_date_in_either_language(
    fake: FakeServer, learner: MemoryLearner, service: MemoryService, session_id: int
) -> None:
    fake.script(
        reply(answer({"op": "add", "kind": "event", "text": "Saw the dentist on 2026-03-17", "date": "2026-03-17"})),
        reply(answer({"op": "add", "kind": "event", "text": "2026年3月13日去看了牙医", "date": "2026-03-13"})),
        reply(answer({"op": "add", "kind": "event", "text": "Has a job interview", "date": "2026-02-30"})),
    )
    run(learner, job(service, session_id, "I saw the dentist yesterday", "How did it go?"))
    run(learner, job(service, session_id, "我上周五去看了牙医", "还好吗？"))
    run(learner, job(service, session_id, "I have a job interview soon", "Good luck!"))

    dates = {m.content: m.event_date for m in service.list()}
    assert dates["Saw the dentist on 2026-03-17"] == date(2026, 3, 17)
    assert dates["2026年3月13日去看了牙医"] == date(2026, 3, 13)
    assert dates["Has a job interview"] is None  # 30 February is no day: the date is dropped, the memory kept
    assert "上周五" in fake.chat_requests[1].messages[1]["content"]


def test_json_in_a_code_fence_with_prose_around_it(
    fake: FakeServer, learner: MemoryLearner, service: MemoryService, session_id: int
) -> None:
    body = answer(
        {"op": "add", "kind": "preference", "text": "Prefers window seats", "date": None},
        {"op": "none"},
    )
    fake.script(reply(f"Sure! Here is what I would remember:\n```json\n{body}\n```\nLet me know if that helps."))
    run(learner, job(service, session_id, "I always book a window seat", "Good choice."))
    assert served(service) == ["Prefers window seats"]
    assert learner.last_error is None


def test_contradictory_operations_are_resolved_as_documented(
    fake: FakeServer, learner: MemoryLearner, service: MemoryService, session_id: int
) -> None:
    home = service.add("I live in Berlin", today=TODAY)
    fake.script(
        reply(
            answer(
                {"op": "update", "id": 999, "kind": "fact", "text": "Works as a nurse", "date": None},
                {"op": "update", "id": home.id, "kind": "fact", "text": "Lives in Munich", "date": None},
                {"op": "update", "id": home.id, "kind": "fact", "text": "Lives in Hamburg", "date": None},
                {"op": "delete", "id": home.id},
                {"op": "add", "kind": "opinion", "text": "Thinks Munich is great"},
                {"op": "add", "kind": "fact", "text": "   "},
                {"op": "add", "kind": "fact", "text": "Works as a nurse"},
            )
        )
    )
    run(learner, job(service, session_id, "I moved to Munich, I work as a nurse", "Cool."))

    # the unknown id became an add; the first update of the id won; the rest were skipped
    assert served(service) == ["Lives in Munich", "Works as a nurse"]
    assert service.get(home.id or 0).superseded_by is not None
    assert learner.stats.learned == 2
    reasons = " | ".join(learner.last_skipped)
    for part in (
        "unknown id 999 taken as an add",
        "a second update",
        "unknown op 'delete'",
        "unknown kind",
        "no usable",
    ):
        assert part in reasons
    assert "repeated text" in reasons


def test_malformed_json_backs_off_and_never_raises(
    fake: FakeServer, learner: MemoryLearner, service: MemoryService, session_id: int
) -> None:
    fake.script(
        reply('{"memories": [{"op": "add", "kind": "fact", "text": "Lives in'),
        reply(answer({"op": "add", "kind": "fact", "text": "Has a dog named Rex"})),
    )
    run(learner, job(service, session_id, "I have a dog, Rex", "Cute!"))
    assert served(service) == []
    assert learner.last_error is not None and learner.last_error.startswith("stream: unreadable answer")
    assert learner.backoff == (1, 2) and learner.stats.failures == 1

    # the next two submissions are skipped without a model call; the third runs again
    assert not learner.submit(job(service, session_id, "a"))
    assert not learner.submit(job(service, session_id, "b"))
    assert learner.stats.skipped == 2 and len(fake.chat_requests) == 1
    run(learner, job(service, session_id, "I have a dog, Rex", "Cute!"))
    assert served(service) == ["Has a dog named Rex"]
    assert learner.backoff == (0, 0) and learner.last_error is None


def test_server_errors_double_the_backoff_up_to_its_cap(
    fake: FakeServer, learner: MemoryLearner, service: MemoryService, session_id: int
) -> None:
    skips: list[int] = []
    for _ in range(8):
        fake.script(FakeReply.server_error(500))
        run(learner, job(service, session_id, "I live in Rome"))
        failures, skip = learner.backoff
        skips.append(skip)
        assert learner.last_error is not None and learner.last_error.startswith("server:")
        for _ in range(skip):
            assert learner.submit(job(service, session_id, "skipped")) is False
    assert skips == [2, 4, 8, 16, 32, 64, 64, 64] and BACKOFF_MAX == 64
    assert len(fake.chat_requests) == 8  # no skipped submission reached the server
    assert learner.stats.skipped == sum(skips) and learner.stats.failures == 8
    assert served(service) == []


def test_a_stalled_model_times_out_in_the_background(fake: FakeServer, service: MemoryService, session_id: int) -> None:
    slow = OpenAICompatible(fake.url, api_key="k", model=MODEL, max_retries=0, timeout=0.3)
    lr = MemoryLearner(slow)
    try:
        fake.script(FakeReply.silent(3))
        started = time.monotonic()
        assert lr.submit(job(service, session_id, "I live in Oslo"))
        assert time.monotonic() - started < 0.1
        assert lr.flush(10)
        assert lr.last_error is not None and lr.last_error.startswith("timeout:")
        assert lr.backoff == (1, 2)
        assert not lr.submit(job(service, session_id, "next"))  # skipped: nothing waits on a dead model
    finally:
        lr.close()
        slow.close()


def test_submit_returns_at_once_while_the_model_is_slow(
    fake: FakeServer, learner: MemoryLearner, service: MemoryService, session_id: int
) -> None:
    body = answer({"op": "add", "kind": "fact", "text": "Plays the cello"})
    fake.script(reply(body, delay=0.3), reply(body, delay=0.3))
    started = time.monotonic()
    assert learner.submit(job(service, session_id, "I play the cello"))
    assert learner.submit(job(service, session_id, "I play the cello"))
    assert time.monotonic() - started < 0.1  # the reply's path is never delayed
    assert learner.pending == 2
    assert not learner.flush(0.05)
    assert learner.flush(10)
    assert learner.pending == 0
    assert served(service) == ["Plays the cello"]  # the second answer repeated it: stored once
    assert learner.stats.learned == 1


def test_explicit_and_off_modes_learn_nothing_automatically(
    fake: FakeServer, provider: OpenAICompatible, service: MemoryService, session_id: int
) -> None:
    for mode in ("explicit", "off"):
        lr = MemoryLearner(provider, mode=mode)
        assert lr.submit(job(service, session_id, "I live in Paris")) is False
        assert lr.flush(0) and lr._thread is None
        lr.close()
    assert fake.chat_requests == []
    with pytest.raises(Exception, match="learning must be one of"):
        MemoryLearner(provider, mode="sometimes")


def test_close_abandons_the_job_in_flight_and_refuses_new_ones(
    fake: FakeServer, provider: OpenAICompatible, service: MemoryService, session_id: int
) -> None:
    lr = MemoryLearner(provider)
    fake.script(reply(answer({"op": "add", "text": "Likes jazz"}), delay=0.5))
    assert lr.submit(job(service, session_id, "I like jazz"))
    assert lr.submit(job(service, session_id, "queued behind it"))
    time.sleep(0.2)
    started = time.monotonic()
    lr.close()
    assert time.monotonic() - started < 1.5
    assert lr.flush(2)  # nothing left pending
    assert lr.submit(job(service, session_id, "after close")) is False
    assert served(service) == []


def test_a_failing_listener_or_store_does_not_escape(
    fake: FakeServer, provider: OpenAICompatible, service: MemoryService, session_id: int, store: SQLiteStore
) -> None:
    def boom(memories: list[Memory]) -> None:
        raise RuntimeError("listener broke")

    lr = MemoryLearner(provider, on_learned=boom)
    try:
        fake.script(reply(answer({"op": "add", "kind": "fact", "text": "Speaks Italian"})))
        run(lr, job(service, session_id, "I speak Italian"))
        assert served(service) == ["Speaks Italian"]
        assert lr.last_error == "on_learned: RuntimeError: listener broke"

        store.close()  # the database went away under the learner
        fake.script(reply(answer({"op": "add", "kind": "fact", "text": "Speaks French"})))
        run(lr, job(service, session_id, "I speak French"))
        assert lr.last_error is not None and lr.backoff == (1, 2)
    finally:
        lr.close()


def test_one_learner_serves_many_users(fake: FakeServer, learner: MemoryLearner, provider: OpenAICompatible) -> None:
    """The server shares one learner; each job carries its user's memories."""
    a, b = SQLiteStore(":memory:"), SQLiteStore(":memory:")
    try:
        sa, sb = MemoryService(a, provider.count_tokens), MemoryService(b, provider.count_tokens)
        fake.script(
            reply(answer({"op": "add", "text": "Lives in Lyon"})),
            reply(answer({"op": "add", "text": "Lives in Porto"})),
        )
        run(learner, job(sa, None, "I live in Lyon"))
        run(learner, job(sb, None, "I live in Porto"))
        assert served(sa) == ["Lives in Lyon"] and served(sb) == ["Lives in Porto"]
    finally:
        a.close()
        b.close()


# -- the prompt, the parser and apply -------------------------------------------------------------


def test_the_prompt_clips_long_messages_and_says_none_without_memories() -> None:
    messages = build_messages("x" * 10_000, "y" * 10_000, [], TODAY)
    text = messages[1]["content"]
    assert "Existing memories related to this exchange:\n(none)" in text
    assert "x" * 6_000 + " …" in text and "x" * 6_001 not in text
    assert "y" * 2_000 + " …" in text and "y" * 2_001 not in text


def test_related_memories_find_the_same_subject_then_words_then_the_newest(service: MemoryService) -> None:
    city = service.add("I live in Berlin", today=TODAY)
    tea = service.add("Likes green tea", today=TODAY)
    for k in range(20):
        service.add(f"Fact number {k} about stamps", kind="fact", today=TODAY)
    found = related_memories(service, "I moved to Munich, where tea is expensive", "Green tea is nice", limit=5)
    assert found[0].id == city.id and found[1].id == tea.id
    assert len(found) == 5 and len({m.id for m in found}) == 5


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "I don't think there is anything to remember.",
        "{",
        '{"memories": "none"}',
        "[1, 2, 3]",
        '<think>the user said {"op": "add"',
        "null",
        "```json\n{not json}\n```",
        "[" * 5_000,
    ],
)
def test_garbage_gives_nothing_and_a_reason(garbage: str) -> None:
    ops = parse_operations(garbage, [1, 2])
    assert ops == [] and ops.reason and not ops.ok


def test_the_parser_reads_what_models_really_write() -> None:
    ops = parse_operations(
        "<think>The user moved, so update memory 3.</think>\n"
        '[{"op": "UPDATE", "id": "3", "kind": "Fact", "text": "- \\"Lives in  Munich\\"", "date": "2026-03-17T10:00"},'
        ' {"action": "add", "type": "event", "memory": "Birthday on 2026-05-04", "event_date": "2026-05-04"},'
        ' {"op": "add", "text": "Has a kid", "kind": null}]',
        [3],
    )
    assert ops.ok and ops.skipped == []
    assert ops == [
        Operation("update", "Lives in Munich", MemoryKind.FACT, date(2026, 3, 17), 3),
        Operation("add", "Birthday on 2026-05-04", MemoryKind.EVENT, date(2026, 5, 4)),
        Operation("add", "Has a kid", None, None),
    ]
    empty = parse_operations('{"memories": []}', [])
    assert empty == [] and empty.ok
    single = parse_operations('Answer: {"op": "add", "kind": "fact", "text": "Is left-handed"} done', [])
    assert [o.text for o in single] == ["Is left-handed"]


def test_the_parser_limits_texts_and_entries() -> None:
    entries: list[dict[str, Any]] = [
        {"op": "add", "kind": "fact", "text": f"Fact {k}"} for k in range(MAX_OPERATIONS + 5)
    ]
    entries.insert(0, {"op": "add", "kind": "fact", "text": "x" * (MAX_TEXT + 1)})
    entries.insert(1, {"op": "add", "kind": "fact", "text": "12345 !!!"})
    entries.insert(2, {"op": "add", "kind": "fact", "text": 42})
    ops = parse_operations(json.dumps({"memories": entries}), [])
    assert len(ops) == MAX_OPERATIONS
    assert ops[0].text == "Fact 0"
    assert sum("no usable text" in s for s in ops.skipped) == 3
    assert any(s.startswith("entries after the first") for s in ops.skipped)


def test_the_parser_never_raises_on_random_answers() -> None:
    rng = random.Random(13)
    pieces = ['{"memories": [', "]}", "{", "}", '"op": ', '"add"', '"update"', '"id": ', "3", "null", ", ", '"text": ']
    pieces += ['"kind": ', '"fact"', '"date": ', '"2026-13-01"', "```json\n", "```", "[", "]", '"x"', "true", "\\u0000"]
    for _ in range(2_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        ops = parse_operations(text, [3])
        for op in ops:
            assert op.op in ("add", "update") and 0 < len(op.text) <= MAX_TEXT
            assert op.replaces in (None, 3)


def test_apply_turns_an_update_of_a_forgotten_memory_into_an_add(service: MemoryService, session_id: int) -> None:
    gone = service.add("Drives a Volvo", today=TODAY)
    service.forget(gone.id or 0)
    stored = apply(
        service, [Operation("update", "Drives a Tesla", MemoryKind.FACT, None, gone.id)], session_id, (), TODAY
    )
    assert [m.content for m in stored] == ["Drives a Tesla"] and stored[0].supersedes is None
    # an exact repeat stores nothing and is not reported as learned; a refused text is left out
    again = apply(service, [Operation("add", "Drives a Tesla"), Operation("add", "x" * 3_000)], session_id, (), TODAY)
    assert again == []
    assert served(service) == ["Drives a Tesla"]


# -- explicit requests ----------------------------------------------------------------------------

EXPLICIT = [
    ("remember that I live in Berlin", ("remember", "I live in Berlin")),
    ("Please remember my wife is Anna.", ("remember", "my wife is Anna")),
    ("remember: I hate cilantro", ("remember", "I hate cilantro")),
    ("Remember, I am vegetarian", ("remember", "I am vegetarian")),
    ("Can you remember that I like tea?", ("remember", "I like tea")),
    ("remember to always answer in metric units", ("remember", "always answer in metric units")),
    ("Don't forget that my son is 5", ("remember", "my son is 5")),
    ("I want you to remember that my dog is Rex", ("remember", "my dog is Rex")),
    ("Note: I am vegan", ("remember", "I am vegan")),
    ("记住我喜欢喝茶", ("remember", "我喜欢喝茶")),
    ("请记住，我住在上海。", ("remember", "我住在上海")),
    ("帮我记住我的生日是5月3日", ("remember", "我的生日是5月3日")),
    ("记一下：明天交报告", ("remember", "明天交报告")),
    ("forget that I live in Berlin", ("forget", "I live in Berlin")),
    ("Forget about my old job.", ("forget", "my old job")),
    ("please forget my phone number", ("forget", "my phone number")),
    ("忘记我住在北京", ("forget", "我住在北京")),
    ("忘掉我的地址", ("forget", "我的地址")),
    ("别记这个：我的密码", ("forget", "我的密码")),
    ("删除关于我工作的记忆", ("forget", "我工作")),
]
NOT_EXPLICIT = [
    "",
    "do you remember my name?",
    "Do you remember what I said?",
    "I can't remember where I parked",
    "Remember when we went to Rome?",
    "remember me?",
    "Remembering names is hard",
    "remember",
    "note taking apps are great",
    "forget it",
    "Forget about it.",
    "I forgot my keys",
    "你记得我住在哪吗",
    "记住了吗？",
    "我忘记带钥匙了",
    "忘记密码怎么办",
    "删除这个文件",
    "What should I remember for the exam?",
]


@pytest.mark.parametrize(("text", "expected"), EXPLICIT, ids=[t for t, _ in EXPLICIT])
def test_explicit_requests(text: str, expected: tuple[str, str]) -> None:
    assert detect_explicit(text) == expected


@pytest.mark.parametrize("text", NOT_EXPLICIT)
def test_not_explicit_requests(text: str) -> None:
    assert detect_explicit(text) is None


def test_detect_explicit_is_quick_on_long_text() -> None:
    started = time.monotonic()
    assert detect_explicit("remember " + "a" * 3_000 + "?") is None
    assert detect_explicit("x" * 100_000) is None
    assert time.monotonic() - started < 0.5


def test_the_worker_is_one_daemon_thread(
    fake: FakeServer, learner: MemoryLearner, service: MemoryService, session_id: int
) -> None:
    before = {t.name for t in threading.enumerate()}
    fake.script(*[reply(answer()) for _ in range(3)])
    for k in range(3):
        assert learner.submit(job(service, session_id, f"message {k}"))
    assert learner.flush(10)
    workers = [t for t in threading.enumerate() if t.name == "memchat-learner"]
    assert len(workers) == 1 and workers[0].daemon and "memchat-learner" not in before
