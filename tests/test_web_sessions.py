"""The page's sessions in a real browser (Debian's chromium through Playwright): "+ New chat"
stores nothing until the first message (issue 17, finding 6), titles in the sidebar, and the
sidebar's search over the words of the messages — snippets, a "no results" line, a click that
opens the session at the message."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM
from fakeserver import FakeReply, FakeServer
from memchat.agent import Agent
from memchat.domain import Message, Role
from memchat.factory import open_store
from memchat.providers.openai_compat import OpenAICompatible
from memchat.server.app import create_app
from serving import Served

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install chromium; CI installs it)",
)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


@pytest.fixture
def site(fake_server: FakeServer, tmp_path: Path) -> Iterator[tuple[str, FakeServer, Agent]]:
    fake_server.reset()
    provider = OpenAICompatible(fake_server.url, api_key="sk-upstream-secret", model="fake/model-a", max_retries=0)
    agent = Agent(open_store(tmp_path / "web.db"), provider, persona="Be brief.", date_line=False)
    served = Served(create_app(agent))
    yield served.url, fake_server, agent
    served.close()
    agent.close()
    fake_server.reset()


@pytest.fixture
def page(browser: Any, site: tuple[str, FakeServer, Agent]) -> Iterator[Any]:
    url = site[0]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    page.posts = []
    page.on("request", lambda r: page.posts.append(r.url[len(url) :]) if r.method == "POST" else None)
    yield page
    context.close()


def send(page: Any, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def test_new_chat_stores_nothing_until_the_first_message(page: Any, site: tuple[str, FakeServer, Agent]) -> None:
    url, fake, agent = site
    page.goto(url + "/")
    page.click("#new-session")
    page.click("#new-session")
    page.click("#persona-panel summary")
    page.fill("#persona", "Answer like a pirate.")
    expect(page.locator("#title")).to_have_text("New chat")
    assert agent.store.list_sessions() == [] and "/api/sessions" not in page.posts
    send(page, "Where is the treasure buried?")
    expect(page.locator(".msg.assistant .body").last).to_have_text("echo: Where is the treasure buried?")
    # the last words show before the reply is stored: the turn has ended once the page has read
    # the chat back (its message then has its Edit button)
    expect(page.locator("#stop")).to_be_disabled()
    expect(page.locator("#messages .msg.user:not(:has(button))")).to_have_count(0)
    [info] = agent.store.list_sessions()
    assert info.persona == "Answer like a pirate." and info.message_count == 2
    assert fake.chat_requests[-1].messages[0] == {"role": "system", "content": "Answer like a pirate."}
    # the sidebar and the header show its title, not the generated name
    expect(page.locator("#sessions li.current button.session")).to_have_text("Where is the treasure buried?")
    expect(page.locator("#title")).to_have_text("Where is the treasure buried?")
    page.click("#new-session")
    expect(page.locator("#sessions li[data-id]")).to_have_count(1)
    assert page.posts.count("/api/sessions/turns") == 1 and "/api/sessions" not in page.posts
    assert page.problems == []


def test_a_failed_first_message_leaves_no_session(page: Any, site: tuple[str, FakeServer, Agent]) -> None:
    url, fake, agent = site
    page.goto(url + "/")
    fake.script(FakeReply.auth_openai())
    send(page, "hello?")
    expect(page.locator("#status")).to_contain_text("API key")
    assert agent.store.list_sessions() == []
    expect(page.locator("#sessions li[data-id]")).to_have_count(0)


def seed(agent: Agent) -> int:
    """Two chats; the sea one long, its haiku far down. The id of the message with the haiku."""
    store = agent.store
    store.create_session("chat-20250101-090000", settings={"title": "Sea poems"})
    filler = [
        Message(Role.USER if k % 2 == 0 else Role.ASSISTANT, f"Line {k} about waves and salt and wind. " * 4)
        for k in range(30)
    ]
    store.append_messages("chat-20250101-090000", filler)
    [question, answer] = store.append_messages(
        "chat-20250101-090000",
        [Message(Role.USER, "Now a haiku, please"), Message(Role.ASSISTANT, "Foam on the dark rocks")],
    )
    store.append_messages("chat-20250101-090000", filler[:10])
    store.create_session("trip")
    store.append_messages("trip", [Message(Role.USER, "长城有多长？"), Message(Role.ASSISTANT, "两万多公里。")])
    assert question.id is not None
    return question.id


def test_the_sidebar_searches_the_words_and_opens_the_session_at_the_message(
    page: Any, site: tuple[str, FakeServer, Agent]
) -> None:
    url, _, agent = site
    target = seed(agent)
    page.goto(url + "/")
    page.fill("#search", "haiku")
    hit = page.locator("#sessions li[data-id]")
    expect(hit).to_have_count(1)
    expect(hit.locator("button.session")).to_have_text("Sea poems")
    snippet = hit.locator(".snippet").first
    expect(snippet).to_have_text("Now a haiku, please")
    expect(snippet.locator("mark")).to_have_text("haiku")
    snippet.click()
    found = page.locator(f'.msg[data-id="{target}"]')
    expect(found).to_be_in_viewport()
    expect(found).to_have_class("msg user found")
    expect(page.locator("#title")).to_have_text("Sea poems")

    page.fill("#search", "长城")
    expect(page.locator("#sessions li button.session")).to_have_text("trip")
    expect(page.locator("#sessions li .snippet mark").first).to_have_text("长城")

    page.fill("#search", "nothing holds this")
    expect(page.locator("#sessions li.empty")).to_have_text("No chats match “nothing holds this”.")
    page.fill("#search", "")
    expect(page.locator("#sessions li[data-id]")).to_have_count(2)
    assert page.problems == []
