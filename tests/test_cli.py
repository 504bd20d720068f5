"""The command line, run as users run it: in subprocesses, against a real fake
OpenAI-compatible server on 127.0.0.1 and a database under the test's MEMCHAT_HOME."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from fakeserver import FakeReply, FakeServer
from memchat.config import default_db_path
from memchat.domain import Message, Role, Status, Summary, Usage
from memchat.factory import open_store
from memchat.serialization import export_jsonl
from memchat.stores.sqlite import SQLiteStore

CLI = [sys.executable, "-m", "memchat.cli.main"]


def run(
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    stdin: Any = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    full_env = os.environ.copy()
    full_env["PYTHONIOENCODING"] = "utf-8"
    full_env.update(env or {})
    if input is None and stdin is None:
        stdin = subprocess.DEVNULL  # not a terminal, and nothing to read
    return subprocess.run(
        [*CLI, *args],
        input=input,
        stdin=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=full_env,
        timeout=timeout,
    )


def one_error_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The process failed with exactly one line on stderr, no traceback."""
    assert proc.returncode != 0, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("memchat: "), lines
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def model(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """Point the CLI (via the environment the subprocesses inherit) at the fake server."""
    monkeypatch.setenv("MEMCHAT_PROVIDER", "compat")
    monkeypatch.setenv("MEMCHAT_BASE_URL", fake.url)
    return fake


@pytest.fixture
def db() -> Iterator[SQLiteStore]:
    """The CLI's own database, opened in-process to seed and inspect it."""
    store = open_store(default_db_path())
    yield store
    store.close()


def seed(store: SQLiteStore, name: str = "notes", turns: int = 2, persona: str = "") -> None:
    store.create_session(name, persona=persona, model="fake/model-a")
    for i in range(turns):
        store.append_messages(
            name,
            [
                Message(Role.USER, f"question {i} 你好"),
                Message(Role.ASSISTANT, f"answer {i}\nsecond line", usage=Usage(5, 3), model="fake/model-a"),
            ],
        )


def state(store: SQLiteStore) -> list[tuple[str, str]]:
    """Everything the user can see of the database: each session's full export."""
    return [(s.name, export_jsonl(store, s.name)) for s in store.list_sessions()]


def sessions_json() -> list[dict[str, Any]]:
    proc = run("sessions", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    data: list[dict[str, Any]] = json.loads(proc.stdout)
    return data


# -- ask ------------------------------------------------------------------------------------


def test_ask_prints_only_the_reply(model: FakeServer) -> None:
    proc = run("ask", "hello", "there")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "echo: hello there\n"
    assert proc.stderr == ""
    [session] = sessions_json()
    assert session["messages"] == 2 and session["name"].startswith("chat-")
    assert model.chat_requests[-1].messages == [{"role": "user", "content": "hello there"}]


def test_ask_streams_unicode_and_multiline_replies_untouched(model: FakeServer) -> None:
    model.script(FakeReply.text("第一行\n", "second line ", "✓"))
    proc = run("ask", "多行？")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "第一行\nsecond line ✓\n"


@pytest.mark.parametrize("how", ["dash", "absent"])
def test_ask_reads_the_question_from_stdin(model: FakeServer, how: str) -> None:
    args = ["ask", "-"] if how == "dash" else ["ask"]
    proc = run(*args, input="what is\nmemchat?\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "echo: what is\nmemchat?\n"
    assert model.chat_requests[-1].messages[-1]["content"] == "what is\nmemchat?"


def test_ask_without_a_question_on_a_terminal_is_a_usage_error(model: FakeServer) -> None:
    master, slave = pty.openpty()
    try:
        proc = run("ask", stdin=slave, timeout=20)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 2
    one_error_line(proc, "no question")
    assert model.requests == []


def test_ask_with_an_empty_question_fails_cleanly(model: FakeServer) -> None:
    proc = run("ask", input="  \n")
    assert proc.returncode == 1
    one_error_line(proc, "empty")
    assert model.requests == []


def test_ask_continues_a_named_session(model: FakeServer) -> None:
    first = run("ask", "-s", "trip", "--system", "You are terse.", "plan a trip")
    assert first.returncode == 0 and first.stdout == "echo: plan a trip\n"
    second = run("ask", "-s", "trip", "and the budget?")
    assert second.returncode == 0 and second.stdout == "echo: and the budget?\n"
    assert second.stderr == ""
    sent = model.chat_requests[-1].messages
    assert sent == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "plan a trip"},
        {"role": "assistant", "content": "echo: plan a trip"},
        {"role": "user", "content": "and the budget?"},
    ]
    [session] = sessions_json()
    assert session["name"] == "trip" and session["messages"] == 4


def test_ask_system_only_sets_the_persona_of_a_new_session(model: FakeServer) -> None:
    assert run("ask", "-s", "p", "--system", "Persona one.", "hi").returncode == 0
    proc = run("ask", "-s", "p", "--system", "Persona two.", "again")
    assert proc.returncode == 0
    assert proc.stdout == "echo: again\n"
    assert "keeps its persona" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert model.chat_requests[-1].messages[0] == {"role": "system", "content": "Persona one."}
    # the same persona again says nothing
    proc = run("ask", "-s", "p", "--system", "Persona one.", "third")
    assert proc.returncode == 0 and proc.stderr == ""


@pytest.mark.parametrize(
    ("replies", "needle"),
    [
        ([FakeReply.auth_openai()], "API key was refused"),
        ([FakeReply.server_error(500)] * 3, "model server had an error"),
        ([FakeReply.cut(after=2)], "stream"),
        ([FakeReply.context_length()] * 2, "context window"),  # and again after shrinking
    ],
    ids=["401", "500", "cut", "context-length"],
)
def test_a_failed_turn_exits_non_zero_with_one_line_and_leaves_the_session_unchanged(
    model: FakeServer, db: SQLiteStore, replies: list[FakeReply], needle: str
) -> None:
    seed(db, "kept")
    before = state(db)
    model.script(*replies)
    proc = run("ask", "-s", "kept", "this will fail")
    assert proc.returncode == 1
    one_error_line(proc, needle)
    assert proc.stdout in ("", "one two \n")  # a cut stream shows what arrived, then the error
    assert state(db) == before
    assert len(model.chat_requests) == len(replies)


def test_a_failed_first_turn_of_a_new_named_session_keeps_no_messages(model: FakeServer) -> None:
    model.script(FakeReply.auth_modelscope())
    proc = run("ask", "-s", "brand-new", "hi")
    one_error_line(proc, "API key was refused", "ModelScope token")
    assert all(s["messages"] == 0 for s in sessions_json())


def test_ctrl_c_keeps_the_partial_reply_as_interrupted(model: FakeServer, db: SQLiteStore) -> None:
    model.script(FakeReply.text("partial ", "reply ", "that ", "never ", "ends ", *["more "] * 40, delay=0.3))
    env = os.environ.copy()
    env["PYTHONIOENCODING"] = "utf-8"
    proc = subprocess.Popen(
        [*CLI, "ask", "-s", "cut", "tell me a long story"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        # as from a terminal: a suite started in the background by a shell without job control
        # ignores SIGINT, its children inherit that, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    first = os.read(proc.stdout.fileno(), 100)  # the first chunk has been streamed and stored
    assert first.startswith(b"partial")
    time.sleep(0.4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.decode().strip() == "memchat: interrupted"
    messages = db.messages("cut")
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT]
    assert messages[1].status is Status.INTERRUPTED
    assert messages[1].content.startswith("partial")
    assert (first + out).decode().startswith(messages[1].content)


def test_ask_never_imports_the_terminal_ui(model: FakeServer) -> None:
    code = (
        "import sys; from memchat.cli.main import main; rc = main(['ask', 'hi']); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'prompt_toolkit', 'pygments', 'typer', "
        "'click', 'openai', 'llama_cpp', 'pydantic'}); print(repr(heavy), file=sys.stderr); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(), stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "echo: hi\n"
    assert proc.stderr.strip() == "[]"


def test_chat_opens_the_repl_on_a_terminal(model: FakeServer, db: SQLiteStore) -> None:
    """The wiring of ``memchat chat`` to the REPL: one turn through a pseudo-terminal."""
    master, slave = pty.openpty()
    env = os.environ.copy()
    proc = subprocess.Popen(
        [*CLI, "chat", "-s", "smoke", "--system", "Be kind."], stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    seen = b""

    def wait_for(needle: bytes, timeout: float = 30) -> None:
        nonlocal seen
        end = time.monotonic() + timeout
        while needle not in seen and time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        assert needle in seen, seen.decode(errors="replace")

    try:
        wait_for(b"You")
        os.write(master, b"hello smoke\r")
        wait_for(b"echo: hello smoke")
        os.write(master, b"/exit\r")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"Traceback" not in seen
    assert [m.content for m in db.messages("smoke")] == ["hello smoke", "echo: hello smoke"]
    assert db.get_session("smoke").persona == "Be kind."


def test_main_in_process_returns_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    from memchat.cli.main import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("memchat ")
    assert main(["sessions", "show", "nobody"]) == 1
    assert capsys.readouterr().err == "memchat: no session named 'nobody' (see: memchat sessions list)\n"
    assert main(["--db", "x.db", "ask", "--bogus"]) == 2
    assert main(["sessions", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


# -- models, config, errors -----------------------------------------------------------------


def test_models_lists_the_providers_models(model: FakeServer) -> None:
    proc = run("models")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["fake/model-a", "fake/model-b"]
    proc = run("models", "--json")
    assert json.loads(proc.stdout) == ["fake/model-a", "fake/model-b"]


def test_models_when_the_server_is_down_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from fakeserver import refused_url

    monkeypatch.setenv("MEMCHAT_PROVIDER", "compat")
    monkeypatch.setenv("MEMCHAT_BASE_URL", refused_url())
    one_error_line(run("models"), "cannot reach the model server")


def test_config_masks_the_key_and_names_sources(model: FakeServer) -> None:
    env = {"MEMCHAT_API_KEY": "sk-secret123456"}
    proc = run("config", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "sk-secret123456" not in proc.stdout + proc.stderr
    assert "secret" not in proc.stdout
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()}
    assert rows["api_key"][1:] == ["sk-…3456", "env", "MEMCHAT_API_KEY"]
    assert rows["provider"][1:] == ["compat", "env", "MEMCHAT_PROVIDER"]
    data = json.loads(run("config", "--json", "--model", "m-x", env=env).stdout)
    assert data["api_key"] == {"value": "sk-…3456", "source": "env MEMCHAT_API_KEY"}
    assert data["model"] == {"value": "m-x", "source": "flag"}
    assert data["base_url"]["value"] == model.url


def test_config_file_with_a_key_readable_by_others_is_refused(clean_env: Path) -> None:
    clean_env.mkdir(parents=True, exist_ok=True)
    path = clean_env / "config.toml"
    path.write_text('provider = "compat"\nbase_url = "http://127.0.0.1:9/v1"\napi_key = "sk-file987654321"\n')
    path.chmod(0o644)
    line = one_error_line(run("config"), "chmod 600", str(path))
    assert "sk-file987654321" not in line
    one_error_line(run("sessions", "list"), "chmod 600")
    path.chmod(0o600)
    proc = run("config")
    assert proc.returncode == 0, proc.stderr
    assert "sk-file987654321" not in proc.stdout and "sk-…4321" in proc.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unknown_provider_is_one_line() -> None:
    one_error_line(run("ask", "--provider", "nope", "hi"), "unknown provider 'nope'")
    one_error_line(run("models", env={"MEMCHAT_PROVIDER": "nope"}), "unknown provider")


def test_missing_key_is_one_line_and_creates_no_database(clean_env: Path) -> None:
    one_error_line(run("--provider", "deepseek", "ask", "hi"), "needs an API key", "DEEPSEEK_API_KEY")
    assert not default_db_path().exists()


def test_usage_errors_exit_2_with_one_line() -> None:
    for args in (["--bogus"], ["ask", "--bogus", "x"], [], ["sessions"], ["sessions", "fork", "a"], ["frobnicate"]):
        proc = run(*args)
        assert proc.returncode == 2, (args, proc)
        one_error_line(proc, "--help")
        assert proc.stdout == ""
    proc = run("sessions", "truncate", "x", "--keep", "many")
    assert proc.returncode == 2 and "invalid int value" in proc.stderr


def test_version_and_help() -> None:
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("memchat 0.")
    proc = run("--help")
    assert proc.returncode == 0
    for command in ("chat", "ask", "sessions", "models", "config"):
        assert command in proc.stdout
    proc = run("sessions", "export", "--help")
    assert proc.returncode == 0 and "--format" in proc.stdout and "--db" in proc.stdout


def test_global_flags_work_before_and_after_the_command(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.db"
    with open_store(other) as store:
        seed(store, "there")
    for args in (["--db", str(other), "sessions", "list"], ["sessions", "--db", str(other), "list"]):
        proc = run(*args)
        assert proc.returncode == 0, proc.stderr
        assert "there" in proc.stdout
    proc = run("sessions", "list", "--db", str(other), "--json")
    assert [s["name"] for s in json.loads(proc.stdout)] == ["there"]
    assert not default_db_path().exists()


def test_a_database_that_is_not_one_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "not.db"
    bad.write_text("this is not sqlite\n" * 100)
    one_error_line(run("--db", str(bad), "sessions", "list"), str(bad), "not a database")
    one_error_line(run("--db", str(tmp_path), "sessions", "list"), "is a folder", str(tmp_path / "memchat.db"))


def test_lang_zh_translates_messages(db: SQLiteStore) -> None:
    line = one_error_line(run("sessions", "show", "nope", "--lang", "zh"))
    assert "查看：memchat sessions list" in line
    proc = run("--lang", "zh", "sessions", "list")
    assert proc.returncode == 0 and "还没有会话" in proc.stdout


# -- sessions -------------------------------------------------------------------------------


def test_sessions_list_newest_first(db: SQLiteStore) -> None:
    assert run("sessions", "list").stdout.startswith("no sessions yet")
    assert sessions_json() == []
    seed(db, "older", turns=1)
    seed(db, "newer", turns=2)
    proc = run("sessions", "list")
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TITLE", "MESSAGES", "MODEL", "UPDATED"]
    rows = [line.split()[:4] for line in lines[1:]]
    assert rows == [["newer", "-", "4", "fake/model-a"], ["older", "-", "2", "fake/model-a"]]
    data = sessions_json()
    assert [(s["name"], s["messages"], s["model"]) for s in data] == [
        ("newer", 4, "fake/model-a"),
        ("older", 2, "fake/model-a"),
    ]
    assert set(data[0]) == {"name", "title", "messages", "model", "provider", "created", "updated"}


def test_sessions_show(db: SQLiteStore) -> None:
    seed(db, "notes", persona="Be brief.")
    db.pin("notes", db.messages("notes")[2].id or 0)
    db.add_summary("notes", Summary(1, 2, "The user asked question 0.", 6))
    proc = run("sessions", "show", "notes")
    assert proc.returncode == 0, proc.stderr
    assert "Be brief." in proc.stdout
    assert "memory    auto\n" in proc.stdout
    assert "summary   of messages 1–2: The user asked question 0.\n" in proc.stdout
    assert "[3] user · complete · " in proc.stdout and " · pinned · " in proc.stdout
    assert "[1] user · complete" in proc.stdout and "question 0 你好" in proc.stdout
    assert "[4] assistant · complete · " in proc.stdout and "    second line" in proc.stdout
    data = json.loads(run("sessions", "show", "notes", "--json").stdout)
    assert data["name"] == "notes" and data["persona"] == "Be brief."
    assert [(m["index"], m["role"], m["status"]) for m in data["messages"]] == [
        (1, "user", "complete"),
        (2, "assistant", "complete"),
        (3, "user", "complete"),
        (4, "assistant", "complete"),
    ]
    assert data["messages"][1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert [m["pinned"] for m in data["messages"]] == [False, False, True, False]
    assert all(isinstance(m["tokens"], int) for m in data["messages"])
    one_error_line(run("sessions", "show", "missing"), "no session named 'missing'", "memchat sessions list")


def test_sessions_rename(db: SQLiteStore) -> None:
    seed(db, "a")
    seed(db, "b")
    before = state(db)
    proc = run("sessions", "rename", "a", "alpha")
    assert proc.returncode == 0 and "alpha" in proc.stdout
    assert db.find_session("a") is None and db.get_session("alpha").message_count == 4
    one_error_line(run("sessions", "rename", "alpha", "b"), "already exists")
    one_error_line(run("sessions", "rename", "nope", "x"), "no session named 'nope'")
    one_error_line(run("sessions", "rename", "alpha", "  "), "cannot be empty")
    assert [(n, t) for n, t in state(db) if n == "b"] == [(n, t) for n, t in before if n == "b"]


def test_sessions_fork_at(db: SQLiteStore) -> None:
    seed(db, "root", turns=3)
    proc = run("sessions", "fork", "root", "branch", "--at", "2")
    assert proc.returncode == 0, proc.stderr
    assert [m.content for m in db.messages("branch")] == [m.content for m in db.messages("root")[:2]]
    assert run("sessions", "fork", "root", "whole").returncode == 0
    assert db.get_session("whole").message_count == 6
    before = state(db)
    one_error_line(run("sessions", "fork", "root", "bad", "--at", "7"), "between 0 and 6")
    one_error_line(run("sessions", "fork", "root", "branch"), "already exists")
    one_error_line(run("sessions", "fork", "ghost", "x"), "no session named 'ghost'")
    assert state(db) == before


def test_sessions_delete_needs_confirmation(db: SQLiteStore) -> None:
    seed(db, "doomed")
    seed(db, "safe")
    line = one_error_line(run("sessions", "delete", "doomed"), "--yes", "not a terminal")
    assert "doomed" in line
    assert db.find_session("doomed") is not None
    one_error_line(run("sessions", "delete", "ghost", "--yes"), "no session named 'ghost'")
    proc = run("sessions", "delete", "doomed", "--yes")
    assert proc.returncode == 0 and "deleted" in proc.stdout
    assert db.find_session("doomed") is None and db.find_session("safe") is not None


@pytest.mark.parametrize(("answer", "deleted"), [("y\n", True), ("n\n", False), ("\n", False)])
def test_sessions_delete_asks_on_a_terminal(db: SQLiteStore, answer: str, deleted: bool) -> None:
    seed(db, "maybe")
    master, slave = pty.openpty()
    try:
        os.write(master, answer.encode())
        proc = run("sessions", "delete", "maybe", stdin=slave, timeout=20)
    finally:
        os.close(slave)
        os.close(master)
    assert "delete session 'maybe' and its 4 messages? [y/N]" in proc.stderr
    assert (db.find_session("maybe") is None) is deleted
    assert proc.returncode == (0 if deleted else 1)


def test_sessions_export_jsonl_md_and_file(db: SQLiteStore, tmp_path: Path) -> None:
    seed(db, "notes", persona="Be brief.")
    proc = run("sessions", "export", "notes")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == export_jsonl(db, "notes")
    assert proc.stderr == ""
    head = json.loads(proc.stdout.splitlines()[0])
    assert head["type"] == "session" and head["name"] == "notes" and head["format"] == "memchat/1"
    md = run("sessions", "export", "notes", "--format", "md").stdout
    assert md.startswith("# notes\n") and "## 1. User" in md and "question 0 你好" in md
    out = tmp_path / "notes.jsonl"
    proc = run("sessions", "export", "notes", "-o", str(out))
    assert proc.returncode == 0 and proc.stdout == ""
    assert out.read_text(encoding="utf-8") == export_jsonl(db, "notes")
    one_error_line(run("sessions", "export", "ghost"), "no session named 'ghost'")
    one_error_line(run("sessions", "export", "notes", "-o", str(tmp_path / "no" / "dir.jsonl")), "cannot write")
    proc = run("sessions", "export", "notes", "--format", "pdf")
    assert proc.returncode == 2


def test_sessions_import_round_trip(db: SQLiteStore, tmp_path: Path) -> None:
    seed(db, "notes", persona="Be brief.")
    db.pin("notes", db.messages("notes")[2].id or 0)
    db.add_summary("notes", Summary(1, 2, "The user asked question 0.", 6))
    db.update_session("notes", memory="summary")
    text = run("sessions", "export", "notes").stdout
    path = tmp_path / "notes.jsonl"
    path.write_text(text, encoding="utf-8")
    # a clash without --name changes nothing
    before = state(db)
    one_error_line(run("sessions", "import", str(path)), "a session named 'notes' already exists")
    assert state(db) == before
    proc = run("sessions", "import", str(path), "--name", "copy")
    assert proc.returncode == 0 and "copy" in proc.stdout
    copy = run("sessions", "export", "copy").stdout
    assert copy.split("\n")[1:] == text.split("\n")[1:]
    assert copy.split("\n")[0] == text.split("\n")[0].replace('"name": "notes"', '"name": "copy"')
    # from stdin, into another database
    other = tmp_path / "other.db"
    proc = run("--db", str(other), "sessions", "import", "-", input=text)
    assert proc.returncode == 0, proc.stderr
    assert run("--db", str(other), "sessions", "export", "notes").stdout == text
    with open_store(other) as imported:
        assert [m.content for m in imported.pins("notes")] == ["question 1 你好"]
        assert [(x.first_seq, x.last_seq, x.content) for x in imported.summaries("notes")] == [
            (1, 2, "The user asked question 0.")
        ]
        assert imported.get_session("notes").memory == "summary"


_HEADER = '{"type": "session", "format": "memchat/1", "name": "x"}\n'


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (
            _HEADER + '{"type": "message", "role": "bot", "content": ""}\n',
            "line 2: unknown role 'bot'",
        ),
        ('{"type": "session", "format": "memchat/1", "name": "x"}\n{oops\n', "line 2: not valid JSON"),
        ("# a markdown export\n", "line 1: not valid JSON"),
        ("", "the file is empty"),
        ('{"type": "message", "role": "user", "content": "hi"}\n', "line 1: expected the session header"),
    ],
    ids=["role", "json", "markdown", "empty", "no-header"],
)
def test_sessions_import_bad_files_change_nothing(db: SQLiteStore, tmp_path: Path, content: str, needle: str) -> None:
    seed(db, "notes")
    before = state(db)
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    line = one_error_line(run("sessions", "import", str(path)), "cannot import", needle)
    assert str(path) in line
    one_error_line(run("sessions", "import", "-", input=content), "cannot import: stdin:", needle)
    assert state(db) == before


def test_sessions_import_unreadable_files(db: SQLiteStore, tmp_path: Path) -> None:
    one_error_line(run("sessions", "import", str(tmp_path / "missing.jsonl")), "cannot read", "missing.jsonl")
    binary = tmp_path / "latin1.jsonl"
    binary.write_bytes(b'{"type": "session", "name": "caf\xe9"}\n')
    one_error_line(run("sessions", "import", str(binary)), "not UTF-8")
    assert state(db) == []


def test_import_into_a_fresh_home_creates_nothing_on_a_bad_file(clean_env: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("nonsense\n")
    one_error_line(run("sessions", "import", str(path)), "not valid JSON")
    assert not default_db_path().exists()


def test_sessions_truncate_drops_summaries_of_removed_messages(db: SQLiteStore) -> None:
    seed(db, "long", turns=3)
    db.add_summary("long", Summary(1, 2, "of the first turn", 3))
    assert run("sessions", "truncate", "long", "--keep", "4").returncode == 0
    assert [x.content for x in db.summaries("long")] == ["of the first turn"]  # still covers kept messages
    db.add_summary("long", Summary(1, 4, "of two turns", 3))
    assert run("sessions", "truncate", "long", "--keep", "2").returncode == 0
    assert [x.content for x in db.summaries("long")] == ["of the first turn"]  # the other is rebuilt when needed


def test_sessions_truncate(db: SQLiteStore) -> None:
    seed(db, "long", turns=3)
    proc = run("sessions", "truncate", "long", "--keep", "2")
    assert proc.returncode == 0, proc.stderr
    assert "kept 2" in proc.stdout and "removed 4" in proc.stdout
    assert [m.content for m in db.messages("long")] == ["question 0 你好", "answer 0\nsecond line"]
    before = state(db)
    one_error_line(run("sessions", "truncate", "long", "--keep", "-1"), "0 or more")
    one_error_line(run("sessions", "truncate", "ghost", "--keep", "1"), "no session named 'ghost'")
    assert state(db) == before
    assert run("sessions", "truncate", "long", "--keep", "0").returncode == 0
    assert db.messages("long") == []


# -- memory ----------------------------------------------------------------------------------


def long_session(store: SQLiteStore, name: str = "long", turns: int = 30) -> None:
    store.create_session(name, persona="Be brief.", model="fake/model-a")
    for i in range(turns):
        fact = f"my cat is called Mimi ({i})" if i == 0 else f"filler message number {i} about the weather today"
        store.append_messages(name, [Message(Role.USER, fact), Message(Role.ASSISTANT, f"noted {i}, " * 6)])


def test_ask_memory_flags_bound_what_is_sent(model: FakeServer, db: SQLiteStore) -> None:
    long_session(db)
    proc = run("ask", "-s", "long", "--memory", "window", "--context-window", "400", "what is new?")
    assert proc.returncode == 0, proc.stderr
    sent = model.chat_requests[-1].messages
    assert sent[0] == {"role": "system", "content": "Be brief."}  # the persona always first
    assert sent[-1] == {"role": "user", "content": "what is new?"}
    assert 3 <= len(sent) < 20  # the newest turns only
    assert all(m["content"] != "my cat is called Mimi (0)" for m in sent)
    assert db.get_session("long").memory == "auto"  # a flag does not change the session
    # the same from the environment
    proc = run("ask", "-s", "long", "again?", env={"MEMCHAT_MEMORY": "window", "MEMCHAT_CONTEXT_WINDOW": "400"})
    assert proc.returncode == 0, proc.stderr
    assert len(model.chat_requests[-1].messages) < 20
    # full: everything, or one clear line when it does not fit
    before = state(db)
    proc = run("ask", "-s", "long", "--memory", "full", "--context-window", "400", "all of it?")
    one_error_line(proc, "no longer fits", "/memory auto")
    assert state(db) == before


def test_ask_recall_searches_the_other_sessions_unless_told_not_to(model: FakeServer, db: SQLiteStore) -> None:
    long_session(db, "pets", turns=2)
    db.create_session("today")
    assert run("ask", "-s", "today", "is my cat called Mimi?").returncode == 0  # --recall all: the default
    system_message = model.chat_requests[-1].messages[0]
    assert system_message["role"] == "system"
    assert re.search(r"^\[\d{4}-\d\d-\d\d pets #1 user\] my cat is called Mimi \(0\)$", system_message["content"], re.M)
    assert run("ask", "-s", "today", "--recall", "session", "what is my cat called?").returncode == 0
    assert all("pets" not in m["content"] for m in model.chat_requests[-1].messages)


@pytest.mark.parametrize(
    ("args", "env", "code", "needle"),
    [
        (["ask", "--memory", "forever", "hi"], {}, 2, "invalid choice: 'forever'"),
        (["ask", "--context-window", "-5", "hi"], {}, 2, "must be a positive number of tokens, not -5"),
        (["ask", "--context-window", "lots", "hi"], {}, 2, "expected a number of tokens, not 'lots'"),
        (["ask", "--recall", "everywhere", "hi"], {}, 2, "invalid choice: 'everywhere'"),
        (["chat", "--memory", "x"], {}, 2, "invalid choice"),
        (["sessions", "context", "s", "--context-window", "0"], {}, 2, "must be a positive number"),
        (["ask", "hi"], {"MEMCHAT_MEMORY": "forever"}, 1, "unknown memory strategy 'forever'"),
        (["ask", "hi"], {"MEMCHAT_CONTEXT_WINDOW": "-1"}, 1, "the context window must be a positive number"),
        (["ask", "hi"], {"MEMCHAT_CONTEXT_WINDOW": "big"}, 1, "context_window must be a number of tokens"),
    ],
)
def test_bad_memory_settings_are_one_line(
    model: FakeServer, args: list[str], env: dict[str, str], code: int, needle: str
) -> None:
    proc = run(*args, env=env)
    assert proc.returncode == code
    one_error_line(proc, needle)
    assert model.requests == [] and proc.stdout == ""


def test_chat_takes_the_memory_flags() -> None:
    from memchat.cli.main import build_parser
    from memchat.cli.turns import _agent, memory_settings

    args = build_parser().parse_args(["chat", "--memory", "recall", "--context-window", "2048", "--recall", "all"])
    agent = _agent(memory_settings(args, system=None))
    try:
        assert (agent.memory, agent.context_window, agent.recall_all) == ("recall", 2048, True)
    finally:
        agent.close()
    args = build_parser().parse_args(["chat"])
    agent = _agent(memory_settings(args))
    try:  # recall reaches the user's other sessions by default
        assert (agent.memory, agent.context_window, agent.recall_all) == (None, None, True)
    finally:
        agent.close()
    args = build_parser().parse_args(["chat", "--recall", "session"])
    agent = _agent(memory_settings(args))
    try:
        assert agent.recall_all is False
    finally:
        agent.close()


def test_sessions_context_json_explains_every_part(model: FakeServer, db: SQLiteStore) -> None:
    long_session(db)
    db.pin("long", db.messages("long")[0].id or 0)
    db.add_summary("long", Summary(1, 20, "The user has a cat called Mimi.", 9))
    before = state(db)
    proc = run("sessions", "context", "long", "--json", "--context-window", "600", "--text", "the weather?")
    assert proc.returncode == 0, proc.stderr
    view = json.loads(proc.stdout)
    assert state(db) == before and model.requests == []  # it writes nothing and calls no model
    assert list(view) == [
        "session", "strategy", "model", "tokens", "budget", "entries", "sections", "omitted", "needs_summary", "notes"
    ]  # fmt: skip
    assert (view["session"], view["strategy"], view["model"]) == ("long", "auto", "fake/model-a")
    budget = view["budget"]
    assert budget["window"] == 600 and budget["limit"] == 600 - budget["reserve"] - budget["tools"]
    assert view["tokens"] == budget["used"] <= budget["limit"]
    assert view["tokens"] == sum(e["tokens"] + 4 for e in view["entries"])
    system_entry, *turns, new = view["entries"]
    assert (system_entry["index"], system_entry["role"], system_entry["kind"]) == (1, "system", "system")
    assert new == {
        "index": len(view["entries"]),
        "role": "user",
        "kind": "new",
        "tokens": new["tokens"],
        "message": None,
        "content": "the weather?",
    }
    numbers = [e["message"] for e in turns]
    assert all(e["kind"] == "verbatim" for e in turns) and numbers == list(range(61 - len(turns), 61))
    kinds = [sec["kind"] for sec in view["sections"]]
    assert kinds[:3] == ["persona", "summary", "pinned"]
    summary, pinned = view["sections"][1], view["sections"][2]
    assert summary["covers"] == [1, 20] and "The user has a cat called Mimi." in summary["text"]
    assert pinned["messages"] == [1] and "my cat is called Mimi (0)" in pinned["text"]
    assert kinds == ["persona", "summary", "pinned", "recall"]
    # the sections are the one system message, recall last (what comes before it stays a stable prefix)
    assert system_entry["content"] == "\n\n".join(sec["text"] for sec in view["sections"])
    recall = view["sections"][3]
    assert recall["matches"] and all(m["session"] == "long" and m["score"] > 0 for m in recall["matches"])
    recalled = [m["message"] for m in recall["matches"]]
    assert all(n is not None and 20 < n < numbers[0] for n in recalled)  # older than the window, after the summary
    # no seq gaps: numbers are seqs
    assert all(re.search(rf"^\[\d{{4}}-\d\d-\d\d #{n} (user|assistant)\] ", recall["text"], re.M) for n in recalled)
    assert recall["note"].startswith("matched #")
    omitted = view["omitted"]
    assert omitted["total"] == 60 - len(turns)
    assert omitted["summarized"] == 20 and omitted["pinned"] == 1
    assert omitted["recalled"] == len(recalled)
    assert omitted["dropped"] == omitted["total"] - 20 - len(recalled)
    # the plain text says the same
    proc = run("sessions", "context", "long", "--context-window", "600", "--text", "the weather?")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("session  long\nmemory   auto\nmodel    fake/model-a\nbudget   [")
    assert f"{budget['used']:,} / {budget['limit']:,} tokens" in out
    assert f"window 600 − {budget['reserve']:,} reserved for the reply = {budget['limit']:,} for messages" in out
    assert "    · summary · " in out and "covers messages 1–20" in out and "    · pinned · " in out
    assert "[1] system · system · " in out and "    · recalled · " in out  # recall: a part of the one system message
    assert f"[2] user · verbatim · message {numbers[0]} · " in out
    assert f"[{len(view['entries'])}] user · new message · " in out and "    the weather?" in out
    assert f"not sent verbatim: {omitted['total']} older messages (20 summarized, 1 pinned" in out


def test_sessions_context_of_a_short_session_and_errors(model: FakeServer, db: SQLiteStore) -> None:
    seed(db, "notes", persona="Be brief.")
    proc = run("sessions", "context", "notes", "--memory", "window", "--lang", "zh")
    assert proc.returncode == 0, proc.stderr
    assert "记忆" in proc.stdout and "window" in proc.stdout and "所有保存的消息都原文发送" in proc.stdout
    assert "[1] system · 角色 · " in proc.stdout and "[2] user · 原文 · 第 1 条消息 · " in proc.stdout
    one_error_line(run("sessions", "context", "ghost"), "no session named 'ghost'")
    long_session(db, "long")
    one_error_line(run("sessions", "context", "long", "--memory", "full", "--context-window", "300"), "no longer fits")


# -- two processes, one database ------------------------------------------------------------


def _spawn(args: Sequence[str]) -> subprocess.Popen[str]:
    env = os.environ.copy()
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.Popen(
        [*CLI, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=env,
    )


@pytest.mark.slow
def test_concurrent_asks_on_one_database_lose_nothing(model: FakeServer, db: SQLiteStore) -> None:
    model.delay = 0.02  # replies stream for a while, so the writers overlap
    n = 6
    procs = [_spawn(["ask", "-s", "shared", f"shared question {i}"]) for i in range(n)]
    procs += [_spawn(["ask", "-s", f"solo-{i}", f"solo question {i}"]) for i in range(n)]
    results = [(p.args, *p.communicate(timeout=120), p.returncode) for p in procs]
    for args, out, err, code in results:
        assert code == 0, (args, err)
        assert "locked" not in err
        assert out.startswith("echo: ")
    messages = db.messages("shared")
    assert len(messages) == 2 * n
    assert sorted(m.content for m in messages if m.role is Role.USER) == sorted(
        f"shared question {i}" for i in range(n)
    )
    assert sorted(m.content for m in messages if m.role is Role.ASSISTANT) == sorted(
        f"echo: shared question {i}" for i in range(n)
    )
    assert all(m.status is Status.COMPLETE for m in messages)
    for i in range(n):
        assert [m.content for m in db.messages(f"solo-{i}")] == [f"solo question {i}", f"echo: solo question {i}"]
    assert len(model.chat_requests) == 2 * n


def test_a_failed_ask_leaves_no_session_behind(model: FakeServer, db: SQLiteStore) -> None:
    model.script(FakeReply.error_response(400, {"error": {"message": "bad request"}}))
    proc = run("ask", "hello?")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    model.script(FakeReply.error_response(400, {"error": {"message": "bad request"}}))
    assert run("ask", "-s", "brand-new", "hello?").returncode == 1
    assert db.list_sessions() == []  # neither the unnamed nor the named one made for the failed turn
    db.create_session("kept")
    model.script(FakeReply.error_response(400, {"error": {"message": "bad request"}}))
    assert run("ask", "-s", "kept", "hello?").returncode == 1
    assert [s.name for s in db.list_sessions()] == ["kept"]  # an existing session stays
