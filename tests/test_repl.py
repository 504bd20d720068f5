"""The terminal REPL, driven through prompt_toolkit's pipe input and a rich Console on a
StringIO: what the user sees and what the store keeps."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from memchat import i18n
from memchat.agent import Agent
from memchat.cli.repl import run_repl
from memchat.config import Settings
from memchat.domain import Chunk, Role, Status
from memchat.errors import AuthenticationError, ProviderError, StreamError
from memchat.factory import open_store
from memchat.memory import context_tokens
from memchat.testing import ScriptedProvider


def make_agent(*replies: Any, default: str | None = None) -> Agent:
    return Agent(open_store(":memory:"), ScriptedProvider(replies, default=default))


def calls(agent: Agent) -> list[list[dict[str, Any]]]:
    provider = agent.provider
    assert isinstance(provider, ScriptedProvider)
    return provider.calls


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


def test_new_session_asks_the_persona_once() -> None:
    agent = make_agent("我是孙悟空。", "记得。")
    rc, out = chat(agent, "你是孙悟空,我是猪八戒\n你是谁\n我是谁\nq\n", session="xiyou")
    assert rc == 0
    info = agent.store.get_session("xiyou")
    assert info.persona == "你是孙悟空,我是猪八戒"
    assert "persona set" in out
    # asked once: the next lines are messages, each call starts with the persona
    assert calls(agent)[0] == [system("你是孙悟空,我是猪八戒"), user("你是谁")]
    assert calls(agent)[1][0] == system("你是孙悟空,我是猪八戒")
    assert calls(agent)[1][-1] == user("我是谁")


def test_enter_skips_the_persona() -> None:
    agent = make_agent("Hello!")
    _, out = chat(agent, "\nhi\nq\n", session="s")
    assert agent.store.get_session("s").persona == ""
    assert calls(agent) == [[user("hi")]]
    assert "persona set" not in out


def test_ctrl_c_at_the_persona_question_skips_it() -> None:
    agent = make_agent("Hello!")
    chat(agent, "half a persona\x03hi\nq\n", session="s")
    assert agent.store.get_session("s").persona == ""
    assert calls(agent) == [[user("hi")]]


def test_ctrl_d_at_the_persona_question_leaves() -> None:
    agent = make_agent()
    rc, out = chat(agent, "\x04", session="s")
    assert rc == 0 and out.rstrip().endswith("Bye!")
    assert calls(agent) == []


def test_existing_session_keeps_its_persona_and_is_not_asked() -> None:
    agent = make_agent("r1", "r2")
    agent.store.create_session("old", persona="Be brief")
    agent.ask("old", "earlier")
    _, out = chat(agent, "now\nq\n", session="old")
    assert "persona set" not in out
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


def test_ctrl_c_before_any_text_drops_the_turn() -> None:
    agent = make_agent([KeyboardInterrupt()], "ok")
    _, out = chat(agent, "hi\nagain\nq\n", session="s", system="")
    assert "stopped before any reply" in out
    assert stored(agent, "s") == [("user", "again", Status.COMPLETE), ("assistant", "ok", Status.COMPLETE)]


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


def test_missing_argument_prints_usage() -> None:
    agent = make_agent()
    _, out = chat(agent, "/switch\n/rename\n/undo now\nq\n", session="s", system="")
    assert "usage: /switch NAME" in out and "usage: /rename NAME" in out and "usage: /undo" in out


def test_double_slash_sends_a_message_starting_with_a_slash() -> None:
    agent = make_agent("a dir")
    chat(agent, "//etc is what?\nq\n", session="s", system="")
    assert calls(agent) == [[user("/etc is what?")]]


def test_context_numbers_messages_with_tokens_and_total() -> None:
    agent = make_agent("Hello there!")
    _, out = chat(agent, "hi\n/context\nq\n", session="s", system="Be brief")
    entries = agent.context("s").entries
    assert "context · 3 messages" in out
    for i, e in enumerate(entries, 1):
        assert re.search(rf"^{i}\s+{e.role.value}\s+{e.tokens}\s+{re.escape(e.content)}", out, re.M), e
    assert f"total {context_tokens(entries)} tokens" in out


def test_context_of_an_empty_session() -> None:
    agent = make_agent()
    _, out = chat(agent, "/context\nq\n", session="s", system="")
    assert "context · 0 messages" in out and "total 0 tokens" in out


def test_show_context_at_the_three_points() -> None:
    agent = make_agent("Hi!")
    _, out = chat(agent, "hello\nq\n", session="s", system="Be brief", show_context=True)
    titles = [m.start() for m in re.finditer(r"context · \d+ messages", out)]
    assert [out[i : i + 20] for i in titles] == ["context · 1 messages", "context · 2 messages", "context · 3 messages"]
    persona_set, user_sent, replied = titles
    reply_at = out.index("Assistant: Hi!")
    assert persona_set < user_sent < reply_at < replied
    assert re.search(r"^2\s+user\s+\d+\s+hello", out[user_sent:reply_at], re.M)
    assert re.search(r"^3\s+assistant\s+\d+\s+Hi!", out[replied:], re.M)


def test_show_context_after_the_persona_is_typed() -> None:
    agent = make_agent()
    _, out = chat(agent, "Be brief\nq\n", session="s", show_context=True)
    assert out.index("persona set") < out.index("context · 1 messages")
    assert re.search(r"^1\s+system\s+\d+\s+Be brief", out, re.M)


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


def test_new_starts_a_session_and_asks_its_persona() -> None:
    agent = make_agent("one", "two")
    _, out = chat(agent, "\na\n/new second\nPirate\nb\n/new second\nq\n", session="first")
    assert "new session second" in out
    assert agent.store.get_session("second").persona == "Pirate"
    assert stored(agent, "first") == [("user", "a", Status.COMPLETE), ("assistant", "one", Status.COMPLETE)]
    assert calls(agent)[1] == [system("Pirate"), user("b")]
    assert "a session named 'second' already exists; choose another name" in out


def test_new_without_name_generates_one() -> None:
    agent = make_agent("x")
    chat(agent, "/new\nhi\nq\n", session="first", system="S")
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
    assert stored(agent, "beta") == []
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


def test_retry_regenerates_the_last_reply() -> None:
    agent = make_agent("first answer", "better answer")
    _, out = chat(agent, "question\n/retry\nq\n", session="s", system="")
    assert "Assistant: better answer" in out
    assert calls(agent)[1] == calls(agent)[0] == [user("question")]
    assert stored(agent, "s") == [
        ("user", "question", Status.COMPLETE),
        ("assistant", "better answer", Status.COMPLETE),
    ]


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
    _, out = chat(agent, "a\n/clear\nb\nq\n", session="s", system="P")
    assert "removed 2 messages; the persona is kept" in out
    assert calls(agent)[1] == [system("P"), user("b")]
    assert agent.store.get_session("s").persona == "P"


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


def test_language_from_settings() -> None:
    agent = make_agent()
    _, out = chat(agent, "q\n", session="s", system="", settings=Settings(lang="zh"))
    assert out.rstrip().endswith("再见！")


def test_roles_are_stored_as_the_lesson_describes() -> None:
    agent = make_agent("answer")
    chat(agent, "question\nq\n", session="s", system="persona")
    assert [m.role for m in agent.store.messages("s")] == [Role.USER, Role.ASSISTANT]
    assert agent.context("s").entries[0].role is Role.SYSTEM
