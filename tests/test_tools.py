"""Tools the model calls: schemas from typed functions, the call loop against the real loopback
OpenAI-compatible server (streamed tool_calls split across chunks, parallel calls, bad input),
what is stored, the date line, approvals, and the command line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest

from fakeserver import FakeReply, FakeServer
from memchat.agent import Agent
from memchat.clock import WEEKDAYS
from memchat.domain import Role, ToolCall, ToolCallDelta
from memchat.errors import ConfigError, MemchatError, ServerError
from memchat.factory import open_store
from memchat.providers.openai_compat import OpenAICompatible
from memchat.stores.sqlite import SQLiteStore
from memchat.tools import Tool, ToolContext, ToolRegistry, load_tool, tool
from memchat.tools.builtin import builtin_tools
from memchat.tools.calls import CallAccumulator
from memchat.tools.runner import run_call

CLI = [sys.executable, "-m", "memchat.cli.main"]
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def fake(fake_server: FakeServer) -> Iterator[FakeServer]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    s = open_store(":memory:")
    yield s
    s.close()


@pytest.fixture
def make_agent(fake: FakeServer, store: SQLiteStore) -> Iterator[Callable[..., Agent]]:
    """Agents on the loopback server with the built-in tools (plus ``extra``), in Shanghai time."""
    made: list[Agent] = []

    def make(*extra: Tool, **kw: Any) -> Agent:
        provider = OpenAICompatible(fake.url, api_key="k", model="fake/tools", max_retries=0)
        tools = ToolRegistry([*builtin_tools(), *extra])
        kw.setdefault("date_line", False)
        made.append(Agent(store, provider, persona="Be brief.", tools=tools, timezone=SHANGHAI, **kw))
        return made[-1]

    yield make
    for agent in made:
        agent.provider.close()


def tool_names(request: Any) -> list[str]:
    return [t["function"]["name"] for t in (request.body or {}).get("tools") or []]


# -- schemas -------------------------------------------------------------------------------------


def test_a_typed_function_becomes_a_tool_with_its_schema() -> None:
    @tool(side_effects=True, timeout=5)
    def book_table(
        restaurant: str,
        people: int,
        time: str | None = None,
        tags: list[str] | None = None,
        *,
        mood: Literal["quiet", "lively"] = "quiet",
        context: ToolContext,
    ) -> str:
        """Book a table at a restaurant.

        More text that is not the summary.

        Args:
            restaurant: the restaurant's name
            people: how many guests,
                children included
            time: HH:MM, today
        """
        return "booked"

    assert isinstance(book_table, Tool) and book_table.side_effects and book_table.timeout == 5
    assert book_table.description == "Book a table at a restaurant."
    assert book_table.context_param == "context"
    assert book_table.parameters == {
        "type": "object",
        "properties": {
            "restaurant": {"type": "string", "description": "the restaurant's name"},
            "people": {"type": "integer", "description": "how many guests, children included"},
            "time": {"type": "string", "description": "HH:MM, today"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "mood": {"enum": ["quiet", "lively"], "type": "string"},
        },
        "required": ["restaurant", "people"],
        "additionalProperties": False,
    }
    assert book_table.schema()["type"] == "function" and book_table.schema()["function"]["name"] == "book_table"


def test_unsupported_parameter_types_are_refused_clearly() -> None:
    def bad(when: datetime) -> str:
        return ""

    with pytest.raises(ValueError, match="bad.when: type"):
        tool(bad)


# -- merging streamed fragments ------------------------------------------------------------------


def test_fragments_merge_by_index_and_a_new_id_on_a_used_index_starts_a_call() -> None:
    acc = CallAccumulator()
    acc.feed([ToolCallDelta(0, "a", "now", ""), ToolCallDelta(1, "b", "search_history", '{"qu')])
    acc.feed([ToolCallDelta(0, None, None, "{}"), ToolCallDelta(1, None, None, 'ery": "x"}')])
    acc.feed([ToolCallDelta(0, "c", "now", "{}")])  # Ollama: index 0 again, a new id
    assert acc.calls() == [
        ToolCall("a", "now", "{}"),
        ToolCall("b", "search_history", '{"query": "x"}'),
        ToolCall("c", "now", "{}"),
    ]
    nameless = CallAccumulator()
    nameless.feed([ToolCallDelta(0, None, "now", "")])
    (call,) = nameless.calls()
    assert call.id.startswith("call_") and call.arguments == "{}"  # results need an id


# -- the runner: bad input becomes a result the model sees -----------------------------------------


def test_every_kind_of_bad_call_becomes_an_error_result() -> None:
    @tool(timeout=0.2)
    def slow(seconds: float) -> str:
        """Sleep."""
        time.sleep(seconds)
        return "awake"

    @tool
    def boom(x: int) -> str:
        """Fail."""
        raise RuntimeError(f"broken by {x}")

    tools = {t.name: t for t in (slow, boom, *builtin_tools())}
    ctx = ToolContext(timezone=SHANGHAI)

    def result(name: str, args: str) -> str:
        r = run_call(tools, ToolCall("id1", name, args), ctx)
        assert r.error and r.call.id == "id1"
        return r.content

    assert "no tool named 'nope'" in result("nope", "{}") and "now" in result("nope", "{}")
    assert "not valid JSON" in result("boom", '{"x": ')
    assert "must be a JSON object" in result("boom", "[1]")
    assert "missing required argument(s): x" in result("boom", "{}")
    assert "unknown argument(s): y" in result("boom", '{"x": 1, "y": 2}')
    assert "argument x must be an integer" in result("boom", '{"x": "one"}')
    assert "argument x must be an integer" in result("boom", '{"x": true}')
    assert result("boom", '{"x": 7}') == "error: RuntimeError: broken by 7"
    assert "did not finish within 0.2 s" in result("slow", '{"seconds": 2}')
    ok = run_call(tools, ToolCall("id2", "slow", '{"seconds": 0}'), ctx)
    assert not ok.error and ok.content == "awake"


def test_now_gives_the_users_date_time_and_zone() -> None:
    before = datetime.now(SHANGHAI)
    out = json.loads(
        run_call(
            {t.name: t for t in builtin_tools()}, ToolCall("1", "now", "{}"), ToolContext(timezone=SHANGHAI)
        ).content
    )
    after = datetime.now(SHANGHAI)
    assert out["timezone"] == "Asia/Shanghai" and out["utc_offset"] == "UTC+08:00"
    assert out["date"] in {before.strftime("%Y-%m-%d"), after.strftime("%Y-%m-%d")}
    assert out["weekday"] in {WEEKDAYS["en"][before.weekday()], WEEKDAYS["en"][after.weekday()]}
    assert before.replace(microsecond=0) <= datetime.fromisoformat(out["iso"]) <= after


# -- the loop, against the loopback server ---------------------------------------------------------


def test_what_day_is_it_is_answered_through_the_now_tool(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent()
    fake.script(FakeReply.calls(("now", "{}")), FakeReply.text("It is ", "Tuesday."))
    turn = agent.stream("s", "what day is it today?")
    chunks = list(turn)
    assert turn.reply is not None and turn.reply.text == "It is Tuesday."
    # the interface saw the call before it ran, then its result
    events = [c.tool_call or c.tool_result for c in chunks if c.tool_call or c.tool_result]
    assert [type(e).__name__ for e in events] == ["ToolCall", "ToolResult"]
    first, second = fake.chat_requests
    assert tool_names(first) == ["now", "search_history", "remember", "forget"]  # generate_image: no generator here
    sent = second.messages
    assert sent[-2]["role"] == "assistant" and sent[-2]["tool_calls"] == [
        {"id": "call_0_now", "type": "function", "function": {"name": "now", "arguments": "{}"}}
    ]
    assert sent[-1]["role"] == "tool" and sent[-1]["tool_call_id"] == "call_0_now"
    assert json.loads(sent[-1]["content"])["date"] == datetime.now(SHANGHAI).strftime("%Y-%m-%d")
    # stored in order in the same turn: question, call, result, answer
    stored = store.messages("s")
    assert [(m.role, m.tool_call_id) for m in stored] == [
        (Role.USER, None),
        (Role.ASSISTANT, None),
        (Role.TOOL, "call_0_now"),
        (Role.ASSISTANT, None),
    ]
    assert stored[1].tool_calls and stored[1].tool_calls[0]["function"]["name"] == "now"
    assert [m.seq for m in stored] == sorted(m.seq or 0 for m in stored) and stored[-1].content == "It is Tuesday."
    # /context names the call the stored assistant message made
    view = agent.context("s")
    from memchat.serialization import context_view

    shown = context_view(store, agent.session("s"), view, model="fake/tools")["entries"]
    assert [e["content"] for e in shown if e["role"] == "assistant"][0] == "→ now({})"
    # the next turn sends the whole exchange back, tool messages included
    fake.script(FakeReply.text("ok"))
    agent.ask("s", "thanks")
    roles = [m["role"] for m in fake.chat_requests[-1].messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]


@pytest.mark.parametrize("same_index", [False, True], ids=["openai", "ollama"])
def test_parallel_calls_in_one_message(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent], same_index: bool
) -> None:
    agent = make_agent()
    fake.script(FakeReply.text("好的"))
    agent.ask("s", "我的猫叫小花")
    calls = FakeReply.calls(
        {"id": "c1", "name": "now", "arguments": "{}"},
        {"id": "c2", "name": "search_history", "arguments": json.dumps({"query": "猫叫什么"}, ensure_ascii=False)},
        tool_split=4,
        tool_same_index=same_index,
    )
    fake.script(calls, FakeReply.text("小花。"))
    reply = agent.ask("s", "现在几点？我的猫叫什么？")
    assert reply.text == "小花。"
    tool_msgs = [m for m in fake.chat_requests[-1].messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["c1", "c2"]
    assert "我的猫叫小花" in tool_msgs[1]["content"]  # search_history found the earlier message
    stored = store.messages("s")
    assert [m.role for m in stored[2:]] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.TOOL, Role.ASSISTANT]


def test_bad_arguments_reach_the_model_as_an_error_and_the_turn_goes_on(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent()
    fake.script(
        FakeReply.calls(("search_history", '{"query": 42}'), ("nope", "{}"), ("now", '{"oops"')),
        FakeReply.text("Sorry, let me answer directly."),
    )
    turn = agent.stream("s", "find it")
    results = [c.tool_result for c in turn if c.tool_result is not None]
    assert [r.error for r in results] == [True, True, True]
    sent = [m["content"] for m in fake.chat_requests[-1].messages if m["role"] == "tool"]
    assert "argument query must be a string" in sent[0]
    assert "no tool named 'nope'" in sent[1] and "not valid JSON" in sent[2]
    assert turn.reply is not None and store.messages("s")[-1].content == "Sorry, let me answer directly."


def test_the_step_limit_forces_an_answer_without_tools(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(max_steps=2)
    fake.script(FakeReply.calls(("now", "{}")), FakeReply.calls(("now", "{}")), FakeReply.text("Enough."))
    assert agent.ask("s", "loop").text == "Enough."
    assert [bool(tool_names(r)) for r in fake.chat_requests] == [True, True, False]


def test_a_provider_that_refuses_tools_gets_the_call_again_without_them(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent()
    refusal = {"error": {"message": '"auto" tool choice requires --enable-auto-tool-choice', "type": "BadRequestError"}}
    fake.script(FakeReply.error_response(400, refusal), FakeReply.text("fine"))
    turn = agent.stream("s", "hello")
    list(turn)
    assert turn.reply is not None and turn.reply.text == "fine"
    assert [bool(tool_names(r)) for r in fake.chat_requests] == [True, False]
    assert any("tools were switched off for this turn" in n for n in turn.plan.notes)


def test_a_failure_after_a_tool_step_stores_nothing(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent()
    fake.script(FakeReply.text("earlier"))
    agent.ask("s", "first")
    before = store.messages("s")
    fake.script(FakeReply.calls(("now", "{}")), FakeReply.server_error(500))
    with pytest.raises(ServerError):
        agent.ask("s", "what time is it?")
    assert store.messages("s") == before  # no question, no orphan call or result


def test_an_interrupted_second_call_keeps_whole_steps_only(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent()
    fake.script(FakeReply.calls(("now", "{}")), FakeReply.text("It is", " late", delay=0.05))
    turn = agent.stream("s", "time?")
    for chunk in turn:
        if chunk.text:
            turn.close()  # Ctrl-C after the first words of the answer
            break
    stored = store.messages("s")
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    assert stored[-1].status.value == "interrupted" and stored[-1].content == "It is"
    ids = {c["id"] for m in stored if m.tool_calls for c in m.tool_calls}
    assert ids == {m.tool_call_id for m in stored if m.role is Role.TOOL}  # every call with its result


def test_tools_with_side_effects_need_approval(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    sent: list[str] = []

    @tool(side_effects=True)
    def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        return "sent"

    agent = make_agent(send_email)
    call = FakeReply.calls(("send_email", '{"to": "a@example.com"}'))
    fake.script(call, FakeReply.text("done"))
    agent.ask("s", "mail a")  # nobody to ask: refused
    assert sent == [] and "pass --yes" in fake.chat_requests[-1].messages[-1]["content"]
    asked: list[str] = []
    agent.approve = lambda c, t: asked.append(c.name) or False
    fake.script(call, FakeReply.text("done"))
    agent.ask("s", "mail a")
    assert (
        asked == ["send_email"] and sent == [] and "the user declined" in fake.chat_requests[-1].messages[-1]["content"]
    )
    agent.approve = lambda c, t: True
    fake.script(call, FakeReply.text("done"))
    agent.ask("s", "mail a")
    assert sent == ["a@example.com"]
    agent.approve, agent.auto_approve = None, True  # --yes
    fake.script(call, FakeReply.text("done"))
    agent.ask("s", "mail a")
    assert sent == ["a@example.com", "a@example.com"]


def test_tools_per_session_and_none(fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    store.create_session("quiet")
    store.update_session("quiet", settings={"tools": []})
    store.create_session("dated")
    store.update_session("dated", settings={"tools": ["now"]})
    for name in ("quiet", "dated"):
        fake.script(FakeReply.text("ok"))
        agent.ask(name, "hi")
    assert [tool_names(r) for r in fake.chat_requests] == [[], ["now"]]
    assert "tools" not in (fake.chat_requests[0].body or {})
    agent.enabled_tools = ["search_history"]  # --tools wins over the session's
    fake.script(FakeReply.text("ok"))
    agent.ask("quiet", "hi")
    assert tool_names(fake.chat_requests[-1]) == ["search_history"]


def test_the_async_path_runs_tools_too(fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    fake.script(FakeReply.calls(("now", "{}")), FakeReply.text("Async answer."))

    async def main() -> Any:
        try:
            return await agent.aask("s", "what day is it?")
        finally:
            await agent.provider.aclose()

    reply = asyncio.run(main())
    assert reply.text == "Async answer."
    assert [m.role for m in store.messages("s")] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]


# -- the date line -------------------------------------------------------------------------------


def test_a_callers_tools_join_memchats_when_asked_and_the_turn_hands_their_calls_back(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    """client_tools = "add": the model gets memchat's tools and the caller's; memchat runs its own
    calls and ends the turn with the caller's (stored on the reply), whose results continue it."""
    from memchat.providers.base import ChatOptions

    lookup = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    agent = make_agent(client_tools="add")
    options = ChatOptions(tools=(lookup,))
    fake.script(FakeReply.calls(("now", "{}"), {"id": "c9", "name": "lookup", "arguments": "{}"}))
    reply = agent.ask("s", "What is on today?", options=options)
    offered = [t["function"]["name"] for t in fake.chat_requests[-1].body["tools"]]
    assert offered[0] == "lookup" and "now" in offered
    assert reply.finish_reason == "tool_calls" and [c["id"] for c in reply.tool_calls] == ["c9"]
    kinds = [(m.role.value, [c["function"]["name"] for c in m.tool_calls or ()]) for m in store.messages("s")]
    # memchat's own call ran (its step stored); the caller's waits on the reply
    assert kinds == [("user", []), ("assistant", ["now"]), ("tool", []), ("assistant", ["lookup"])]
    fake.script(FakeReply.text("A concert."))
    done = agent.ask_results("s", [("c9", "concert at 8")], options=options)
    assert done.text == "A concert." and done.tool_calls == ()
    assert [m["role"] for m in fake.chat_requests[-1].messages][-4:] == ["assistant", "tool", "assistant", "tool"]
    assert [m.role.value for m in store.messages("s")] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    with pytest.raises(MemchatError, match="no tool call waiting"):
        agent.ask_results("s", [("c9", "again")])
    # the default: the caller's tools replace memchat's
    fake.script(FakeReply.text("Fine."))
    make_agent().ask("t", "hello", options=options)
    assert [t["function"]["name"] for t in fake.chat_requests[-1].body["tools"]] == ["lookup"]


def test_the_date_line_follows_the_persona_in_the_users_zone(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(date_line=True)
    fake.script(FakeReply.text("ok"))
    day = datetime.now(SHANGHAI)
    agent.ask("s", "hello")
    system = fake.chat_requests[-1].messages[0]["content"]
    expected = f"Today is {WEEKDAYS['en'][day.weekday()]}, {day:%Y-%m-%d} (time zone Asia/Shanghai, UTC+08:00)."
    assert system == "Be brief.\n\n" + expected
    plan = agent.context("s")
    assert [s.kind for s in plan.sections] == ["persona", "date"]
    zh = make_agent(date_line=True)
    store.create_session("zh", persona="你是简洁的助手。")
    assert (
        f"今天是 {day:%Y-%m-%d}，{WEEKDAYS['zh'][day.weekday()]}（时区 Asia/Shanghai，UTC+08:00）。"
        in zh.context("zh").entries[0].content
    )


def test_without_the_date_line_the_persona_is_sent_alone(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(date_line=False)
    fake.script(FakeReply.text("ok"))
    agent.ask("s", "hello")
    assert fake.chat_requests[-1].messages[0] == {"role": "system", "content": "Be brief."}


# -- configuration and the command line -----------------------------------------------------------


def test_load_tool_from_module_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mytools.py").write_text(
        "def weather(city: str) -> str:\n    '''The weather in a city.'''\n    return city + ': sunny'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    t = load_tool("mytools:weather")
    assert t.name == "weather" and t.parameters["required"] == ["city"]
    for spec, message in [
        ("mytools", "expected module:function"),
        ("nosuchmodule:f", "cannot import nosuchmodule"),
        ("mytools:nothing", "has no nothing"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_tool(spec)


def cli(*args: str, env: dict[str, str], input: str | None = None) -> subprocess.CompletedProcess[str]:
    full = os.environ.copy()
    full.update(env)
    full["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        [*CLI, *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
    )


def test_ask_what_day_it_is_through_the_now_tool(fake: FakeServer, tmp_path: Path) -> None:
    env = {"MEMCHAT_PROVIDER": "compat", "MEMCHAT_BASE_URL": fake.url, "MEMCHAT_TIMEZONE": "Asia/Shanghai"}
    fake.script(FakeReply.calls(("now", "{}")), FakeReply.text("Today is ", "Tuesday."))
    proc = cli("ask", "what day is it today?", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Today is Tuesday.\n"  # stdout: the reply only
    lines = proc.stderr.splitlines()
    assert lines[0] == "memchat: → now({})" and lines[1].startswith("memchat: ← now: {")
    assert datetime.now(SHANGHAI).strftime("%Y-%m-%d") in lines[1]
    # --tools none: no tools sent; a bad list is one line
    fake.script(FakeReply.text("ok"))
    assert cli("ask", "--tools", "none", "hi", env=env).returncode == 0
    assert "tools" not in (fake.chat_requests[-1].body or {})
    proc = cli("ask", "--tools", "now,weather", "hi", env=env)
    assert proc.returncode != 0 and proc.stderr.strip().splitlines() == [
        "memchat: configuration: unknown tool 'weather' "
        "(available: now, search_history, remember, forget, generate_image)"
    ]


def test_ask_with_your_own_tool_and_yes(fake: FakeServer, tmp_path: Path) -> None:
    (tmp_path / "mytools.py").write_text(
        "from memchat.tools import tool\n"
        "@tool(side_effects=True)\n"
        "def note(text: str) -> str:\n"
        "    '''Write a note to a file.'''\n"
        f"    open({str(tmp_path / 'notes.txt')!r}, 'a').write(text + '\\n')\n"
        "    return 'saved'\n"
    )
    env = {"MEMCHAT_PROVIDER": "compat", "MEMCHAT_BASE_URL": fake.url, "PYTHONPATH": str(tmp_path)}
    call = FakeReply.calls(("note", '{"text": "buy milk"}'))
    fake.script(call, FakeReply.text("noted"))
    proc = cli("ask", "--tool", "mytools:note", "note: buy milk", env=env)
    assert proc.returncode == 0 and not (tmp_path / "notes.txt").exists()  # not approved without --yes
    assert "pass --yes" in proc.stderr
    assert "note" in tool_names(fake.chat_requests[0])
    fake.script(call, FakeReply.text("noted"))
    proc = cli("ask", "--tool", "mytools:note", "--yes", "note: buy milk", env=env)
    assert proc.returncode == 0 and (tmp_path / "notes.txt").read_text() == "buy milk\n"
    proc = cli("ask", "--tool", "mytools:missing", "hi", env=env)
    assert (
        proc.returncode != 0
        and proc.stderr.strip() == "memchat: configuration: --tool 'mytools:missing': mytools has no missing"
    )


def test_the_repl_asks_before_a_side_effect_and_remembers_always(fake: FakeServer, tmp_path: Path) -> None:
    (tmp_path / "mytools.py").write_text(
        "from memchat.tools import tool\n"
        "@tool(side_effects=True)\n"
        "def ping(host: str) -> str:\n"
        "    '''Ping a host.'''\n"
        "    return 'pong from ' + host\n"
    )
    env = {"MEMCHAT_PROVIDER": "compat", "MEMCHAT_BASE_URL": fake.url, "PYTHONPATH": str(tmp_path)}
    call = FakeReply.calls(("ping", '{"host": "h1"}'))
    fake.script(call, FakeReply.text("one"), call, FakeReply.text("two"), call, FakeReply.text("three"))
    proc = cli(
        "chat", "-s", "p", "--system", "x", "--tool", "mytools:ping", env=env, input="go\nn\ngo\na\ngo\n/tools\nq\n"
    )
    assert proc.returncode == 0, proc.stderr
    tool_results = [
        [m["content"] for m in r.messages if m["role"] == "tool"][-1]
        for r in fake.chat_requests
        if r.messages[-1]["role"] == "tool"
    ]
    assert tool_results == ["error: the call was not run: the user declined", "pong from h1", "pong from h1"]
    assert proc.stdout.count("Run ping(") == 2  # "always": not asked the third time
    assert "→ ping(" in proc.stdout and "← ping: pong from h1" in proc.stdout
    assert "tools on: now, search_history, remember, forget, ping" in proc.stdout


def test_history_and_markdown_show_tool_calls_and_images(fake: FakeServer) -> None:
    from memchat.config import default_db_path
    from memchat.domain import ImageRecord, Message
    from memchat.serialization import export_markdown

    with open_store(default_db_path()) as db:
        db.create_session("h")
        call = {"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
        db.append_messages(
            "h",
            [
                Message(Role.USER, "what day is it?"),
                Message(Role.ASSISTANT, "", tool_calls=(call,)),
                Message(Role.TOOL, '{"weekday": "Tuesday"}', tool_call_id="c1"),
                Message(Role.ASSISTANT, "Tuesday."),
            ],
        )
        db.add_images("h", [ImageRecord("a cat in ink", "/data/images/abc.png", "modelscope", "Qwen/Qwen-Image")])
        db.append_messages("h", [Message(Role.USER, "lovely")])
        markdown = export_markdown(db, "h")
    env = {"MEMCHAT_PROVIDER": "compat", "MEMCHAT_BASE_URL": fake.url}
    proc = cli("chat", "-s", "h", env=env, input="/history\nq\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "2 assistant:  → now({})" in out
    assert (
        out.index("4 assistant: Tuesday.")
        < out.index("🖼 image: a cat in ink → /data/images/abc.png")
        < out.index("5 user: lovely")
    )
    assert "## 2. Assistant" in markdown and "→ `now({})`" in markdown
    assert (
        markdown.index("Tuesday.") < markdown.index("![a cat in ink](/data/images/abc.png)") < markdown.index("lovely")
    )


def test_the_model_generates_an_image_through_the_tool(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent], tmp_path: Path
) -> None:
    from imageserver import ImageServer, Task
    from memchat.images.modelscope_async import ModelScopeImages

    images = ImageServer().start()
    try:
        images.script(Task(polls=1))
        agent = make_agent()
        agent.images = ModelScopeImages(images.url, api_key="ms-k", poll_initial=0.01, poll_max=0.02)
        agent.images_dir = tmp_path / "images"
        call = FakeReply.calls(("generate_image", json.dumps({"prompt": "a cat in ink wash style", "size": "512x512"})))
        fake.script(call, FakeReply.text("Here it is."))
        assert agent.ask("s", "draw me a cat").text == "Here it is."
        assert "generate_image" in tool_names(fake.chat_requests[0])
        result = json.loads(fake.chat_requests[-1].messages[-1]["content"])
        (saved,) = result["saved"]
        sid = store.get_session("s").id  # one layout everywhere: a folder per session id
        assert Path(saved).parent == tmp_path / "images" / str(sid) and Path(saved).read_bytes().startswith(b"\x89PNG")
        (record,) = store.images("s")
        assert (record.prompt, record.path, record.params) == ("a cat in ink wash style", saved, {"size": "512x512"})
        agent.images.close()
    finally:
        images.close()


def test_the_repl_image_command(fake: FakeServer, tmp_path: Path) -> None:
    from imageserver import ImageServer, Task

    images = ImageServer().start()
    try:
        images.script(Task(polls=0))
        env = {
            "MEMCHAT_PROVIDER": "compat",
            "MEMCHAT_BASE_URL": fake.url,
            "MEMCHAT_IMAGE_PROVIDER": "modelscope",
            "MEMCHAT_IMAGE_BASE_URL": images.url,
        }
        proc = cli("chat", "-s", "pics", "--system", "x", env=env, input="/image a red fox\n/history\nq\n")
        assert proc.returncode == 0, proc.stderr
        saved = next(line for line in proc.stdout.splitlines() if line.startswith("saved "))
        path = Path(saved.removeprefix("saved ").strip())
        # one layout everywhere: a folder per session id (a rename does not move the files)
        assert path.read_bytes().startswith(b"\x89PNG") and path.parent.name.isdigit()
        assert path.parent.parent.name == "images"
        assert f"🖼 image: a red fox → {path}" in proc.stdout
        proc = cli(
            "chat",
            "-s",
            "pics",
            env={"MEMCHAT_PROVIDER": "compat", "MEMCHAT_BASE_URL": fake.url},
            input="/image x\nq\n",
        )
        assert "no image provider is configured" in proc.stdout + proc.stderr
    finally:
        images.close()
