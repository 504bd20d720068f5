"""The terminal REPL, driven through prompt_toolkit's pipe input and a rich Console on a
StringIO: what the user sees and what the store keeps."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.output.vt100 import Vt100_Output
from rich.console import Console

from memchat import i18n
from memchat.agent import Agent
from memchat.cli.repl import PromptReader, run_repl
from memchat.config import Settings
from memchat.domain import Chunk, Role, Status, Summary
from memchat.errors import AuthenticationError, ProviderError, StreamError
from memchat.factory import open_store
from memchat.memory import context_tokens
from memchat.memory.upkeep import Upkeep
from memchat.testing import ScriptedProvider


def make_agent(*replies: Any, default: str | None = None) -> Agent:
    return Agent(open_store(":memory:"), ScriptedProvider(replies, default=default), date_line=False)


class InlineUpkeep(Upkeep):
    """Memory upkeep run at once, after the reply, on the turn's thread: for a test whose typed
    lines must see what upkeep wrote (the REPL reads the next line without waiting for it)."""

    def submit(self, key: Any, job: Any) -> None:
        job()


def calls(agent: Agent) -> list[list[dict[str, Any]]]:
    provider = agent.provider
    assert isinstance(provider, ScriptedProvider)
    return provider.calls


def turn_calls(agent: Agent) -> list[list[dict[str, Any]]]:
    """The calls of turns (memory upkeep's summaries, written after a reply, left out)."""
    return [c for c in calls(agent) if not str(c[0]["content"]).startswith("You keep the memory")]


def stored(agent: Agent, session: str) -> list[tuple[str, str, Status]]:
    return [(m.role.value, m.content, m.status) for m in agent.store.messages(session)]


def chat(
    agent: Agent,
    keys: str,
    *,
    terminal: bool = False,
    settings: Settings | None = None,
    history_path: Path | None = None,
    **kw: Any,
) -> tuple[int, str]:
    """Type ``keys`` into the REPL (the pipe is closed afterwards, i.e. Ctrl-D)."""
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=terminal, color_system=None)
    with create_pipe_input() as inp:
        inp.send_text(keys)
        inp.close()
        rc = run_repl(
            agent,
            settings or Settings(),
            console=console,
            pt_input=inp,
            pt_output=DummyOutput(),
            history_path=history_path,  # None: MEMCHAT_HOME/input_history, a tmp dir (conftest)
            **kw,
        )
    return rc, out.getvalue()


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def system(text: str) -> dict[str, str]:
    return {"role": "system", "content": text}


# -- exit ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word", ["q", "Q", "quit", "  QUIT  ", "exit", "Exit", "退出", " 退出 ", "/exit", "/EXIT", "/quit", "\x04", None]
)
def test_exit_words_end_the_chat_with_a_goodbye(word: str | None) -> None:
    agent = make_agent("Hello!", default="should not be asked")
    keys = "hi\n" + ("" if word is None else (word if word == "\x04" else word + "\n")) + "after\n"
    if word is None:  # end of input (Ctrl-D on an empty line / closed stdin)
        keys = "hi\n"
    rc, out = chat(agent, keys, session="s", system="")
    assert rc == 0
    assert len(calls(agent)) == 1
    assert out.rstrip().endswith("Bye!")
    assert stored(agent, "s") == [("user", "hi", Status.COMPLETE), ("assistant", "Hello!", Status.COMPLETE)]


def test_exit_word_inside_a_sentence_is_a_message() -> None:
    agent = make_agent("ok", "ok2")
    chat(agent, "quit smoking?\nq u i t\nq\n", session="s", system="")
    assert [c[-1]["content"] for c in calls(agent)] == ["quit smoking?", "q u i t"]


def test_empty_input_is_ignored() -> None:
    agent = make_agent("Hello!")
    _, out = chat(agent, "\n   \nhi\n\nq\n", session="s", system="")
    assert calls(agent) == [[user("hi")]]


# -- persona and banner -------------------------------------------------------------------


def test_a_new_chat_starts_at_the_prompt_the_first_line_is_a_question() -> None:
    """Issue 17, finding 5: no persona question first; the newcomer's question gets an answer."""
    agent = make_agent("我是孙悟空。", "记得。")
    rc, out = chat(agent, "你是谁\n我是谁\nq\n", session="xiyou")
    assert rc == 0
    assert "Persona" not in out and "persona set" not in out
    assert agent.store.get_session("xiyou").persona == ""
    assert calls(agent)[0] == [user("你是谁")]
    assert calls(agent)[1][-1] == user("我是谁")
    assert "Assistant: 我是孙悟空。" in out


def test_a_slash_command_typed_first_is_a_command_not_a_persona() -> None:
    agent = make_agent("Arr!")
    _, out = chat(agent, "/system You are a pirate.\nhi\nq\n", session="s")
    assert "persona updated" in out
    assert agent.store.get_session("s").persona == "You are a pirate."
    assert calls(agent) == [[system("You are a pirate."), user("hi")]]


def test_ctrl_c_at_the_first_prompt_clears_the_line() -> None:
    agent = make_agent("Hello!")
    chat(agent, "half a line\x03hi\nq\n", session="s")
    assert agent.store.get_session("s").persona == ""
    assert calls(agent) == [[user("hi")]]


def test_leaving_a_new_chat_without_a_message_stores_nothing() -> None:
    """Issue 17, finding 6: each `memchat chat` left without a message made an empty session."""
    for keys in ("\x04", "q\n", "/system Be brief\n/model x\n/memory window\n/rename kept\n/exit\n"):
        agent = make_agent()
        rc, out = chat(agent, keys)
        assert rc == 0 and out.rstrip().endswith("Bye!")
        assert calls(agent) == []
        assert agent.store.list_sessions() == []
        named = make_agent()
        chat(named, keys, session="trip")
        assert named.store.list_sessions() == []


def test_existing_session_keeps_its_persona_and_is_not_asked() -> None:
    agent = make_agent("r1", "r2")
    agent.store.create_session("old", persona="Be brief")
    agent.ask("old", "earlier")
    _, out = chat(agent, "now\nq\n", session="old")
    assert agent.store.get_session("old").persona == "Be brief"
    assert calls(agent)[-1] == [system("Be brief"), user("earlier"), assistant("r1"), user("now")]
    assert "old (2 messages)" in out


def test_system_given_skips_the_question() -> None:
    agent = make_agent("Hi")
    chat(agent, "hello\nq\n", session="s", system="你是言简意赅的回答者。")
    assert calls(agent) == [[system("你是言简意赅的回答者。"), user("hello")]]


def test_system_given_for_an_existing_session_replaces_its_persona() -> None:
    agent = make_agent("Hi")
    agent.store.create_session("s", persona="old persona")
    _, out = chat(agent, "hello\nq\n", session="s", system="new persona")
    assert agent.store.get_session("s").persona == "new persona"
    assert "replaced by --system" in out
    assert calls(agent)[0][0] == system("new persona")


def test_banner_names_session_provider_model_and_how_to_leave() -> None:
    agent = make_agent()
    _, out = chat(agent, "q\n", session="work", system="")
    first = out.splitlines()[0]
    assert "work" in first and "scripted/scripted-model" in first
    assert "/help" in out and "Ctrl-D" in out


def test_resume_continues_the_most_recently_updated_session() -> None:
    agent = make_agent("r1", "r2", "r3")
    agent.ask("older", "a")
    agent.ask("newer", "b")
    chat(agent, "c\nq\n", resume=True)
    assert stored(agent, "newer")[-2:] == [("user", "c", Status.COMPLETE), ("assistant", "r3", Status.COMPLETE)]
    assert len(agent.store.list_sessions()) == 2


def test_without_session_or_resume_a_new_session_is_created() -> None:
    agent = make_agent("r1", "r2")
    agent.ask("older", "a")
    chat(agent, "\nb\nq\n")
    sessions = agent.store.list_sessions()
    assert len(sessions) == 2
    assert calls(agent)[-1] == [user("b")]


# -- memory, errors, interruption ---------------------------------------------------------


def test_each_call_sends_the_whole_conversation() -> None:
    agent = make_agent("Apple.", "Banana.", "Grape.")
    rc, out = chat(agent, "水果1\n水果2\n最后一种水果是什么\nq\n", session="s", system="记住水果")
    assert calls(agent)[2] == [
        system("记住水果"),
        user("水果1"),
        assistant("Apple."),
        user("水果2"),
        assistant("Banana."),
        user("最后一种水果是什么"),
    ]
    assert "Assistant: Apple." in out and "Assistant: Grape." in out


def test_failed_call_prints_one_line_and_drops_the_message() -> None:
    agent = make_agent("one", ProviderError("boom"), "two")
    rc, out = chat(agent, "a\nb\nc\nq\n", session="s", system="")
    assert rc == 0
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert errors == ["error: the model call failed: boom"]
    assert "your message was not kept" in out
    assert "Traceback" not in out
    assert stored(agent, "s") == [
        ("user", "a", Status.COMPLETE),
        ("assistant", "one", Status.COMPLETE),
        ("user", "c", Status.COMPLETE),
        ("assistant", "two", Status.COMPLETE),
    ]
    assert calls(agent)[2] == [user("a"), assistant("one"), user("c")]


def test_stream_cut_midway_shows_partial_text_then_the_error_and_keeps_nothing() -> None:
    agent = make_agent(["Par", "tial", StreamError("connection reset")], AuthenticationError("401"), "ok")
    _, out = chat(agent, "a\nb\nc\nq\n", session="s", system="")
    assert "Assistant: Partial" in out
    assert "error: the reply stream broke (connection reset); try again" in out
    assert "error: the API key was refused (401)" in out
    assert stored(agent, "s") == [("user", "c", Status.COMPLETE), ("assistant", "ok", Status.COMPLETE)]


def test_ctrl_c_while_streaming_keeps_the_partial_reply_and_goes_on() -> None:
    agent = make_agent(["Hel", "lo", KeyboardInterrupt(), " never"], "next")
    rc, out = chat(agent, "hi\nagain\nq\n", session="s", system="")
    assert rc == 0
    assert "Assistant: Hello" in out and "never" not in out
    assert "partial reply was kept" in out
    assert stored(agent, "s") == [
        ("user", "hi", Status.COMPLETE),
        ("assistant", "Hello", Status.INTERRUPTED),
        ("user", "again", Status.COMPLETE),
        ("assistant", "next", Status.COMPLETE),
    ]
    assert calls(agent)[1] == [user("hi"), assistant("Hello"), user("again")]


def test_ctrl_c_before_any_text_keeps_the_question_and_retry_answers_it() -> None:
    # issue 17: Ctrl-C before the first token threw the question away
    agent = make_agent([KeyboardInterrupt()], "ok")
    _, out = chat(agent, "hi\n/retry\nq\n", session="s", system="")
    assert "stopped before any reply: your message was kept; /retry asks again" in out
    assert stored(agent, "s") == [("user", "hi", Status.COMPLETE), ("assistant", "ok", Status.COMPLETE)]
    assert calls(agent)[1] == [user("hi")]


def test_ctrl_c_at_the_prompt_clears_the_line_and_does_not_exit() -> None:
    agent = make_agent("ok")
    rc, out = chat(agent, "typed half\x03hi\nq\n", session="s", system="")
    assert calls(agent) == [[user("hi")]]
    assert out.rstrip().endswith("Bye!")


def test_reasoning_is_shown_but_not_part_of_the_answer() -> None:
    agent = make_agent([Chunk(reasoning="let me think"), "Answer."])
    _, out = chat(agent, "hi\nq\n", session="s", system="")
    assert "let me think" in out and "Answer." in out
    assert stored(agent, "s")[-1] == ("assistant", "Answer.", Status.COMPLETE)


# -- slash commands -------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    agent = make_agent()
    _, out = chat(agent, "/help\nq\n", session="s", system="")
    for usage in (
        "/context",
        "/history",
        "/system [TEXT]",
        "/new [NAME]",
        "/sessions",
        "/switch NAME",
        "/rename NAME",
        "/fork [NAME]",
        "/undo",
        "/retry",
        "/clear",
        "/model [NAME]",
        "/memory [STRATEGY]",
        "/pin [N]",
        "/unpin N",
        "/forget-summary",
        "/exit",
    ):
        assert usage in out


def test_unknown_command_suggests_the_closest() -> None:
    agent = make_agent()
    _, out = chat(agent, "/contxt\n/hsitory\n/zzz\nq\n", session="s", system="")
    assert "unknown command /contxt; did you mean /context? see /help" in out
    assert "did you mean /history?" in out
    assert "unknown command /zzz; see /help" in out
    assert calls(agent) == []
    _, out = chat(agent, "/memroy\n/forget-sumary\n/upin 1\n/forget-summary\nq\n", session="s", system="")
    assert "did you mean /memory?" in out and "did you mean /forget-summary?" in out
    assert "did you mean /unpin?" in out
    assert "there is no summary to drop" in out


def test_missing_argument_prints_usage() -> None:
    agent = make_agent()
    _, out = chat(agent, "/switch\n/rename\n/undo now\nq\n", session="s", system="")
    assert "usage: /switch NAME" in out and "usage: /rename NAME" in out and "usage: /undo" in out
    _, out = chat(agent, "/unpin\n/forget-summary now\nq\n", session="s", system="")
    assert "usage: /unpin N" in out and "usage: /forget-summary" in out


def test_double_slash_sends_a_message_starting_with_a_slash() -> None:
    agent = make_agent("a dir")
    chat(agent, "//etc is what?\nq\n", session="s", system="")
    assert calls(agent) == [[user("/etc is what?")]]


def _row(i: int | str, role: str, kind: str, tokens: int, content: str, msg: int | None = None) -> str:
    """A /context table row as a regex: #, message number, role, part, tokens, content."""
    number = rf"{msg}\s+" if msg is not None else ""
    return rf"^{i}\s+{number}{role}\s+{re.escape(kind)}\s+{tokens}\s+{re.escape(content)}"


def test_context_numbers_messages_with_kind_tokens_and_the_budget_gauge() -> None:
    agent = make_agent("Hello there!")
    _, out = chat(agent, "hi\n/context\nq\n", session="s", system="Be brief")
    plan = agent.context("s")
    assert "context · auto · 3 messages" in out
    persona, question, answer = plan.entries
    assert re.search(_row(1, "system", "persona", persona.tokens, "Be brief"), out, re.M)
    assert re.search(_row(2, "user", "verbatim", question.tokens, "hi", msg=1), out, re.M)
    assert re.search(_row(3, "assistant", "verbatim", answer.tokens, "Hello there!", msg=2), out, re.M)
    assert "every stored message is sent verbatim" in out
    budget = plan.budget
    used = context_tokens(plan.entries)
    percent = round(100 * used / budget.limit)
    assert re.search(rf"^budget \[█*░+\] {used} / {budget.limit:,} tokens \({percent}%\)$", out, re.M)
    assert (
        f"window {budget.window:,} − {budget.reserve:,} reserved for the reply = {budget.limit:,} for messages" in out
    )
    assert "4 tokens per message for the chat template" in " ".join(out.split())  # wrapped at words


def test_context_of_an_empty_session() -> None:
    agent = make_agent()
    _, out = chat(agent, "/context\nq\n", session="s", system="")
    assert "context · auto · 0 messages" in out and "(empty: no persona and no messages yet)" in out
    assert re.search(r"^budget \[░{20}\] 0 / [\d,]+ tokens \(0%\)$", out, re.M)


def test_show_context_at_the_three_points() -> None:
    agent = make_agent("Hi!")
    _, out = chat(agent, "hello\nq\n", session="s", system="Be brief", show_context=True)
    titles = [m.start() for m in re.finditer(r"context · auto · \d+ messages", out)]
    assert [out[i : i + 27] for i in titles] == [
        "context · auto · 1 messages",
        "context · auto · 2 messages",
        "context · auto · 3 messages",
    ]
    persona_set, user_sent, replied = titles
    reply_at = out.index("Assistant: Hi!")
    assert persona_set < user_sent < reply_at < replied
    # before the reply: the message being sent is the "new message", not stored yet
    assert re.search(r"^2\s+user\s+new message\s+\d+\s+hello", out[user_sent:reply_at], re.M)
    assert re.search(r"^3\s+2\s+assistant\s+verbatim\s+\d+\s+Hi!", out[replied:], re.M)


def test_show_context_after_the_persona_is_set() -> None:
    agent = make_agent()
    _, out = chat(agent, "/system Be brief\nq\n", session="s", show_context=True)
    assert out.index("persona updated") < out.index("context · auto · 1 messages")
    assert re.search(r"^1\s+system\s+persona\s+\d+\s+Be brief", out, re.M)


FACTS = [
    "my cat is called Mimi and she is grey",
    "I live in Lyon near the river Saone",
    "my favourite fruit is the grape from Bordeaux",
]


def long_chat(turns: int) -> str:
    """``turns`` user lines long enough to overflow a 300-token window."""
    return "".join(f"{FACTS[i % 3]} and some filler text number {i} to make it long\n" for i in range(turns))


def test_context_shows_the_summary_pins_and_recall_and_why() -> None:
    """A session beyond its window: /context shows each part of the system message with why
    it is there, and --show-context shows the turn's own plan (recall for that message)."""
    agent = make_agent(default="Noted.")
    agent.context_window = 340  # recalled lines carry their date: 300 left them no room
    agent.upkeep = InlineUpkeep()  # the summary exists when /context is typed
    keys = long_chat(10) + "/pin 1\n/context\nwhat is my cat called?\nq\n"
    _, out = chat(agent, keys, session="s", system="Be brief", show_context=True)
    store = agent.store
    first = store.messages("s")[0]
    assert [p.id for p in store.pins("s")] == [first.id]
    spans = {(x.first_seq, x.last_seq) for x in store.summaries("s")}  # written by the (scripted) model
    assert spans

    # /context: the plan of the next call (no new message)
    start = out.index("context · auto", out.index("pinned message 1 (user)"))
    shown = out[start : out.index("context · auto", start + 1)]
    assert re.search(r"^1\s+system\s+system\s+\d+", shown, re.M)
    assert re.search(r"^\s+↳ persona\s+\d+\s+Be brief", shown, re.M)
    covers = re.search(r"^\s+↳ summary\s+\d+\s+covers messages 1–(\d+)\s*$", shown, re.M)
    assert covers is not None
    last = int(covers.group(1))
    assert (1, last) in spans  # no gaps in this session: message numbers are seqs
    assert "[Summary of the earlier conversation]" in shown and "Noted." in shown
    assert re.search(r"^\s+↳ pinned\s+\d+\s+messages 1\s*$", shown, re.M)
    assert "[#1 user] my cat is called Mimi" in shown
    omitted = re.search(r"not sent verbatim: (\d+) older messages \((\d+) summarized, 1 pinned, 0 recalled", shown)
    assert omitted is not None
    assert int(omitted.group(2)) == last
    verbatim = [int(n) for n in re.findall(r"^\d+\s+(\d+)\s+(?:user|assistant)\s+verbatim", shown, re.M)]
    stored_count = 20
    assert verbatim == list(range(stored_count - len(verbatim) + 1, stored_count + 1))
    assert int(omitted.group(1)) == stored_count - len(verbatim)

    # --show-context of the turn: the question, and what recall found for it
    start = out.index("context · auto", start + 1)
    turn_view = out[start : out.index("Assistant:", start)]
    assert re.search(r"^\d+\s+user\s+new message\s+\d+\s+what is my cat called\?", turn_view, re.M)
    assert re.search(r"^\s+↳ recalled\s+\d+\s+\d+ past turns?\s*$", turn_view, re.M)
    # each recalled turn with why it was chosen: where, when, its score and the match
    assert re.search(r"^\s+· past turn\s+\d+\s+this session · \d{4}-\d\d-\d\d · score \d+\.\d · bm25", turn_view, re.M)
    # what was shown is what was sent
    sent_system = calls(agent)[-1][0]["content"]
    assert sent_system.startswith("Be brief\n\n[Summary of the earlier conversation")
    assert "[#1 user] my cat is called Mimi" in sent_system  # pinned
    # recall last in the one system message (the part before it stays a stable prefix)
    assert "\n\n[Earlier messages that may be relevant" in sent_system
    assert [m["role"] for m in calls(agent)[-1]].count("system") == 1
    assert re.search(r"^1\s+system\s+system\s+\d+", turn_view, re.M)  # shown as a part of it
    assert calls(agent)[-1][-1] == user("what is my cat called?")


def test_history_shows_status_marks() -> None:
    agent = make_agent(["Hel", KeyboardInterrupt()], "fine")
    _, out = chat(agent, "a\nb\n/history\nq\n", session="s", system="persona P")
    assert "history of s · 4 messages" in out
    assert "persona: persona P" in out
    assert re.search(r"2 assistant: Hel \[interrupted\]", out)
    assert re.search(r"4 assistant: fine$", out, re.M)


def test_system_shows_and_sets_the_persona() -> None:
    agent = make_agent("ok")
    _, out = chat(agent, "/system\n/system Be terse.\n/system\nhi\nq\n", session="s", system="")
    assert "no persona set" in out and "persona updated" in out and "persona: Be terse." in out
    assert agent.store.get_session("s").persona == "Be terse."
    assert calls(agent) == [[system("Be terse."), user("hi")]]


def test_new_starts_a_session_and_the_next_line_is_never_its_persona() -> None:
    """After /new the next line, a slash command included, is what it is: never the persona."""
    agent = make_agent("one", "two", "three")
    keys = "a\n/new second\n/system Pirate\nb\n/new second\n/new\n/history\nc\nq\n"
    _, out = chat(agent, keys, session="first")
    assert "new session second" in out
    assert agent.store.get_session("second").persona == "Pirate"
    assert stored(agent, "first") == [("user", "a", Status.COMPLETE), ("assistant", "one", Status.COMPLETE)]
    assert calls(agent)[1] == [system("Pirate"), user("b")]
    assert "a session named 'second' already exists; choose another name" in out
    assert "new chat: it is stored with its first message" in out
    assert "no messages yet" in out  # /history of the new chat: a command, not its persona
    names = {s.name for s in agent.store.list_sessions()}
    assert len(names) == 3
    (third,) = names - {"first", "second"}
    assert agent.store.get_session(third).persona == ""
    assert stored(agent, third)[0] == ("user", "c", Status.COMPLETE)


def test_new_without_name_generates_one() -> None:
    agent = make_agent("x", "y")
    chat(agent, "hello\n/new\nhi\nq\n", session="first", system="S")
    names = {s.name for s in agent.store.list_sessions()}
    assert len(names) == 2 and "first" in names
    (other,) = names - {"first"}
    assert stored(agent, other)[0] == ("user", "hi", Status.COMPLETE)
    assert agent.store.get_session(other).persona == "S"


def test_sessions_lists_and_marks_the_current_one() -> None:
    agent = make_agent("r")
    agent.ask("alpha", "x")
    _, out = chat(agent, "/sessions\nq\n", session="beta", system="")
    assert re.search(r"^\*\s+beta\s+0", out, re.M)
    assert re.search(r"^\s+alpha\s+2", out, re.M)


def test_switch_moves_to_another_session() -> None:
    agent = make_agent("r0", "r1")
    agent.ask("alpha", "x")
    _, out = chat(agent, "/switch alpha\ny\n/switch nope\nq\n", session="beta", system="")
    assert "now in session alpha (2 messages)" in out
    assert calls(agent)[-1] == [user("x"), assistant("r0"), user("y")]
    assert agent.store.find_session("beta") is None  # left without a message: never stored
    assert "error: no session named 'nope'" in out


def test_rename_renames_the_current_session() -> None:
    agent = make_agent("r")
    _, out = chat(agent, "/rename 新名字\nhi\nq\n", session="old", system="")
    assert agent.store.find_session("old") is None
    assert stored(agent, "新名字")[0] == ("user", "hi", Status.COMPLETE)
    assert "session renamed to 新名字" in out


def test_fork_copies_and_continues_in_the_copy() -> None:
    agent = make_agent("r0", "r1")
    agent.ask("main", "x")
    _, out = chat(agent, "/fork branch\ny\nq\n", session="main", system="")
    assert "forked main into branch; now in branch" in out
    assert stored(agent, "main") == [("user", "x", Status.COMPLETE), ("assistant", "r0", Status.COMPLETE)]
    assert [m[1] for m in stored(agent, "branch")] == ["x", "r0", "y", "r1"]


def test_undo_removes_the_last_turn() -> None:
    agent = make_agent("r1", "r2", "r3")
    _, out = chat(agent, "a\nb\n/undo\nc\nq\n", session="s", system="")
    assert "removed the last turn (2 messages)" in out
    assert calls(agent)[2] == [user("a"), assistant("r1"), user("c")]
    _, out = chat(make_agent(), "/undo\nq\n", session="s", system="")
    assert "nothing to undo" in out


def test_retry_regenerates_the_last_reply_and_keeps_the_earlier_ones_as_versions() -> None:
    # issue 17: /retry destroyed the previous reply
    agent = make_agent("first answer", "better answer", "third answer", "go on")
    keys = "question\n/retry\n/retry\n/versions\n/versions 1\nmore\n/history\n/versions 5\n/versions x\nq\n"
    _, out = chat(agent, keys, session="s", system="")
    assert "Assistant: better answer" in out and "version 2 of 2 · /versions lists them" in out
    assert calls(agent)[1] == calls(agent)[0] == [user("question")]
    assert "message 2: 3 versions (* shown)" in out
    listing = out[out.index("message 2: 3 versions") :]
    shown = r"\s1 assistant: first answer\n\s+2 assistant: better answer\n\* +3 assistant: third answer"
    assert re.search(shown, listing)
    assert "message 2 now shows version 1 of 3; the next turn continues from it" in out
    # the next turn continues from the version shown
    assert calls(agent)[-1] == [user("question"), assistant("first answer"), user("more")]
    assert stored(agent, "s") == [
        ("user", "question", Status.COMPLETE),
        ("assistant", "first answer", Status.COMPLETE),
        ("user", "more", Status.COMPLETE),
        ("assistant", "go on", Status.COMPLETE),
    ]
    assert re.search(r"2 assistant: first answer ‹1/3›", out)  # /history marks it
    assert "there is no version 5; message 2 has versions 1–3" in out
    assert "usage: /versions [[M] N]" in out


def test_retry_that_fails_keeps_the_old_reply() -> None:
    agent = make_agent("first answer", ProviderError("down"))
    _, out = chat(agent, "question\n/retry\nq\n", session="s", system="")
    assert "error: the model call failed: down" in out and "previous reply was kept" in out
    assert stored(agent, "s")[-1] == ("assistant", "first answer", Status.COMPLETE)


def test_retry_with_nothing_to_retry() -> None:
    agent = make_agent()
    _, out = chat(agent, "/retry\nq\n", session="s", system="")
    assert "error: there is no reply to regenerate yet" in out


def test_clear_empties_the_session_but_keeps_the_persona() -> None:
    agent = make_agent("r1", "r2")
    agent.ask("s", "a")
    agent.store.pin("s", agent.store.messages("s")[0].id or 0)
    agent.store.add_summary("s", Summary(1, 2, "an old summary", 3))
    _, out = chat(agent, "/clear\nb\nq\n", session="s", system="P")
    assert "removed 2 messages; the persona is kept" in out
    assert calls(agent)[1] == [system("P"), user("b")]  # no summary of messages that are gone
    store = agent.store
    assert store.get_session("s").persona == "P"
    assert store.summaries("s") == [] and store.pins("s") == []


def test_undo_drops_a_summary_that_covered_the_removed_turn() -> None:
    agent = make_agent("r1", "r2")
    agent.ask("s", "a")
    agent.ask("s", "b")
    agent.store.add_summary("s", Summary(1, 2, "of the first turn", 3))
    chat(agent, "/undo\nq\n", session="s", system="")
    assert [x.content for x in agent.store.summaries("s")] == ["of the first turn"]  # still covers what is left
    agent.store.add_summary("s", Summary(1, 2, "of the first turn, again", 3))
    chat(agent, "/undo\nq\n", session="s", system="")
    assert agent.store.messages("s") == [] and agent.store.summaries("s") == []


def test_model_shows_and_sets_the_sessions_model() -> None:
    agent = make_agent("r1", "r2")
    _, out = chat(agent, "a\n/model\n/model big-model\n/model\nb\nq\n", session="s", system="")
    assert "model: scripted-model" in out
    assert "model for this session: big-model" in out and "model: big-model" in out
    assert agent.store.get_session("s").model == "big-model"
    provider = agent.provider
    assert isinstance(provider, ScriptedProvider)
    assert provider.models == ["scripted-model", "big-model"]


def test_session_model_is_used_when_resuming_but_an_explicit_setting_wins() -> None:
    agent = make_agent("r1", "r2")
    agent.store.create_session("s", model="stored-model")
    chat(agent, "a\nq\n", session="s")
    agent.model = "flag-model"  # what `memchat chat --model flag-model` builds
    chat(agent, "b\nq\n", session="s", settings=Settings(model="flag-model", sources={"model": "flag"}))
    provider = agent.provider
    assert isinstance(provider, ScriptedProvider)
    assert provider.models == ["stored-model", "flag-model"]


# -- memory: strategy, pins, summaries, toolbar ---------------------------------------------


def test_memory_shows_and_sets_the_sessions_strategy() -> None:
    agent = make_agent("r1", "r2")
    _, out = chat(agent, "a\n/memory\n/memory WINDOW\n/memory\n/memory bogus\nb\nq\n", session="s", system="")
    budget = agent.budget_for("scripted-model")
    assert f"memory: auto · context window {budget.window:,} tokens, {budget.limit:,} for messages" in out
    for name in ("auto", "full", "window", "summary", "recall"):
        assert re.search(rf"^ [ *] {name}\s+\S", out, re.M), name
    assert re.search(r"^ \* auto\s+window \+ summary \+ recall", out, re.M)
    assert "memory strategy for this session: window" in out
    assert re.search(r"^ \* window\s+the newest turns that fit", out, re.M)
    assert "error: unknown memory strategy 'bogus'; choose one of: auto, full, window, summary, recall" in out
    assert agent.store.get_session("s").memory == "window"
    assert agent.context("s").strategy == "window"
    assert calls(agent)[-1] == [user("a"), assistant("r1"), user("b")]


def test_memory_set_in_the_repl_wins_over_the_flag() -> None:
    agent = make_agent("ok")
    agent.memory = "full"  # what `memchat chat --memory full` (or MEMCHAT_MEMORY) builds
    _, out = chat(agent, "/memory\n/memory recall\n/memory\nhi\nq\n", session="s", system="")
    assert "memory: full · context window" in out
    assert "set for every session by --memory, MEMCHAT_MEMORY or the config file (this session's own: auto)" in out
    assert "memory strategy for this session: recall" in out
    assert agent.store.get_session("s").memory == "recall"
    assert "memory: recall · context window" in out.split("memory strategy for this session: recall")[1]
    assert out.count("set for every session") == 1


def test_pin_and_unpin_use_the_history_numbers() -> None:
    agent = make_agent("r1", "r2", ProviderError("gone"), "r3")
    keys = "first\nsecond\nlost\nthird\n/pin\n/pin 2\n/pin 2\n/pin 9\n/pin two\n/history\n/unpin 2\n/unpin 2\nq\n"
    _, out = chat(agent, keys, session="s", system="")
    messages = agent.store.messages("s")
    # the failed turn left a gap in the seqs; /history numbers the messages as they are
    assert [m.seq for m in messages] != list(range(1, 7))
    assert "pinned message 5 (user): third" in out
    assert "pinned message 2 (assistant): r1" in out
    assert "message 2 is already pinned" in out
    assert "error: there is no message 9; /history numbers them 1–6" in out
    assert "error: 'two' is not a message number" in out
    assert re.search(r"^\s+5 user: third \[pinned\]", out, re.M)
    assert re.search(r"^\s+2 assistant: r1 \[pinned\]", out, re.M)
    assert "unpinned message 2" in out and "message 2 is not pinned" in out
    assert [p.content for p in agent.store.pins("s")] == ["third"]


def test_pin_with_nothing_to_pin() -> None:
    agent = make_agent()
    _, out = chat(agent, "/pin\n/pin 1\nq\n", session="s", system="")
    assert "error: there is no message of yours to pin yet" in out
    assert "error: there is no message 1: this session has no messages yet" in out


def test_a_pinned_message_stays_in_every_call() -> None:
    agent = make_agent(default="Noted.")
    agent.context_window = 300
    _, out = chat(agent, "remember the code is 4711\n/pin\n" + long_chat(8) + "q\n", session="s", system="")
    last = turn_calls(agent)[-1]
    assert user("remember the code is 4711") not in last  # long out of the window…
    assert "[#1 user] remember the code is 4711" in last[0]["content"]  # …but pinned


def test_forget_summary_drops_the_summaries_and_they_are_rebuilt() -> None:
    agent = make_agent(default="Noted.")
    agent.context_window = 300
    agent.upkeep = InlineUpkeep()  # each summary exists before the next typed line is read
    chat(agent, long_chat(8) + "q\n", session="s", system="")
    assert agent.store.summaries("s")
    assert "[Summary of the earlier conversation" in turn_calls(agent)[-1][0]["content"]
    _, out = chat(agent, "/forget-summary\n/forget-summary\n/context\nq\n", session="s", system="")
    count = re.search(r"dropped (\d+) summaries; they are rebuilt from the messages when needed", out)
    assert count is not None and int(count.group(1)) >= 1
    assert "there is no summary to drop" in out
    assert agent.store.summaries("s") == []
    assert "↳ summary" not in out and re.search(r"not sent verbatim: \d+ older messages \(0 summarized", out)
    assert [m.content for m in agent.store.messages("s")][:1] == [long_chat(1).strip()]  # originals untouched
    chat(agent, "and now?\nq\n", session="s", system="")
    assert agent.store.summaries("s")  # the next turn that needs one writes it again


def test_history_shows_the_running_summary() -> None:
    agent = make_agent("r1", "r2")
    agent.ask("s", "a")
    agent.ask("s", "b")
    agent.store.add_summary("s", Summary(1, 2, "first version", 3))
    agent.store.add_summary("s", Summary(1, 2, "the user said a", 3))
    _, out = chat(agent, "/history\nq\n", session="s", system="")
    assert "summary of messages 1–2: the user said a" in out and "first version" not in out
    assert "(1 earlier versions of the summary are kept; /forget-summary drops them all)" in out


class _Recorder:
    """Records the bottom toolbar each time a prompt is shown."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[str] = []
        original = PromptReader.read

        def read(reader: PromptReader, prompt: str) -> str:
            toolbar = reader.session.bottom_toolbar
            assert callable(toolbar)
            self.seen.append(toolbar())
            return original(reader, prompt)

        monkeypatch.setattr(PromptReader, "read", read)


def test_the_toolbar_shows_session_strategy_and_budget_after_each_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder(monkeypatch)
    agent = make_agent("Hello there!", "Fine, thanks.")
    chat(agent, "hi\nhow are you\n/memory window\nq\n", session="s", system="Be brief")
    limit = agent.budget_for("scripted-model").limit
    used = [
        int(u) for u in re.findall(rf"^ s · \w+ · (\d+)/{limit:,} tokens \(\d+%\) $", "\n".join(recorder.seen), re.M)
    ]
    assert len(used) == len(recorder.seen) == 4
    assert used[0] < used[1] < used[2] == used[3]  # it grows with each turn
    assert used[2] == agent.context("s").tokens
    assert [x.split(" · ")[1] for x in recorder.seen] == ["auto", "auto", "auto", "window"]


def test_the_toolbar_says_when_the_history_does_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder(monkeypatch)
    agent = make_agent(default="Noted.")
    agent.context_window = 300
    chat(agent, long_chat(6) + "/memory full\nq\n", session="s", system="")
    assert recorder.seen[-1] == " s · full · does not fit the context window: see /memory "


def test_the_toolbar_is_drawn_on_the_terminal() -> None:
    class Terminal(Vt100_Output):
        def get_rows_below_cursor_position(self) -> int:
            return 10  # what a terminal answers to a cursor position request

    agent = make_agent()
    screen = io.StringIO()
    with create_pipe_input() as inp:
        inp.send_text("q\n")
        inp.close()
        output = Terminal(screen, lambda: Size(rows=20, columns=100), term="xterm")
        run_repl(
            agent,
            Settings(),
            session="s",
            system="",
            console=Console(file=io.StringIO()),
            pt_input=inp,
            pt_output=output,
        )
    assert re.search(r" s · auto · 0/[\d,]+ tokens \(0%\)", screen.getvalue())


# -- input ---------------------------------------------------------------------------------


def test_triple_quote_block_is_one_message() -> None:
    agent = make_agent("ok")
    chat(agent, '"""\nline one\n  line two\n"""\nq\n', session="s", system="")
    assert calls(agent) == [[user("line one\n  line two")]]


def test_alt_enter_inserts_a_newline() -> None:
    agent = make_agent("ok")
    chat(agent, "first\x1b\rsecond\nq\n", session="s", system="")
    assert calls(agent) == [[user("first\nsecond")]]


def test_input_history_is_persisted(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "input_history"
    chat(make_agent("ok"), "remember me\nq\n", session="s", system="", history_path=path)
    assert "+remember me" in path.read_text(encoding="utf-8")


def test_default_history_file_is_in_the_data_dir(clean_env: Path) -> None:
    agent = make_agent("ok")
    out = io.StringIO()
    with create_pipe_input() as inp:
        inp.send_text("hello\nq\n")
        inp.close()
        run_repl(
            agent, Settings(), session="s", system="", console=Console(file=out), pt_input=inp, pt_output=DummyOutput()
        )
    assert "+hello" in (clean_env / "input_history").read_text(encoding="utf-8")


def test_stdin_that_is_not_a_terminal_is_read_line_by_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\nq\n"))
    agent = make_agent("Hello!")
    out = io.StringIO()
    rc = run_repl(agent, Settings(), console=Console(file=out, width=100))
    text = out.getvalue()
    assert rc == 0
    assert calls(agent) == [[user("hi")]]  # no persona question in a pipe
    assert "You: hi\nAssistant: Hello!\n" in text and text.rstrip().endswith("Bye!")


# -- terminal rendering ---------------------------------------------------------------------


def test_terminal_renders_the_finished_reply_as_markdown() -> None:
    agent = make_agent(["**Bold** and ", "`code`"])
    _, out = chat(agent, "hi\nq\n", session="s", system="", terminal=True)
    final = out.split("\x1b[?25h")[-1]  # after the live view is gone
    assert "Bold and code" in final and "**" not in final
    assert stored(agent, "s")[-1] == ("assistant", "**Bold** and `code`", Status.COMPLETE)


def test_terminal_ctrl_c_keeps_the_partial_reply_on_screen_and_stored() -> None:
    agent = make_agent(["# Title", "\n\nsome text", KeyboardInterrupt()], "ok")
    rc, out = chat(agent, "hi\nagain\nq\n", session="s", system="", terminal=True)
    assert rc == 0
    final = out.split("partial reply was kept")[0]
    assert "Title" in final and "some text" in final
    assert stored(agent, "s")[1] == ("assistant", "# Title\n\nsome text", Status.INTERRUPTED)
    assert stored(agent, "s")[-1] == ("assistant", "ok", Status.COMPLETE)


# -- Chinese ---------------------------------------------------------------------------------


def test_chinese_strings() -> None:
    i18n.set_lang("zh")
    agent = make_agent("你好！", ProviderError("超时"), ["半", KeyboardInterrupt()])
    _, out = chat(agent, "你好\n再问\n/contxt\n第三\n退出\n", session="会话", system="")
    assert "会话 会话" in out.splitlines()[0]
    assert "助手: 你好！" in out
    assert "错误：模型调用失败：超时" in out and "这条消息没有保留" in out
    assert "未知命令 /contxt；你是想输入 /context 吗？" in out
    assert "已显示的部分回复已保留" in out
    assert out.rstrip().endswith("再见！")


def test_chinese_memory_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder(monkeypatch)
    i18n.set_lang("zh")
    agent = make_agent("好的。")
    keys = "我的猫叫咪咪\n/pin\n/context\n/memory\n/memory window\n/forget-summary\n/unpin 1\n/pin 9\nq\n"
    _, out = chat(agent, keys, session="会话", system="简洁")
    assert "已置顶第 1 条消息（user）：我的猫叫咪咪" in out
    assert "上下文 · auto · 3 条消息" in out
    assert re.search(r"^2\s+1\s+user\s+原文\s+\d+\s+我的猫叫咪咪", out, re.M)
    assert re.search(r"^1\s+system\s+角色\s+\d+\s+简洁", out, re.M)
    assert "所有保存的消息都原文发送" in out
    assert re.search(r"^预算 \[█*░*\] \d+ / [\d,]+ token（\d+%）$", out, re.M)
    assert "为回复预留" in out and "每条消息" in out
    assert "记忆：auto · 上下文窗口" in out and "按需组合窗口、摘要与检索（默认）" in out
    assert "本会话的记忆策略：window" in out
    assert "没有可删除的摘要" in out and "已取消置顶第 1 条消息" in out
    assert "错误：没有第 9 条消息；/history 中的编号为 1–2" in out
    assert re.match(r" 会话 · window · \d+/[\d,]+ token（\d+%） $", recorder.seen[-1])


def test_language_from_settings() -> None:
    agent = make_agent()
    _, out = chat(agent, "q\n", session="s", system="", settings=Settings(lang="zh"))
    assert out.rstrip().endswith("再见！")


def test_roles_are_stored_as_the_lesson_describes() -> None:
    agent = make_agent("answer")
    chat(agent, "question\nq\n", session="s", system="persona")
    assert [m.role for m in agent.store.messages("s")] == [Role.USER, Role.ASSISTANT]
    assert agent.context("s").entries[0].role is Role.SYSTEM


def test_older_turns_are_summarized_in_the_background_and_no_turn_waits_for_it() -> None:
    agent = make_agent(default="Noted, that is a fine point to remember for later.")
    agent.memory, agent.context_window = "summary", 512
    lines = "".join(f"Turn {k}: the weather is mild and grey again today, nothing special at all.\n" for k in range(30))
    rc, out = chat(agent, lines + "/context\nq\n", session="s", system="")
    assert rc == 0 and "into the summary…)" not in out  # no "(folding …)" between Enter and the reply
    assert agent.store.summaries("s")  # written after the replies (the REPL gives it a moment on exit)
    assert "↳ summary" in out


def test_edit_gives_a_message_new_text_in_place_and_keeps_the_original_as_a_version() -> None:
    # issue 17: an edit used to make a separate session "s · edit 3"
    agent = make_agent("r1", "r2", "r3")
    keys = "first\nsecond\n/edit 3 changed\n/edit 2 no\n/edit 9 x\n/edit 1\n/versions\n/versions 3 1\nq\n"
    _, out = chat(agent, keys, session="s", system="")
    assert [s.name for s in agent.store.list_sessions()] == ["s"]
    assert calls(agent)[-1] == [user("first"), assistant("r1"), user("changed")]  # not the old turn
    assert "version 2 of 2" in out
    assert re.search(r"1 user: second\n\s+assistant: r2\n\* +2 user: changed\n\s+assistant: r3", out)
    assert "message 3 now shows version 1 of 2" in out
    assert stored(agent, "s") == [
        ("user", "first", Status.COMPLETE),
        ("assistant", "r1", Status.COMPLETE),
        ("user", "second", Status.COMPLETE),
        ("assistant", "r2", Status.COMPLETE),
    ]
    assert "only your own messages can be edited" in out  # /edit 2: a reply
    assert "there is no message 9" in out or "no message 9" in out
    assert "usage: /edit N TEXT" in out
