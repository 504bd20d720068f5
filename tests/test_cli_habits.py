"""The command line as ``llm`` users type it (issue 17, finding 4: piped text plus a question,
``ask -c``), no sessions left by a failed ``ask`` (finding 6), ``sessions search`` and titles, and
every bad path, flag or model name as one line with the fix (finding 10) — in subprocesses,
against the fake model server and a database under the test's MEMCHAT_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fakeserver import FakeReply, FakeServer
from memchat.config import data_dir, default_db_path
from memchat.domain import Message, Role
from memchat.factory import open_store

CLI = [sys.executable, "-m", "memchat.cli.main"]


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})}
    return subprocess.run(
        [*CLI, *args],
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=full_env,
        timeout=60,
    )


def one_error_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode != 0, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("memchat: ") and "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def model(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    monkeypatch.setenv("MEMCHAT_PROVIDER", "compat")
    monkeypatch.setenv("MEMCHAT_BASE_URL", fake.url)
    return fake


def sessions() -> list[dict[str, Any]]:
    proc = run("sessions", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    data: list[dict[str, Any]] = json.loads(proc.stdout)
    return data


# -- llm's habits --------------------------------------------------------------------------------


def test_piped_text_is_the_context_and_the_words_the_question(model: FakeServer) -> None:
    proc = run("ask", "When is the meeting?", input="Notes: the meeting moved to Tuesday, 3 pm.\n")
    assert proc.returncode == 0, proc.stderr
    sent = model.chat_requests[-1].messages[-1]["content"]
    assert sent == "Notes: the meeting moved to Tuesday, 3 pm.\n\nWhen is the meeting?"
    [session] = sessions()
    assert session["messages"] == 2 and session["title"] == "Notes: the meeting moved to Tuesday…"


def test_stdin_alone_and_words_alone_are_unchanged(model: FakeServer) -> None:
    assert run("ask", input="just stdin\n").stdout == "echo: just stdin\n"
    assert run("ask", "just", "words").stdout == "echo: just words\n"
    assert run("ask", "words", input="").stdout == "echo: words\n"  # an empty pipe adds nothing


def test_ask_c_continues_the_most_recent_session(model: FakeServer) -> None:
    assert run("ask", "-c", "first question").returncode == 0  # nothing to continue: a new one
    assert run("ask", "-s", "other", "elsewhere").returncode == 0
    proc = run("ask", "--continue", "and then?")
    assert proc.returncode == 0, proc.stderr
    assert [m["content"] for m in model.chat_requests[-1].messages] == ["elsewhere", "echo: elsewhere", "and then?"]
    proc = run("ask", "-c", "again?")
    assert [s["messages"] for s in sessions()] == [6, 2]
    one_error_line(run("ask", "-c", "-s", "other", "x"), "-c", "-s")


def test_a_failed_ask_leaves_no_session(model: FakeServer) -> None:
    model.script(FakeReply.auth_openai(), FakeReply.auth_openai())
    one_error_line(run("ask", "hello"), "API key")
    one_error_line(run("ask", "-s", "fresh", "hello"), "API key")
    assert sessions() == []


# -- search and titles ---------------------------------------------------------------------------


def seed() -> None:
    store = open_store(default_db_path())
    for name, question, answer in [
        ("chat-20250101-090000", "Write me a haiku about the sea", "Waves fold into foam."),
        ("trip", "长城有多长？", "长城全长两万多公里。"),
    ]:
        store.create_session(name, settings={"title": question} if name.startswith("chat-") else None)
        store.append_messages(name, [Message(Role.USER, question), Message(Role.ASSISTANT, answer)])
    store.close()


def test_sessions_search_finds_the_words_of_messages() -> None:
    seed()
    proc = run("sessions", "search", "haiku")
    assert proc.returncode == 0, proc.stderr
    head, first = proc.stdout.splitlines()[:2]
    assert head.startswith("chat-20250101-090000  · Write me a haiku about the sea  (")  # name, then title
    assert first == "    user: Write me a haiku about the sea"
    proc = run("sessions", "search", "长城")
    assert proc.stdout.startswith("trip  (") and "assistant: 长城全长两万多公里。" in proc.stdout
    [found] = json.loads(run("sessions", "search", "长城", "--json").stdout)
    assert found["name"] == "trip" and {m["role"] for m in found["matches"]} == {"user", "assistant"}
    match = found["matches"][0]
    assert [match["snippet"][a:b] for a, b in match["marks"]] == ["长城"]
    one_error_line(run("sessions", "search", "nowhere"), "no session holds 'nowhere'")


def test_sessions_list_shows_titles_beside_names() -> None:
    seed()
    lines = run("sessions", "list").stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "TITLE", "MESSAGES"]
    assert any(line.startswith("chat-20250101-090000") and "Write me a haiku about the sea" in line for line in lines)
    assert any(line.split()[:2] == ["trip", "-"] for line in lines)


# -- errors: one line with the fix ---------------------------------------------------------------


def test_a_database_under_a_file_is_one_line() -> None:
    """``MEMCHAT_DB=/dev/null/x.db memchat ask hi`` printed a 20-line traceback."""
    one_error_line(run("ask", "hi", env={"MEMCHAT_DB": "/dev/null/x.db"}), "/dev/null is not a folder", "--db")


def test_a_database_in_a_missing_folder_is_refused_not_made(tmp_path: Path) -> None:
    typo = tmp_path / "typo" / "dir" / "x.db"
    line = one_error_line(run("--db", str(typo), "sessions", "list"), "does not exist", "mkdir -p")
    assert str(typo.parent) in line
    assert not (tmp_path / "typo").exists()
    one_error_line(run("ask", "hi", env={"MEMCHAT_DB": str(typo)}), "does not exist")
    assert not (tmp_path / "typo").exists()
    # the default location is made when missing
    assert not data_dir().exists()
    assert run("sessions", "list").returncode == 0
    assert (data_dir() / "memchat.db").exists()


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--bogus"], ["unknown flag --bogus", "usage: memchat", "commands: chat, ask"]),
        (["--sesion", "x"], ["unknown flag --sesion", "did you mean --session?"]),
        (["ask", "--sesion", "x", "hi"], ["unknown flag --sesion", "did you mean --session?", "memchat ask --help"]),
        (["sessions", "list", "--jsn"], ["unknown flag --jsn", "did you mean --json?"]),
        ([], ["a command is required", "commands: chat, ask"]),
    ],
)
def test_an_unknown_flag_is_named_with_the_usage(argv: list[str], needles: list[str]) -> None:
    """``memchat --bogus`` said "the following arguments are required: COMMAND"."""
    proc = run(*argv)
    assert proc.returncode == 2
    one_error_line(proc, *needles)


def test_a_model_the_embedded_provider_does_not_have_is_refused() -> None:
    line = one_error_line(run("--provider", "local", "--model", "gpt-4o", "ask", "hi"), "gpt-4o")
    assert "has only SmolLM2" in line and "--provider" in line
    assert not default_db_path().exists()  # refused before anything was made
    zh = one_error_line(run("--lang", "zh", "--provider", "local", "--model", "gpt-4o", "ask", "hi"))
    assert "服务商只有" in zh
