"""Export/import at the library level: lossless JSONL round trips, readable Markdown, and
bad files that are refused whole (one clear error, the database untouched)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memchat.agent import Agent
from memchat.domain import ImageRecord, Message, Role, SessionInfo, Status, Summary, Usage
from memchat.errors import ImportFormatError, SessionExists, StoreError
from memchat.factory import open_store
from memchat.serialization import (
    FORMAT,
    ContextEntryView,
    ContextSectionView,
    ContextView,
    export_jsonl,
    export_markdown,
    import_jsonl,
    parse_jsonl,
)
from memchat.stores.sqlite import SQLiteStore
from memchat.testing import ScriptedProvider

SESSION_KEYS = ["type", "format", "name", "persona", "model", "provider", "memory", "settings", "created", "updated"]
MESSAGE_KEYS = ["type", "role", "content", "status", "tokens", "token_method", "usage", "model", "created"]
SUMMARY_KEYS = ["type", "first_seq", "last_seq", "content", "tokens", "token_method", "model", "created"]


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    s = open_store(":memory:")
    yield s
    s.close()


def _fill(store: SQLiteStore, name: str = "trip") -> None:
    store.create_session(name, persona="You are terse.\n简洁。", model="m-1", provider="compat", settings={"t": 0.5})
    store.append_messages(
        name,
        [
            Message(Role.USER, "hello\nworld", created=datetime(2024, 5, 1, 8, 30, 1, 123456, tzinfo=UTC)),
            Message(
                Role.ASSISTANT,
                "你好，世界 — \u2028 line sep",
                usage=Usage(12, 7),
                tokens=7,
                token_method="usage",
                model="m-1",
            ),
            Message(Role.USER, "and then?"),
            Message(Role.ASSISTANT, "Once upon", status=Status.INTERRUPTED, model="m-1"),
        ],
    )


def _snapshot(store: SQLiteStore) -> list[tuple[str, int, str]]:
    return [(s.name, s.message_count, export_jsonl(store, s.name)) for s in store.list_sessions()]


# -- round trips ------------------------------------------------------------------------


def test_export_shape_has_no_ids_and_fixed_keys(store: SQLiteStore) -> None:
    _fill(store)
    text = export_jsonl(store, "trip")
    lines = text.splitlines()  # U+2028 in a message is escaped: line tools see one record per line
    assert len(lines) == 5 and text.endswith("}\n")
    head, *messages = (json.loads(line) for line in lines)
    assert list(head) == SESSION_KEYS
    assert head["format"] == FORMAT and head["type"] == "session" and head["name"] == "trip"
    assert head["settings"] == {"t": 0.5} and head["persona"] == "You are terse.\n简洁。"
    assert len(messages) == 4
    for m in messages:
        assert list(m) == MESSAGE_KEYS
    assert messages[1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 7 + 12}
    assert messages[1]["token_method"] == "usage"
    assert messages[3]["status"] == "interrupted"
    assert messages[0]["created"] == "2024-05-01T08:30:01.123456Z"
    assert "id" not in head and all("id" not in m and "seq" not in m for m in messages)


def test_round_trip_into_a_fresh_database_is_byte_identical(store: SQLiteStore, tmp_path: Path) -> None:
    _fill(store)
    text = export_jsonl(store, "trip")
    with open_store(tmp_path / "other.db") as other:
        info = import_jsonl(other, text)
        assert info.name == "trip" and info.message_count == 4
        assert export_jsonl(other, "trip") == text
        original = store.get_session("trip")
        assert (info.created, info.updated) == (original.created, original.updated)
        assert [m.created for m in other.messages("trip")] == [m.created for m in store.messages("trip")]
    # reopening the file reads the same bytes back
    with open_store(tmp_path / "other.db") as again:
        assert export_jsonl(again, "trip") == text


def test_round_trip_under_another_name_differs_only_in_the_name(store: SQLiteStore) -> None:
    _fill(store)
    text = export_jsonl(store, "trip")
    info = import_jsonl(store, text, name="copy")
    assert info.name == "copy"
    copy = export_jsonl(store, "copy")
    head, *rest = text.split("\n")
    head2, *rest2 = copy.split("\n")
    assert rest2 == rest
    assert head2 == head.replace('"name": "trip"', '"name": "copy"')


def test_streaming_rows_are_not_exported(store: SQLiteStore) -> None:
    store.create_session("live")
    store.begin_turn("live", Message(Role.USER, "question"))
    lines = export_jsonl(store, "live").splitlines()
    assert [json.loads(line)["role"] for line in lines[1:]] == ["user"]


_content = st.text(
    st.characters(exclude_categories=["Cs"]) | st.sampled_from('\n\r\t 中文字符测试\u2028\u2029\x85\x00"\\'),
    max_size=60,
)
_message = st.builds(
    Message,
    role=st.sampled_from(list(Role)),
    content=_content,
    status=st.sampled_from([Status.COMPLETE, Status.INTERRUPTED, Status.STOPPED]),
    tokens=st.none() | st.integers(0, 10**6),
    token_method=st.none() | st.sampled_from(["estimate", "usage", "exact:qwen"]),
    usage=st.none() | st.builds(Usage, st.integers(0, 10**6), st.integers(0, 10**6)),
    model=st.none() | _content,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    messages=st.lists(_message, max_size=8),
    persona=_content,
    name=st.text(st.characters(exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"]), min_size=1, max_size=20),
    settings_=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
)
def test_round_trip_property(messages: list[Message], persona: str, name: str, settings_: dict[str, Any]) -> None:
    with open_store(":memory:") as first, open_store(":memory:") as second:
        first.create_session(name, persona=persona, settings=settings_)
        first.append_messages(name, messages)
        text = export_jsonl(first, name)
        import_jsonl(second, text)
        assert export_jsonl(second, name) == text
        stored = second.messages(name)
        assert [(m.role, m.content, m.status, m.usage, m.model) for m in stored] == [
            (m.role, m.content, m.status, m.usage, m.model) for m in messages
        ]
        import_jsonl(second, text, name="renamed")
        assert export_jsonl(second, "renamed").split("\n")[1:] == text.split("\n")[1:]


# -- memory: summaries and pins -----------------------------------------------------------


def _with_memory(store: SQLiteStore, name: str = "trip") -> None:
    """``_fill``, then: a failed turn (a gap in the seqs), two more messages, two pins, a
    running summary in two versions and the ``window`` strategy."""
    _fill(store, name)
    turn = store.begin_turn(name, Message(Role.USER, "this turn fails"))
    store.abort_turn(turn)
    store.append_messages(name, [Message(Role.USER, "after the gap"), Message(Role.ASSISTANT, "ok")])
    messages = store.messages(name)
    assert [m.seq for m in messages] == [1, 2, 3, 4, 7, 8]
    store.pin(name, messages[0].id or 0)
    store.pin(name, messages[4].id or 0)
    created = datetime(2024, 5, 2, 9, 0, 0, 500, tzinfo=UTC)
    store.add_summary(name, Summary(1, 2, "The user said hello.", 5, "usage", "m-1", created=created))
    store.add_summary(name, Summary(1, 7, "Hello; a story began.\n第二行。", 9, "estimate", None, created=created))
    store.update_session(name, memory="window")


def test_export_carries_summaries_pins_and_the_strategy(store: SQLiteStore) -> None:
    _with_memory(store)
    head, *records = (json.loads(line) for line in export_jsonl(store, "trip").splitlines())
    assert head["memory"] == "window"
    messages = [r for r in records if r["type"] == "message"]
    summaries = [r for r in records if r["type"] == "summary"]
    assert records == messages + summaries  # summaries after the messages they number
    assert [m.get("pinned", False) for m in messages] == [True, False, False, False, True, False]
    assert all(list(m) == MESSAGE_KEYS + (["pinned"] if "pinned" in m else []) for m in messages)
    for r in summaries:
        assert list(r) == SUMMARY_KEYS
    # seqs 1–2 and 1–7 of the store are messages 1–2 and 1–5 of the file (seqs 5, 6 were a failed turn)
    assert [(r["first_seq"], r["last_seq"], r["content"]) for r in summaries] == [
        (1, 2, "The user said hello."),
        (1, 5, "Hello; a story began.\n第二行。"),
    ]
    assert summaries[0] == {
        "type": "summary",
        "first_seq": 1,
        "last_seq": 2,
        "content": "The user said hello.",
        "tokens": 5,
        "token_method": "usage",
        "model": "m-1",
        "created": "2024-05-02T09:00:00.000500Z",
    }


def test_summaries_and_pins_round_trip_losslessly(store: SQLiteStore, tmp_path: Path) -> None:
    _with_memory(store)
    text = export_jsonl(store, "trip")
    with open_store(tmp_path / "other.db") as other:
        info = import_jsonl(other, text)
        assert info.memory == "window" and info.message_count == 6
        assert export_jsonl(other, "trip") == text
        imported = other.messages("trip")
        assert [m.seq for m in imported] == [1, 2, 3, 4, 5, 6]  # renumbered; the summaries follow
        assert [p.content for p in other.pins("trip")] == ["hello\nworld", "after the gap"]
        assert [
            (x.first_seq, x.last_seq, x.content, x.tokens, x.token_method, x.model, x.created)
            for x in other.summaries("trip")
        ] == [
            (1, 2, "The user said hello.", 5, "usage", "m-1", datetime(2024, 5, 2, 9, 0, 0, 500, tzinfo=UTC)),
            (
                1,
                5,
                "Hello; a story began.\n第二行。",
                9,
                "estimate",
                None,
                datetime(2024, 5, 2, 9, 0, 0, 500, tzinfo=UTC),
            ),
        ]
    copy = import_jsonl(store, text, name="copy")
    assert copy.name == "copy"
    assert export_jsonl(store, "copy").split("\n")[1:] == text.split("\n")[1:]


def test_tool_calls_results_and_images_round_trip_losslessly(store: SQLiteStore, tmp_path: Path) -> None:
    store.create_session("tools")
    call = {"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
    store.append_messages(
        "tools",
        [
            Message(Role.USER, "what day is it?"),
            Message(Role.ASSISTANT, "", tool_calls=(call,)),
            Message(Role.TOOL, '{"date": "2026-11-24"}', tool_call_id="c1"),
            Message(Role.ASSISTANT, "Tuesday."),
        ],
    )
    (image,) = store.add_images(
        "tools",
        [ImageRecord("a cat", str(tmp_path / "a.png"), "modelscope", "Qwen/Qwen-Image", {"seed": 7}, "t-1", size=9)],
    )
    assert image.after_seq == store.messages("tools")[-1].seq
    store.append_messages("tools", [Message(Role.USER, "nice")])
    text = export_jsonl(store, "tools")
    lines = [json.loads(x) for x in text.splitlines()]
    assert lines[2]["tool_calls"] == [call] and lines[3]["tool_call_id"] == "c1"
    assert lines[-1]["type"] == "image" and lines[-1]["after"] == 4 and lines[-1]["params"] == {"seed": 7}
    with open_store(tmp_path / "other.db") as other:
        import_jsonl(other, text)
        assert export_jsonl(other, "tools") == text
        got = other.messages("tools")
        assert got[1].tool_calls == (call,) and got[2].tool_call_id == "c1"
        (copy,) = other.images("tools")
        assert (copy.prompt, copy.task_id, copy.after_seq, copy.size) == ("a cat", "t-1", got[3].seq, 9)


def test_the_imported_summary_covers_the_same_messages(store: SQLiteStore) -> None:
    """The plan of an imported session sends the same summary in front of the same turns."""
    _with_memory(store)
    import_jsonl(store, export_jsonl(store, "trip"), name="copy")
    agent = Agent(store, ScriptedProvider(), memory="summary", date_line=False)
    original, copy = agent.context("trip"), agent.context("copy")
    renumbered = [s.text.replace("1–7", "1–5").replace("[#7 ", "[#5 ") for s in original.sections]  # seqs → 1…n
    assert renumbered == [s.text for s in copy.sections]
    assert [(e.role, e.content) for e in original.entries[1:]] == [(e.role, e.content) for e in copy.entries[1:]]


def test_a_summary_of_messages_that_are_gone_is_not_exported(store: SQLiteStore) -> None:
    _with_memory(store)
    store.add_summary("trip", Summary(5, 6, "of the failed turn only", 3))
    text = export_jsonl(store, "trip")
    assert "of the failed turn only" not in text
    assert text.count('"type": "summary"') == 2


def test_an_old_export_without_memory_records_still_imports(store: SQLiteStore) -> None:
    text = _jsonl({**_HEAD, "memory": "full"}, _MSG, {**_MSG, "role": "assistant"})
    info = import_jsonl(store, text)
    assert info.memory == "full" and store.pins("new") == [] and store.summaries("new") == []
    assert export_jsonl(store, "new").count("pinned") == 0


def test_the_store_import_is_all_or_nothing_with_summaries_and_pins(store: SQLiteStore) -> None:
    _fill(store)
    before = _snapshot(store)
    info = SessionInfo(id=0, name="bad")
    messages = [Message(Role.USER, "a"), Message(Role.ASSISTANT, "b")]
    with pytest.raises(StoreError, match="a summary covers messages 1-3 of 2"):
        store.import_session(info, messages, summaries=[Summary(1, 3, "x", 1)])
    with pytest.raises(StoreError, match="a pin refers to message 3 of 2"):
        store.import_session(info, messages, summaries=[Summary(1, 2, "x", 1)], pins=[0, 2])
    assert _snapshot(store) == before and store.find_session("bad") is None


_pinned_messages = st.lists(st.tuples(_message, st.booleans()), max_size=8)


@st.composite
def _summaries(draw: st.DrawFn, count: int) -> list[tuple[int, int, str]]:
    """Summary ranges over message numbers 1…count."""
    if count == 0:
        return []
    spans = []
    for _ in range(draw(st.integers(0, 3))):
        first = draw(st.integers(1, count))
        spans.append((first, draw(st.integers(first, count)), draw(_content)))
    return spans


@settings(max_examples=40, deadline=None)
@given(data=st.data(), rows=_pinned_messages, gaps=st.lists(st.booleans(), max_size=8))
def test_memory_round_trip_property(data: st.DataObject, rows: list[tuple[Message, bool]], gaps: list[bool]) -> None:
    """Random messages (with failed turns between them leaving seq gaps), pins and summaries:
    export → import → export is byte-identical, and the copy's summaries and pins are on
    the same messages."""
    with open_store(":memory:") as first, open_store(":memory:") as second:
        first.create_session("s")
        for i, (message, _) in enumerate(rows):
            if i < len(gaps) and gaps[i]:
                first.abort_turn(first.begin_turn("s", Message(Role.USER, "failed")))
            first.append_messages("s", [message])
        stored = first.messages("s")
        for m, (_, pinned) in zip(stored, rows, strict=True):
            if pinned:
                first.pin("s", m.id or 0)
        spans = data.draw(_summaries(len(stored)))
        for a, b, content in spans:
            first.add_summary("s", Summary(stored[a - 1].seq or 0, stored[b - 1].seq or 0, content, len(content)))
        text = export_jsonl(first, "s")
        import_jsonl(second, text)
        assert export_jsonl(second, "s") == text
        copy = second.messages("s")
        assert [m.content for m in second.pins("s")] == [m.content for m, (_, p) in zip(stored, rows, strict=True) if p]
        by_seq = {m.seq: i for i, m in enumerate(copy, 1)}
        assert sorted((by_seq[x.first_seq], by_seq[x.last_seq], x.content) for x in second.summaries("s")) == sorted(
            spans
        )


def test_context_view_keys_are_the_documented_shape(store: SQLiteStore) -> None:
    from memchat.serialization import context_view

    _with_memory(store)
    agent = Agent(store, ScriptedProvider(), context_window=300, date_line=False)
    info = store.get_session("trip")
    view = context_view(store, info, agent.context(info, "hello?"), model="m")
    assert set(view) == set(ContextView.__annotations__)
    assert all(set(e) == set(ContextEntryView.__annotations__) for e in view["entries"])
    assert all(set(s) == set(ContextSectionView.__annotations__) for s in view["sections"])
    json.dumps(view)  # plain JSON


# -- markdown ---------------------------------------------------------------------------


def test_markdown_export_is_a_readable_transcript(store: SQLiteStore) -> None:
    _fill(store)
    md = export_markdown(store, "trip")
    assert md.startswith("# trip\n")
    assert "## Persona\n\nYou are terse.\n简洁。\n" in md
    assert "## 1. User" in md and "hello\nworld" in md
    assert "## 2. Assistant · m-1 · 7 tokens" in md and "你好，世界" in md
    assert "## 4. Assistant" in md and "*interrupted*" in md
    assert md.index("## 1. User") < md.index("## 2. Assistant") < md.index("## 3. User")
    assert md.endswith("Once upon\n")
    assert "{" not in md  # no JSON in the transcript


def test_markdown_shows_the_summary_and_the_pins(store: SQLiteStore) -> None:
    _with_memory(store)
    md = export_markdown(store, "trip")
    assert "- **memory**: window" in md
    assert "## Summary of messages 1–5 · 9 tokens · 1 earlier version\n\n> Hello; a story began.\n> 第二行。\n" in md
    assert "The user said hello." not in md  # only the running summary in use
    assert re.search(r"^## 1\. User · \d+ tokens? · 📌 \*pinned\*$", md, re.M)
    assert re.search(r"^## 5\. User · \d+ tokens? · 📌 \*pinned\*$", md, re.M)
    assert md.count("📌") == 2
    assert md.index("## Summary") < md.index("## 1. User")


def test_markdown_of_an_empty_session(store: SQLiteStore) -> None:
    store.create_session("empty")
    md = export_markdown(store, "empty")
    assert md.startswith("# empty\n") and "**messages**: 0" in md


# -- bad input --------------------------------------------------------------------------

_HEAD = {"type": "session", "format": FORMAT, "name": "new"}
_MSG = {"type": "message", "role": "user", "content": "hi"}
_SUMMARY = {"type": "summary", "first_seq": 1, "last_seq": 1, "content": "s", "tokens": 1}


def _jsonl(*records: Any) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"


_IMAGE = {
    "type": "image",
    "after": 1,
    "prompt": "a cat",
    "params": {"size": "512x512"},
    "provider": "modelscope",
    "model": "Qwen/Qwen-Image",
    "task_id": "t-1",
    "path": "/tmp/x.png",
    "mime": "image/png",
    "size": 100,
    "created": None,
}

_VERSION_MSG = {k: v for k, v in _MSG.items() if k != "type"}

BAD_FILES = {
    "empty": ("", "the file is empty"),
    "blank lines": ("\n\n  \n", "the file is empty"),
    "not json": (_jsonl(_HEAD, "{not json"), "line 2: not valid JSON"),
    "truncated json": (_jsonl(_HEAD, _MSG, '{"type": "message", "role": "us'), "line 3: not valid JSON"),
    "json array": (_jsonl(_HEAD, [1, 2]), "line 2: expected a JSON object"),
    "no header": (_jsonl(_MSG), "line 1: expected the session header"),
    "wrong format": (_jsonl({**_HEAD, "format": "llm/1"}), "line 1: unsupported format 'llm/1'"),
    "missing format": (_jsonl({"type": "session", "name": "x"}), "line 1: missing field 'format'"),
    "missing name": (_jsonl({"type": "session", "format": FORMAT}), "line 1: missing field 'name'"),
    "null name": (_jsonl({**_HEAD, "name": None}), "line 1: 'name' must be a string"),
    "empty name": (_jsonl({**_HEAD, "name": "  "}), "line 1: 'name' is empty"),
    "bad settings": (_jsonl({**_HEAD, "settings": [1]}), "line 1: 'settings' must be an object"),
    "bad created": (_jsonl({**_HEAD, "created": "yesterday"}), "line 1: 'created' is not an ISO 8601 time"),
    "unknown session field": (_jsonl({**_HEAD, "api_key": "sk-x"}), "line 1: unknown field(s) 'api_key'"),
    "second header": (_jsonl(_HEAD, _MSG, _HEAD), "line 3: a second session header"),
    "unknown type": (_jsonl(_HEAD, {**_MSG, "type": "tool_call"}), "line 2: unknown line type 'tool_call'"),
    "unknown role": (_jsonl(_HEAD, _MSG, {**_MSG, "role": "bot"}), "line 3: unknown role 'bot'"),
    "unknown status": (_jsonl(_HEAD, {**_MSG, "status": "done"}), "line 2: unknown status 'done'"),
    "streaming status": (_jsonl(_HEAD, {**_MSG, "status": "streaming"}), "line 2: unknown status 'streaming'"),
    "missing role": (_jsonl(_HEAD, {"type": "message", "content": "x"}), "line 2: missing field 'role'"),
    "missing content": (_jsonl(_HEAD, {"type": "message", "role": "user"}), "line 2: missing field 'content'"),
    "content not text": (_jsonl(_HEAD, {**_MSG, "content": 42}), "line 2: 'content' must be a string, not int"),
    "negative tokens": (_jsonl(_HEAD, {**_MSG, "tokens": -1}), "line 2: 'tokens' must be a whole number"),
    "bool tokens": (_jsonl(_HEAD, {**_MSG, "tokens": True}), "line 2: 'tokens' must be a whole number"),
    "bad usage": (_jsonl(_HEAD, {**_MSG, "usage": {"prompt_tokens": "many"}}), "line 2: usage.prompt_tokens"),
    "usage not object": (_jsonl(_HEAD, {**_MSG, "usage": 3}), "line 2: 'usage' must be an object"),
    "unknown message field": (_jsonl(_HEAD, {**_MSG, "id": 7}), "line 2: unknown field(s) 'id'"),
    "bad message time": (_jsonl(_HEAD, _MSG, _MSG, {**_MSG, "created": "??"}), "line 4: 'created' is not an ISO"),
    "unknown strategy": (_jsonl({**_HEAD, "memory": "forever"}), "line 1: unknown memory 'forever'"),
    "pinned not bool": (_jsonl(_HEAD, {**_MSG, "pinned": "yes"}), "line 2: 'pinned' must be true or false"),
    "summary past the end": (
        _jsonl(_HEAD, _MSG, _MSG, {**_SUMMARY, "last_seq": 3}),
        "line 4: the summary covers messages 1–3, but the file has messages 1–2",
    ),
    "summary before a message": (
        _jsonl(_HEAD, {**_SUMMARY, "first_seq": 0}, _MSG),
        "line 2: the summary covers messages 0–1, but the file has messages 1–1",
    ),
    "summary without messages": (_jsonl(_HEAD, _SUMMARY), "line 2: a summary, but the file has no messages"),
    "version before its message": (
        _jsonl(_HEAD, {"type": "version", "after": 1, "messages": [_VERSION_MSG]}, _MSG),
        "line 2: the version follows message 1, which does not come before it",
    ),
    "version past the end": (
        _jsonl(_HEAD, _MSG, {"type": "version", "after": 3, "messages": [_VERSION_MSG]}),
        "line 3: the version follows message 3, which does not come before it",
    ),
    "version without messages": (
        _jsonl(_HEAD, _MSG, {"type": "version", "after": 1, "messages": []}),
        "line 3: 'messages' must be a list of one message or more",
    ),
    "version message not an object": (
        _jsonl(_HEAD, _MSG, {"type": "version", "after": 1, "messages": ["hi"]}),
        "line 3: messages[0] must be an object",
    ),
    "version message with a type": (
        _jsonl(_HEAD, _MSG, {"type": "version", "after": 1, "messages": [_MSG]}),
        "line 3: unknown field(s) 'type'",
    ),
    "version with a bad role": (
        _jsonl(_HEAD, _MSG, {"type": "version", "after": 1, "messages": [{**_VERSION_MSG, "role": "bot"}]}),
        "line 3: unknown role 'bot'",
    ),
    "summary backwards": (_jsonl(_HEAD, _MSG, _MSG, {**_SUMMARY, "first_seq": 2}), "line 4: 'first_seq' (2) is after"),
    "summary missing range": (
        _jsonl(_HEAD, _MSG, {k: v for k, v in _SUMMARY.items() if k != "last_seq"}),
        "line 3: missing field 'last_seq'",
    ),
    "summary null tokens": (
        _jsonl(_HEAD, _MSG, {**_SUMMARY, "tokens": None}),
        "line 3: 'tokens' must be a whole number",
    ),
    "summary unknown field": (_jsonl(_HEAD, _MSG, {**_SUMMARY, "seq": 1}), "line 3: unknown field(s) 'seq'"),
    "summary no content": (_jsonl(_HEAD, _MSG, {**_SUMMARY, "content": None}), "line 3: 'content' must be a string"),
    "bad tool calls": (
        _jsonl(_HEAD, {**_MSG, "role": "assistant", "tool_calls": [{"function": {}}]}),
        "line 2: 'tool_calls' must be a list of calls",
    ),
    "image past the end": (
        _jsonl(_HEAD, _MSG, {**_IMAGE, "after": 2}),
        "line 3: the image follows message 2, but the file has 1 messages",
    ),
    "image without prompt": (
        _jsonl(_HEAD, {k: v for k, v in _IMAGE.items() if k != "prompt"}),
        "line 2: missing field 'prompt'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_refused_whole_and_changes_nothing(store: SQLiteStore, case: str) -> None:
    _fill(store)
    before = _snapshot(store)
    text, expected = BAD_FILES[case]
    with pytest.raises(ImportFormatError) as info:
        import_jsonl(store, text)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert _snapshot(store) == before


def test_a_name_clash_raises_session_exists_and_changes_nothing(store: SQLiteStore) -> None:
    _fill(store)
    text = export_jsonl(store, "trip")
    store.append_messages("trip", [Message(Role.USER, "after the export")])
    before = _snapshot(store)
    with pytest.raises(SessionExists):
        import_jsonl(store, text)
    assert _snapshot(store) == before
    assert import_jsonl(store, text, name="trip-2").message_count == 4


def test_a_name_the_store_refuses_rolls_the_whole_import_back(store: SQLiteStore) -> None:
    _fill(store)
    text = export_jsonl(store, "trip")
    before = _snapshot(store)
    with pytest.raises(StoreError):
        import_jsonl(store, text, name="x" * 201)
    with pytest.raises(StoreError):
        import_jsonl(store, text, name="   ")
    assert _snapshot(store) == before


def test_lenient_where_harmless_crlf_bom_defaults(store: SQLiteStore) -> None:
    text = "\ufeff" + _jsonl(_HEAD, _MSG, {**_MSG, "role": "assistant", "content": "yo", "tokens": None}).replace(
        "\n", "\r\n"
    )
    info = import_jsonl(store, text)
    assert info.name == "new" and info.message_count == 2 and info.persona == "" and info.memory == "auto"
    msgs = store.messages("new")
    assert [m.status for m in msgs] == [Status.COMPLETE, Status.COMPLETE]
    assert all(m.tokens is not None and m.created is not None for m in msgs)  # filled by the store


def test_naive_times_are_read_as_utc() -> None:
    parsed = parse_jsonl(_jsonl({**_HEAD, "created": "2024-01-02T03:04:05"}, {**_MSG, "created": None}))
    assert parsed.info.created == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parsed.messages[0].created is None
