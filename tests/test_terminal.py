"""``memchat chat`` in a real pseudo-terminal (``tests/terminal.py``), typed into as a person types,
against the fake model server: the terminal habits of issue 17 (it starts at the prompt, a slash
command is never a persona or a message, leaving a new chat stores nothing, Ctrl-C mid-reply,
/history wrapped at words, /model on the embedded provider, titles and /search)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from fakeserver import FakeReply, FakeServer
from memchat.config import default_db_path
from memchat.domain import Message, Role, Status
from memchat.factory import open_store
from terminal import Terminal

CHAT = [sys.executable, "-m", "memchat.cli.main", "chat"]


def environment(fake: FakeServer | None = None, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # the terminal's size
    env.update(TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", PYTHONIOENCODING="utf-8")
    if fake is not None:
        env.update(MEMCHAT_PROVIDER="compat", MEMCHAT_BASE_URL=fake.url)
    env.update(more)
    return env


@pytest.fixture
def chat(fake: FakeServer) -> Iterator[Any]:
    """``chat(*args, columns=100)``: ``memchat chat ARGS`` in a terminal, closed after the test."""
    opened: list[Terminal] = []

    def start(*args: str, columns: int = 100, env: dict[str, str] | None = None) -> Terminal:
        term = Terminal([*CHAT, *args], env=env or environment(fake), columns=columns)
        opened.append(term)
        term.expect(r"You:")
        return term

    yield start
    for term in opened:
        term.close()


def sessions() -> list[Any]:
    store = open_store(default_db_path())
    try:
        return store.list_sessions()
    finally:
        store.close()


def test_chat_starts_at_the_prompt_and_the_first_line_is_answered(chat: Any, fake: FakeServer) -> None:
    """Finding 5: the first thing was a persona question; a newcomer's question got "persona set"."""
    term = chat()
    assert "Persona" not in term.text and "persona" not in term.text.lower()
    term.line("When does the museum open?")
    term.expect(r"echo: When does the museum open\?")
    term.line("q")
    assert term.wait() == 0
    [info] = sessions()
    assert info.persona == "" and info.message_count == 2
    assert info.label == "When does the museum open?"  # its title, from the first exchange
    assert fake.chat_requests[0].messages == [{"role": "user", "content": "When does the museum open?"}]


def test_a_slash_command_after_new_is_a_command_never_the_persona(chat: Any, fake: FakeServer) -> None:
    term = chat("-s", "first")
    term.line("hello")
    term.expect("echo: hello")
    term.line("/new")
    term.expect("new chat: it is stored with its first message")
    at = term.mark()
    term.line("/history")
    term.expect("no messages yet", after=at)
    term.line("/system You are terse.")
    term.expect("persona updated", after=at)
    term.line("again")
    term.expect("echo: again", after=at)
    term.line("q")
    assert term.wait() == 0
    personas = sorted(s.persona for s in sessions())
    assert personas == ["", "You are terse."]  # /history was never taken as a persona
    assert fake.chat_requests[-1].messages[0] == {"role": "system", "content": "You are terse."}


def test_leaving_a_new_chat_without_a_message_stores_nothing(chat: Any, fake: FakeServer) -> None:
    """Finding 6: each `memchat chat` left without a message left an empty session behind."""
    term = chat()
    term.line("/system Be brief")
    term.expect("persona updated")
    term.line("/new named")
    shown = term.expect("new session named")
    term.expect("You:", after=shown.end())  # the prompt is back: Ctrl-D goes to it
    term.ctrl("d")
    assert term.wait() == 0
    assert sessions() == []
    assert fake.chat_requests == []


def test_ctrl_c_while_a_reply_streams_keeps_it_once_with_no_echo_inside(chat: Any, fake: FakeServer) -> None:
    """Finding 10: "Assistant:" was printed twice after Ctrl-C — the terminal echoed ^C under the
    live reply, whose last redraw then left its first line behind."""
    fake.script(FakeReply.text("Once ", "upon ", "a ", "time ", "there ", "was ", "a ", "dragon.", delay=0.5))
    term = chat("-s", "story")
    at = term.mark()
    term.line("tell me a story")
    term.expect(r"Once upon", after=at)
    term.ctrl("c")
    term.expect(r"stopped: the partial reply was kept", after=at)
    term.expect(r"You:", after=term.mark() - 10)
    shown = term.output[term.output.index("tell me a story") :]
    assert "^C" not in shown
    term.line("q")
    assert term.wait() == 0
    store = open_store(default_db_path())
    try:
        reply = store.messages("story")[-1]
    finally:
        store.close()
    assert reply.status is Status.INTERRUPTED and reply.content.startswith("Once upon")


def test_history_wraps_at_words(chat: Any) -> None:
    """Finding 10: /history broke lines in the middle of words."""
    words = " ".join(f"word{n}-{'x' * (n % 7)}" for n in range(40))
    store = open_store(default_db_path())
    store.create_session("notes")
    store.append_messages("notes", [Message(Role.USER, words), Message(Role.ASSISTANT, "ok")])
    store.close()
    term = chat("-s", "notes", columns=60)
    at = term.mark()
    term.line("/history")
    term.expect(r"2 assistant: ok", after=at)
    shown = term.text[term.text.index("history of notes", at) :]
    block = shown[: shown.index("2 assistant")].splitlines()[1:]
    assert len(block) > 3
    assert all(len(line.rstrip()) <= 60 for line in block), block
    printed = " ".join(" ".join(block).split()).removeprefix("1 user: ")
    assert printed == words  # every line ends at a space: no word is cut


def test_model_on_the_embedded_provider_is_refused_with_what_it_has(chat: Any) -> None:
    """Finding 10: `/model gpt-4o` on the embedded provider was accepted and the budget jumped."""
    term = chat(env=environment(MEMCHAT_PROVIDER="local"))
    at = term.mark()
    term.line("/memory")
    before = term.expect(r"context window ([\d,]+) tokens, ([\d,]+) for messages", after=at).groups()
    assert before[0] == "8,192"
    at = term.mark()
    term.line("/model gpt-4o")
    line = term.expect(r"error: the local provider has only ([^,;]+), not 'gpt-4o'", after=at)
    assert "SmolLM2" in line.group(1)
    term.line("/memory")
    after = term.expect(r"context window ([\d,]+) tokens, ([\d,]+) for messages", after=at).groups()
    assert after == before  # the budget did not move (it jumped to 123,879 tokens)
    term.line("/model")
    term.expect(r"model: SmolLM2", after=at)
    term.line("q")
    assert term.wait() == 0


def test_search_finds_the_words_of_messages_and_sessions_show_titles(chat: Any) -> None:
    """Finding 6: search found only names ("haiku" and "长城", both in messages, found nothing)."""
    store = open_store(default_db_path())
    for name, question, answer in [
        ("chat-20250101-100000", "Write a haiku about the sea", "Waves fold into foam"),
        ("chat-20250101-110000", "长城有多长？", "长城全长两万多公里。"),
    ]:
        store.create_session(name, settings={"title": question[:12]})
        store.append_messages(name, [Message(Role.USER, question), Message(Role.ASSISTANT, answer)])
    store.close()
    term = chat()
    at = term.mark()
    term.line("/search haiku")
    term.expect(r"Write a haik  \(chat-20250101-100000\)", after=at)  # its title, then its name
    term.expect(r"you: Write a haiku about the sea", after=at)
    at = term.mark()
    term.line("/search 长城")
    term.expect(r"\(chat-20250101-110000\)", after=at)
    term.expect(r"assistant: 长城全长两万多公里", after=at)
    at = term.mark()
    term.line("/sessions")
    term.expect(r"chat-20250101-110000\s+长城有多长？", after=at)
    term.line("q")
    assert term.wait() == 0
