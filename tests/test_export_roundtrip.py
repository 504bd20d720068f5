"""Bad input, export and import (issue 8): hypothesis builds whole sessions — every role and
status, tool calls and their results, pins, summaries, images, failed turns, the memory strategy;
text in Chinese, emoji, control characters, line separators, very long messages — and checks that
export → import → export gives the same bytes, in JSONL and in Markdown, through the library and
through the command line (``memchat sessions export`` / ``import``). Then it damages exports
(truncated, bytes flipped, lines dropped or added, another format version, not UTF-8) and checks
that ``memchat sessions import`` either imports a consistent session or says what is wrong in one
line on stderr (exit 1, no traceback) and changes nothing in the database."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import campaign
from attachfiles import pdf, png
from memchat.cli.main import main
from memchat.domain import Attachment, ImageRecord, Message, Role, Status, Summary, Usage
from memchat.factory import open_store
from memchat.serialization import FORMAT, export_jsonl, export_markdown, import_jsonl
from memchat.stores.base import Store

# -- what sessions are made of -------------------------------------------------------------------------

_SPECIAL = (
    "中文字符，标点。「引号」"
    "🙂🎉👩‍👩‍👧‍👦🇨🇳"  # emoji, a ZWJ sequence, a flag
    "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85\u2028\u2029\ufeff\u200b"  # control characters, separators, BOM, ZWSP
    "\n\r\t \"'\\`*_#>|[]()<>&"  # line breaks and what JSON and Markdown escape or use
)
_text = st.text(st.characters(exclude_categories=["Cs"]) | st.sampled_from(_SPECIAL), max_size=40)
#: now and then a very long message (up to ~120 KB on a full run, 18 KB reduced): a random piece repeated
_long = st.builds(
    lambda piece, n: (piece or "长") * n,
    st.text(st.sampled_from(_SPECIAL + "abc"), max_size=6),
    st.integers(1, campaign.size(3_000, 20_000)),
)
_content = st.one_of(_text, _text, _text, _long)
_name = st.text(st.characters(exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"]), min_size=1, max_size=30)


@st.composite
def _tool_call(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": draw(st.text(min_size=1, max_size=12)),
        "type": "function",
        "function": {"name": draw(_text), "arguments": draw(_text)},
    }


@st.composite
def _message(draw: st.DrawFn) -> Message:
    role = draw(st.sampled_from(list(Role)))
    return Message(
        role=role,
        content=draw(_content),
        status=draw(st.sampled_from([Status.COMPLETE, Status.INTERRUPTED, Status.STOPPED])),
        tokens=draw(st.none() | st.integers(0, 2**40)),
        token_method=draw(st.none() | st.sampled_from(["estimate", "usage", "exact:qwen", "中文"])),
        usage=draw(st.none() | st.builds(Usage, st.integers(0, 2**40), st.integers(0, 2**40))),
        model=draw(st.none() | _text),
        tool_calls=tuple(draw(st.lists(_tool_call(), min_size=1, max_size=3)))
        if role is Role.ASSISTANT and draw(st.booleans())
        else None,
        tool_call_id=draw(_text) if role is Role.TOOL and draw(st.booleans()) else None,
        attachments=tuple(draw(st.lists(_attachment(), max_size=3))) if role is Role.USER else (),
    )


def _file(name: str, kind: str, data: bytes) -> Attachment:
    return Attachment(name, kind, len(data), hashlib.sha256(data).hexdigest(), data)


@st.composite
def _attachment(draw: st.DrawFn) -> Attachment:
    """A file sent with a user message (issue 18): an image, a PDF, or text of any script; the
    same bytes now and then under two names (stored once)."""
    text = draw(_text).replace("\x00", "")
    return draw(
        st.sampled_from(
            [
                _file("photo.png", "image/png", png()),
                _file(draw(_name).replace("/", "_") + ".txt", "text/plain", text.encode() or b"-"),
                _file(draw(_name).replace("/", "_") + ".md", "text/markdown", b"# same bytes\n"),
                _file("report.pdf", "application/pdf", pdf()),
            ]
        )
    )


@dataclass
class Plan:
    """A session to build: its messages (each maybe after a failed turn, maybe pinned), its
    summaries (message numbers from 1), its images (after message n) and settings."""

    name: str
    persona: str
    memory: str
    model: str | None
    settings: dict[str, Any]
    messages: list[tuple[Message, bool, bool]]
    summaries: list[tuple[int, int, str]]
    images: list[tuple[int, str, dict[str, Any]]]
    #: then versions (issue 17): ("retry", message) regenerates the last reply, ("edit", i,
    #: message) gives shown message i a new version, ("choose", i, k) shows version k at message i
    versions: list[tuple[Any, ...]] = field(default_factory=list)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    rows = draw(st.lists(st.tuples(_message(), st.booleans(), st.booleans()), max_size=7))
    n = len(rows)
    summaries = []
    if n:
        for _ in range(draw(st.integers(0, 2))):
            first = draw(st.integers(1, n))
            summaries.append((first, draw(st.integers(first, n)), draw(_content)))
    images = [
        (
            draw(st.integers(0, n)),
            draw(_text),
            draw(st.dictionaries(st.text(max_size=4), st.integers() | _text, max_size=2)),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    return Plan(
        name=draw(_name),
        persona=draw(_content),
        memory=draw(st.sampled_from(["auto", "full", "window", "summary", "recall"])),
        model=draw(st.none() | _text),
        settings=draw(st.dictionaries(_text, st.integers() | _text | st.booleans() | st.none(), max_size=3)),
        messages=rows,
        summaries=summaries,
        images=images,
        versions=draw(
            st.lists(
                st.one_of(
                    st.tuples(st.just("retry"), _message()),
                    st.tuples(st.just("edit"), st.integers(0, 8), _message()),
                    st.tuples(st.just("choose"), st.integers(0, 8), st.integers(0, 3)),
                ),
                max_size=4,
            )
        ),
    )


def _version_op(store: Store, name: str, op: tuple[Any, ...]) -> None:
    shown = store.messages(name)
    if op[0] == "retry":
        users = [i for i, m in enumerate(shown) if m.role is Role.USER]
        after = shown[users[-1] + 1 :] if users else shown
        handle = store.begin_turn(name, None, replace=after[0].id if after else None)
        store.finish_turn(handle, op[1].content, status=op[1].status, tool_calls=op[1].tool_calls or ())
    elif shown and op[0] == "edit":
        message = op[2]
        handle = store.begin_turn(name, message, replace=shown[op[1] % len(shown)].id)
        store.finish_turn(handle, message.content[::-1], status=message.status)
    elif shown and op[0] == "choose":
        versions = store.versions(name, shown[op[1] % len(shown)].id or 0)
        store.choose_version(name, versions[op[2] % len(versions)].head)


def build(store: Store, plan: Plan) -> None:
    store.create_session(plan.name, persona=plan.persona, model=plan.model, settings=plan.settings)
    store.update_session(plan.name, memory=plan.memory)

    def images_after(n: int) -> None:  # an image follows the session's last message when it is made
        for after, prompt, params in plan.images:
            if after == n:
                path = f"/images/{prompt[:10]!r} (1).png"
                store.add_images(plan.name, [ImageRecord(prompt, path, "modelscope", "Qwen/Qwen-Image", params)])

    seqs: list[int] = [0]
    images_after(0)
    for message, after_a_failed_turn, pinned in plan.messages:
        if after_a_failed_turn:  # a gap in the seqs
            store.abort_turn(store.begin_turn(plan.name, Message(Role.USER, "failed")))
        (stored,) = store.append_messages(plan.name, [message])
        seqs.append(stored.seq or 0)
        if pinned:
            store.pin(plan.name, stored.id or 0)
        images_after(len(seqs) - 1)
    for first, last, content in plan.summaries:
        store.add_summary(plan.name, Summary(seqs[first], seqs[last], content, len(content)))
    for op in plan.versions:
        _version_op(store, plan.name, op)


ROUND_TRIPS = campaign.size(40, 600)
SETTINGS = settings(max_examples=ROUND_TRIPS, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.mark.campaign
def test_export_import_export_is_identical_in_jsonl_and_markdown() -> None:
    figures = {"sessions": 0, "messages": 0, "versions": 0, "longest_message": 0, "bytes": 0}

    @SETTINGS
    @given(plan=plans())
    def round_trip(plan: Plan) -> None:
        with open_store(":memory:") as first, open_store(":memory:") as second:
            build(first, plan)
            jsonl, markdown = export_jsonl(first, plan.name), export_markdown(first, plan.name)
            import_jsonl(second, jsonl)
            assert export_jsonl(second, plan.name) == jsonl
            assert export_markdown(second, plan.name) == markdown
            # and once more, under another name: only the header's name differs
            import_jsonl(second, jsonl, name=plan.name + " (copy)")
            assert export_jsonl(second, plan.name + " (copy)").split("\n")[1:] == jsonl.split("\n")[1:]
            copy = second.messages(plan.name)
            assert [(m.role, m.content, m.status, m.tool_calls, m.tool_call_id) for m in copy] == [
                (m.role, m.content, m.status, m.tool_calls, m.tool_call_id) for m in first.messages(plan.name)
            ]
            # every version of every point, whole, in the same order
            assert [[(m.role, m.content) for m in v.messages] for v in second.shelved_versions(plan.name)] == [
                [(m.role, m.content) for m in v.messages] for v in first.shelved_versions(plan.name)
            ]
            assert [(v.number, v.count) for v in second.version_marks(plan.name).values()] == [
                (v.number, v.count) for v in first.version_marks(plan.name).values()
            ]
            figures["versions"] += len(first.shelved_versions(plan.name))
            figures["sessions"] += 1
            figures["messages"] += len(copy)
            figures["longest_message"] = max([figures["longest_message"], *(len(m.content) for m in copy)])
            figures["bytes"] += len(jsonl.encode())

    round_trip()
    campaign.record("roundtrip_library", {"examples": ROUND_TRIPS, **figures})


# -- through the command line ------------------------------------------------------------------------------


@dataclass
class Ran:
    code: int
    out: str
    err: str


def run(*argv: str, stdin: bytes = b"") -> Ran:
    """``memchat ARGV`` in this process: its exit code, stdout and stderr (an exception escaping
    ``main`` — a traceback for the user — fails the test)."""
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    sys.stdout, sys.stderr = out, err
    try:
        code = main(list(argv))
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    out.flush()
    return Ran(code, out.buffer.getvalue().decode("utf-8"), err.getvalue())  # type: ignore[attr-defined]


def one_line_error(ran: Ran, code: int = 1) -> str:
    assert ran.code == code, ran
    assert "Traceback" not in ran.err, ran.err
    lines = ran.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("memchat: ") and ran.err.endswith("\n"), ran.err
    return lines[0]


def dump(db: Path) -> list[str]:
    """Everything in the database (schema and rows), and a check that it is sound."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return list(conn.iterdump())


@contextmanager
def database(plan: Plan) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "memchat.db"
        with open_store(db) as store:
            build(store, plan)
        yield db


CLI_ROUND_TRIPS = campaign.size(15, 200)


@pytest.mark.campaign
def test_the_command_line_round_trip_is_identical_too() -> None:
    @settings(max_examples=CLI_ROUND_TRIPS, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(plan=plans(), fmt=st.sampled_from(["jsonl", "md"]))
    def round_trip(plan: Plan, fmt: str) -> None:
        with database(plan) as db:
            first = run("sessions", "export", plan.name, "--format", fmt, "--db", str(db))
            assert first.code == 0 and first.err == "", first
            exported = db.parent / "export.jsonl"
            assert run("sessions", "export", plan.name, "-o", str(exported), "--db", str(db)).code == 0
            other = db.parent / "other.db"
            imported = run("sessions", "import", str(exported), "--db", str(other))
            assert imported.code == 0 and imported.err == "", imported
            again = run("sessions", "export", plan.name, "--format", fmt, "--db", str(other))
            assert again.out == first.out
            # stdin too
            piped = run("sessions", "import", "-", "--name", "piped", "--db", str(other), stdin=exported.read_bytes())
            assert piped.code == 0, piped

    round_trip()
    campaign.record("roundtrip_cli", {"examples": CLI_ROUND_TRIPS})


# -- damaged files ---------------------------------------------------------------------------------------------


@st.composite
def damaged(draw: st.DrawFn, export: bytes) -> tuple[str, bytes]:
    """``export`` damaged one way or another: (how, the bytes)."""
    lines = export.split(b"\n")
    how = draw(
        st.sampled_from(
            ["truncated", "byte", "drop line", "add line", "swap lines", "version", "header field", "not utf-8", "junk"]
        )
    )
    if how == "truncated":
        data = export[: draw(st.integers(0, max(0, len(export) - 1)))]
    elif how == "byte":
        i = draw(st.integers(0, len(export) - 1))
        data = export[:i] + bytes([draw(st.integers(0, 255))]) + export[i + 1 :]
    elif how == "drop line":
        i = draw(st.integers(0, len(lines) - 1))
        data = b"\n".join(lines[:i] + lines[i + 1 :])
    elif how == "add line":
        i = draw(st.integers(0, len(lines)))
        extra = draw(
            st.sampled_from(
                [
                    b"{}",
                    b"[]",
                    b"null",
                    b"42",
                    b'"x"',
                    b"{",
                    b'{"type": "message"}',
                    b'{"type": "session"}',
                    b'{"type": "summary", "first_seq": 1, "last_seq": 99, "content": "", "tokens": 0}',
                    b'{"type": "message", "role": "robot", "content": ""}',
                    b'{"type": "message", "role": "user", "content": "x", "status": "streaming"}',
                    b'{"type": "message", "role": "user", "content": "x", "tokens": -1}',
                    b'{"type": "message", "role": "user", "content": "x", "created": "yesterday"}',
                    b'{"type": "message", "role": "user", "content": "x", "extra": 1}',
                    b'{"type": "image", "after": 999, "prompt": "", "path": "", "provider": "", "model": ""}',
                ]
            )
            | st.binary(max_size=40)
        )
        data = b"\n".join([*lines[:i], extra, *lines[i:]])
    elif how == "swap lines" and len(lines) > 2:
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
        data = b"\n".join(lines)
    elif how == "version":
        head = json.loads(lines[0])
        head["format"] = draw(st.sampled_from(["memchat/2", "memchat/0", "memchat", "", 1, None, ["memchat/1"]]))
        data = b"\n".join([json.dumps(head).encode(), *lines[1:]])
    elif how == "header field":
        head = json.loads(lines[0])
        key = draw(st.sampled_from(["name", "persona", "memory", "settings", "created", "model", "type"]))
        head[key] = draw(st.sampled_from([None, 0, -1, True, [], {}, "", " ", "nonsense", "2024-13-45"]))
        data = b"\n".join([json.dumps(head).encode(), *lines[1:]])
    elif how == "not utf-8":
        i = draw(st.integers(0, len(export)))
        data = export[:i] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xfe\xff"])) + export[i:]
    else:
        data = draw(st.binary(max_size=200))
    return how, data


DAMAGED = campaign.size(60, 1500)


@pytest.mark.campaign
def test_a_damaged_file_imports_whole_or_is_refused_in_one_line_changing_nothing() -> None:
    outcomes: dict[str, dict[str, int]] = {}

    @settings(max_examples=DAMAGED, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data(), plan=plans())
    def import_damaged(data: st.DataObject, plan: Plan) -> None:
        with database(plan) as db:
            export = export_jsonl_of(db, plan.name).encode()
            how, damaged_bytes = data.draw(damaged(export))
            path = db.parent / "damaged.jsonl"
            path.write_bytes(damaged_bytes)
            before = dump(db)
            ran = run("sessions", "import", str(path), "--name", "imported", "--db", str(db))
            tally = outcomes.setdefault(how, {"refused": 0, "imported": 0})
            if ran.code == 0:  # still a valid export (a cut at a line's end, a harmless byte): a whole session
                tally["imported"] += 1
                with open_store(db) as store:
                    again = export_jsonl(store, "imported")
                    with open_store(":memory:") as fresh:
                        import_jsonl(fresh, again)
                        assert export_jsonl(fresh, "imported") == again
                    assert [s.name for s in store.list_sessions()].count(plan.name) == 1
            else:
                tally["refused"] += 1
                line = one_line_error(ran)
                assert "damaged.jsonl" in line or "not UTF-8" in line or "UTF-8" in line, line
                assert dump(db) == before

    import_damaged()
    campaign.record(
        "import_damaged",
        {"examples": DAMAGED, "outcomes": outcomes, "refused": sum(o["refused"] for o in outcomes.values())},
    )


def export_jsonl_of(db: Path, name: str) -> str:
    with open_store(db) as store:
        return export_jsonl(store, name)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b'{"type": "session", "format": "memchat/2", "name": "x"}\n', "unsupported format 'memchat/2'"),
        (b'{"type": "session", "format": "memchat/1", "name": "x"}\n{"type": "mess', "line 2: not valid JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b"# trip\n\n## 1. User\n\nhello\n", "line 1: not valid JSON"),  # a Markdown export
        (
            b'{"type": "session", "format": "' + FORMAT.encode() + b'", "name": "x"}\n[1, 2]\n',
            "line 2: expected a JSON object",
        ),
    ],
)
def test_typical_bad_files_name_the_problem(tmp_path: Path, content: bytes, expected: str) -> None:
    db = tmp_path / "m.db"
    with open_store(db) as store:
        store.create_session("kept")
    before = dump(db)
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    line = one_line_error(run("sessions", "import", str(path), "--db", str(db)))
    assert expected in line, line
    assert dump(db) == before
    line = one_line_error(run("sessions", "import", str(tmp_path / "missing.jsonl"), "--db", str(db)))
    assert "missing.jsonl" in line
    assert dump(db) == before


def test_the_command_line_import_keeps_the_images(tmp_path: Path) -> None:
    """Regression: ``memchat sessions import`` dropped the export's image lines."""
    plan = Plan(
        "art", "", "auto", None, {}, [(Message(Role.USER, "a cat"), False, False)], [], [(1, "a cat", {"seed": 7})]
    )
    with database(plan) as db:
        exported = tmp_path / "art.jsonl"
        assert run("sessions", "export", "art", "-o", str(exported), "--db", str(db)).code == 0
        assert run("sessions", "import", str(exported), "--db", str(tmp_path / "other.db")).code == 0
        with open_store(tmp_path / "other.db") as other:
            assert [(i.prompt, i.params) for i in other.images("art")] == [("a cat", {"seed": 7})]
            assert export_jsonl(other, "art") == exported.read_text(encoding="utf-8")
