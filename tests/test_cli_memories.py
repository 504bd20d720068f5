"""Long-term memory from the command line and the REPL (issue 13): ``memchat memory …`` run as
users run it (subprocesses, a database under the test's MEMCHAT_HOME), ``ask``/``chat`` with
``--no-memories``, ``--learn`` and ``--incognito`` against the loopback fake server, and the
REPL's ``/remember``, ``/memories``, ``/forget`` and ``/incognito``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fakeserver import FakeServer, Recorded
from memchat.agent import Agent
from memchat.config import Settings, default_db_path
from memchat.factory import open_store
from memchat.testing import ScriptedProvider
from test_cli import one_error_line, run
from test_repl import chat


@pytest.fixture
def model(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """Point the CLI (via the environment the subprocesses inherit) at the fake server."""
    monkeypatch.setenv("MEMCHAT_PROVIDER", "compat")
    monkeypatch.setenv("MEMCHAT_BASE_URL", fake.url)
    return fake


def ok(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
    proc = run(*args, input=input, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def records(*args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(ok("memory", *args, "--json", env=env))
    return data


def exported(env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok("memory", "export", env=env).splitlines()]


def sent(request: Recorded) -> str:
    """Everything a chat request told the model, as one text."""
    return "\n".join(str(m.get("content") or "") for m in request.messages)


def request_for(server: FakeServer, question: str) -> Recorded:
    """The (last) chat request that asked ``question`` (a background learning call may follow it)."""
    found = [r for r in server.chat_requests if r.messages and r.messages[-1].get("content") == question]
    assert found, [r.messages[-1:] for r in server.chat_requests]
    return found[-1]


# -- memchat memory ---------------------------------------------------------------------------


def test_add_list_search_edit_forget_restore() -> None:
    assert "remembered #1 (fact): my name is Ada" in ok("memory", "add", "my", "name", "is", "Ada")
    assert "remembered #2" in ok("memory", "add", "I live in Berlin")
    out = ok("memory", "add", "always answer in metric units")
    assert "(instruction)" in out

    out = ok("memory", "list")
    header, *lines = out.splitlines()
    assert header.split() == ["ID", "KIND", "DATE", "TEXT", "LEARNED"]
    assert [line.split()[0] for line in lines] == ["3", "2", "1"]  # newest first
    assert [r["content"] for r in records("list", "--kind", "fact")] == ["I live in Berlin", "my name is Ada"]

    out = ok("memory", "search", "Berlin")
    assert "I live in Berlin" in out and "Ada" not in out
    assert "no memory matches 'Lisbon'" in ok("memory", "search", "Lisbon")

    assert "updated #2 → #4: I live in Munich" in ok("memory", "edit", "2", "I live in Munich")
    history = records("history", "2")
    assert [(h["id"], h["content"], h["end_reason"]) for h in history] == [
        (2, "I live in Berlin", "superseded"),
        (4, "I live in Munich", None),
    ]
    out = ok("memory", "history", "4")
    assert "I live in Berlin" in out and "replaced by #4" in out and "active" in out

    assert "forgot #1: my name is Ada" in ok("memory", "forget", "1")
    assert "my name is Ada" not in ok("memory", "list")
    out = ok("memory", "list", "--all")
    assert out.splitlines()[0].split()[-1] == "STATE"
    assert any("my name is Ada" in line and "forgotten on" in line for line in out.splitlines())
    assert any("I live in Berlin" in line and "replaced by #4" in line for line in out.splitlines())

    assert "restored #1: my name is Ada" in ok("memory", "restore", "1")
    assert {r["id"] for r in records("list")} == {1, 3, 4}

    assert "forgot #3" in ok("memory", "forget", "--match", "metric", "units")
    assert {r["id"] for r in records("list")} == {1, 4}


def test_show_names_the_source_session_and_dates(model: FakeServer) -> None:
    ok("ask", "-s", "intro", "--learn", "explicit", "remember that my favourite colour is green")
    [m] = records("list")
    out = ok("memory", "show", str(m["id"]))
    assert f"#{m['id']}  my favourite colour is green" in out
    assert "intro" in out  # the session it was learned in
    assert "learned" in out and m["created"][:4] in out
    assert "remember that my favourite colour is green" in out  # the source message
    shown = json.loads(ok("memory", "show", str(m["id"]), "--json"))
    assert shown["session"] == "intro" and shown["sources"][0]["message"] == 1


def test_add_with_a_kind_and_a_date() -> None:
    out = ok("memory", "add", "dentist appointment", "--date", "2026-03-04", "--kind", "event")
    assert "[2026-03-04]" in out
    [m] = records("list")
    assert (m["kind"], m["event_date"]) == ("event", "2026-03-04")
    assert "2026-03-04" in ok("memory", "list").splitlines()[1]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["show", "99"], "99"),
        (["forget", "99"], "99"),
        (["edit", "99", "text"], "99"),
        (["restore", "99"], "99"),
        (["history", "99"], "99"),
        (["add", "   "], "text"),
        (["add", "x", "--date", "2026-13-01"], "2026-13-01"),
        (["forget", "--match", "nothing like it"], "no memory matches"),
        (["import", "/nonexistent/file.jsonl"], "cannot read"),
    ],
)
def test_errors_are_one_line(args: list[str], needle: str) -> None:
    proc = run("memory", *args)
    assert proc.returncode == 1
    one_error_line(proc, needle)


def test_usage_errors() -> None:
    for args in (["forget"], ["forget", "1", "--match", "x"], ["show", "one"], ["list", "--kind", "x"]):
        proc = run("memory", *args)
        assert proc.returncode == 2, args
        one_error_line(proc)


def test_export_import_round_trip(tmp_path: Path) -> None:
    ok("memory", "add", "my name is Ada")
    ok("memory", "add", "I live in Berlin")
    ok("memory", "add", "I moved to Munich")  # supersedes "I live in Berlin"
    ok("memory", "forget", "1")
    before = exported()
    assert len(before) == 3  # ended versions travel too
    path = tmp_path / "memories.jsonl"
    ok("memory", "export", "-o", str(path))
    assert [json.loads(line) for line in path.read_text("utf-8").splitlines()] == before

    fresh = {"MEMCHAT_HOME": str(tmp_path / "fresh")}
    assert "imported 3 memories" in ok("memory", "import", str(path), env=fresh)
    after = exported(env=fresh)

    def shape(rs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        ids = {r["id"]: i for i, r in enumerate(rs)}
        return [
            (
                r["content"],
                r["kind"],
                r["end_reason"],
                r["created"],
                r["ended"],
                ids.get(r["supersedes"]),
                ids.get(r["superseded_by"]),
            )
            for r in rs
        ]

    assert shape(after) == shape(before)
    assert [r["content"] for r in records("list", env=fresh)] == ["I moved to Munich"]
    # and from stdin
    other = {"MEMCHAT_HOME": str(tmp_path / "other")}
    assert "imported 3 memories from stdin" in ok("memory", "import", "-", input=path.read_text("utf-8"), env=other)


@pytest.mark.parametrize(
    ("bad", "line", "needle"),
    [
        ("not json", 2, "not JSON"),
        ("[1, 2]", 2, "not a JSON object"),
        ('{"content": ""}', 2, "text"),
        ('{"content": "x", "kind": "rumour"}', 2, "rumour"),
        ('{"content": "x", "event_date": "someday"}', 2, "someday"),
        ('{"content": "x", "id": "seven"}', 2, "seven"),
    ],
)
def test_a_bad_import_line_is_refused_and_nothing_changes(tmp_path: Path, bad: str, line: int, needle: str) -> None:
    ok("memory", "add", "my name is Ada")
    before = exported()
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"content": "I like tea"})
    path.write_text(f"{good}\n{bad}\n{good}\n", "utf-8")
    proc = run("memory", "import", str(path))
    assert proc.returncode == 1
    one_error_line(proc, f"{path} line {line}", needle, "nothing was imported")
    assert exported() == before


def test_import_into_a_fresh_home_creates_no_database_on_a_bad_file(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    path = tmp_path / "bad.jsonl"
    path.write_text("{oops\n", "utf-8")
    proc = run("memory", "import", str(path), env={"MEMCHAT_HOME": str(home)})
    one_error_line(proc, "line 1")
    assert not any(home.rglob("*.db")) if home.exists() else True


def test_chinese_interface() -> None:
    ok("memory", "add", "我住在上海")
    out = ok("--lang", "zh", "memory", "list")
    assert out.splitlines()[0].split() == ["编号", "类型", "日期", "内容", "记住于"]
    assert "我住在上海" in out
    assert "已忘记 #1" in ok("memory", "forget", "1", "--lang", "zh")
    assert "没有与" in ok("--lang", "zh", "memory", "search", "北京")


def test_empty_list() -> None:
    assert "no memories yet" in ok("memory", "list")
    assert records("list") == []
    assert ok("memory", "export") == ""


# -- ask and chat -------------------------------------------------------------------------------


def test_a_name_told_in_one_session_is_known_in_another(model: FakeServer) -> None:
    proc = run("ask", "-s", "intro", "remember that my name is Ada")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "echo: remember that my name is Ada\n"
    assert "✓ remembered: my name is Ada" in proc.stderr
    [m] = records("list")
    assert m["content"] == "my name is Ada" and m["session"] == "intro"

    proc = run("ask", "-s", "other", "what is my name?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "echo: what is my name?\n"  # stdout is the reply only
    assert "Ada" in sent(request_for(model, "what is my name?"))
    marks = [line for line in proc.stderr.splitlines() if "used" in line]
    assert len(marks) == 1, proc.stderr
    assert f"1 memory (#{m['id']})" in marks[0] and "memchat sessions context other" in marks[0]


def test_no_memories_and_learn_off(model: FakeServer) -> None:
    ok("memory", "add", "my name is Ada")
    proc = run("ask", "--no-memories", "-s", "plain", "what is my name?")
    assert proc.returncode == 0, proc.stderr
    assert "Ada" not in sent(request_for(model, "what is my name?"))
    assert "used" not in proc.stderr

    proc = run("ask", "--learn", "off", "-s", "plain", "remember that my cat is called Tom")
    assert proc.returncode == 0, proc.stderr
    assert "remembered" not in proc.stderr
    assert [r["content"] for r in records("list")] == ["my name is Ada"]

    assert run("ask", "--learn", "sometimes", "hi").returncode == 2


def test_an_incognito_session_recalls_nothing_and_learns_nothing(model: FakeServer) -> None:
    ok("memory", "add", "my name is Ada")
    ok("ask", "-s", "trip", "--learn", "explicit", "we are planning a trip to Lyon in May")
    proc = run("ask", "-s", "secret", "--incognito", "what is my name? where is the trip to?")
    assert proc.returncode == 0, proc.stderr
    text = sent(request_for(model, "what is my name? where is the trip to?"))
    assert "Ada" not in text and "Lyon" not in text
    assert "used" not in proc.stderr

    # it stays incognito: a later ask learns nothing from it, even when asked
    proc = run("ask", "-s", "secret", "remember that I like tea")
    assert proc.returncode == 0, proc.stderr
    assert "remembered" not in proc.stderr
    assert [r["content"] for r in records("list")] == ["my name is Ada"]
    store = open_store(default_db_path())
    try:
        assert (store.get_session("secret").settings or {}).get("incognito") is True
        assert not (store.get_session("trip").settings or {}).get("incognito")
    finally:
        store.close()

    # and a normal session does recall the trip
    proc = run("ask", "-s", "planning", "where is the trip to?")
    assert "Lyon" in sent(request_for(model, "where is the trip to?"))
    assert "turn" in proc.stderr  # the mark counts the turns from other chats


def test_sessions_context_says_which_memories_and_why(model: FakeServer) -> None:
    ok("memory", "add", "my name is Ada")
    ok("ask", "-s", "other", "--learn", "off", "hello")
    out = ok("sessions", "context", "other", "--text", "what is my name?")
    assert "memory #1" in out and "my name is Ada" in out
    view = json.loads(ok("sessions", "context", "other", "--text", "what is my name?", "--json"))
    items = [i for s in view["sections"] for i in s["items"]]
    assert any(i["kind"] == "memory" and i["memory_id"] == 1 and i["why"] for i in items)


def test_chat_takes_the_long_term_flags(model: FakeServer) -> None:
    proc = run("chat", "-s", "quiet", "--incognito", "--no-memories", "--learn", "explicit", input="hi\nq\n")
    assert proc.returncode == 0, proc.stderr
    assert "incognito: on" in proc.stdout
    store = open_store(default_db_path())
    try:
        assert (store.get_session("quiet").settings or {}).get("incognito") is True
    finally:
        store.close()


# -- the REPL ---------------------------------------------------------------------------------


def repl_agent(*replies: Any) -> Agent:
    return Agent(open_store(":memory:"), ScriptedProvider(replies, default="ok"), date_line=False, learning="explicit")


def test_repl_remember_memories_forget() -> None:
    agent = repl_agent()
    keys = (
        "/remember my name is Ada\n/remember I live in Berlin\n/memories\n/memories Berlin\n/forget 1\n/memories\nq\n"
    )
    _, out = chat(agent, keys, session="s", system="")
    assert "✓ remembered #1 (fact): my name is Ada" in out
    assert "✓ remembered #2 (fact): I live in Berlin" in out
    first, _, rest = out.partition("/forget N")
    assert "my name is Ada" in first and "I live in Berlin" in first
    assert "✓ forgot #1: my name is Ada" in out
    assert [m.content for m in agent.memories.list()] == ["I live in Berlin"]
    last_list = out.rsplit("brings it back)", 1)[1]
    assert "I live in Berlin" in last_list and "my name is Ada" not in last_list


def test_repl_forget_by_words_and_the_errors() -> None:
    agent = repl_agent()
    keys = "/remember I moved to Munich\n/forget Munich\n/forget Lisbon\n/forget 42\n/remember\n/memories\nq\n"
    _, out = chat(agent, keys, session="s", system="")
    assert "✓ forgot #1: I moved to Munich" in out
    assert "no memory matches 'Lisbon'" in out
    assert "error:" in out and "42" in out
    assert "usage: /remember TEXT" in out
    assert "no memories yet; /remember TEXT adds one" in out
    assert agent.memories.list() == []


def test_repl_marks_a_reply_that_used_memories_and_what_it_remembered() -> None:
    agent = repl_agent("Nice to meet you, Ada.", "You are Ada.")
    _, out = chat(agent, "remember that my name is Ada\n/new other\nwhat is my name?\nq\n", session="s", system="")
    assert "✓ remembered: my name is Ada" in out
    provider = agent.provider
    assert isinstance(provider, ScriptedProvider)
    assert "Ada" in json.dumps(provider.calls[-1], ensure_ascii=False)
    [m] = agent.memories.list()
    assert f"used 1 memory (#{m.id})" in out


def test_repl_incognito() -> None:
    agent = repl_agent("ok", "ok")
    agent.memories.add("my name is Ada")
    _, out = chat(agent, "/incognito\n/incognito on\nwhat is my name?\n/incognito maybe\nq\n", session="s", system="")
    assert "incognito: off" in out and "incognito: on" in out
    assert "usage: /incognito [on|off]" in out
    provider = agent.provider
    assert isinstance(provider, ScriptedProvider)
    assert "Ada" not in json.dumps(provider.calls[-1], ensure_ascii=False)
    assert "used" not in out
    assert agent.is_incognito(agent.store.get_session("s"))
    _, out = chat(agent, "/incognito off\nq\n", session="s", system="")
    assert "incognito: on" in out  # said when the session opens
    assert not agent.is_incognito(agent.store.get_session("s"))


def test_repl_help_and_context_show_memories() -> None:
    agent = repl_agent()
    agent.memories.add("my name is Ada")
    _, out = chat(agent, "/help\n/context what is my name?\nq\n", session="s", system="")
    for usage in ("/remember TEXT", "/forget ID|TEXT", "/memories [QUERY]", "/incognito [on|off]", "/forget-summary"):
        assert usage in out
    assert "memory #1" in out and "my name is Ada" in out


def test_repl_chinese() -> None:
    agent = repl_agent()
    _, out = chat(
        agent, "/remember 我住在上海\n/forget 1\n/help\nq\n", session="s", system="", settings=Settings(lang="zh")
    )
    assert "✓ 已记住 #1" in out and "✓ 已忘记 #1" in out
    assert "记住关于你的一件事" in out
