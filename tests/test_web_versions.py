"""Reply versions on the page (issue 17), in Debian's chromium driven by Playwright against
``memchat serve``'s app and the loopback model server: Regenerate keeps every reply (‹ 2/3 ›)
and the next turn continues from the one shown; Edit is a multi-line inline editor that makes a
version in the same session (no browser ``prompt()``, no new sidebar entry); a turn stopped
before its first word keeps the question, with Retry under it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM
from fakeserver import FakeReply, FakeServer
from memchat.agent import Agent
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
#: MEMCHAT_SCREENSHOTS=docs/screenshots keeps the screenshots of the versions UI there
SHOTS = Path(os.environ.get("MEMCHAT_SCREENSHOTS") or "/tmp")


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
    context = browser.new_context(viewport={"width": 1100, "height": 720}, locale="en-US")
    page = context.new_page()
    problems: list[str] = []

    def dialog(d: Any) -> None:  # the page asks nothing through the browser's own dialogs
        problems.append(f"dialog: {d.message}")
        d.dismiss()

    page.on("dialog", dialog)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    page.goto(url + "/")
    yield page
    context.close()


def send(page: Any, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def settled(page: Any) -> None:
    expect(page.locator("#stop")).to_be_disabled(timeout=5000)


def test_regenerate_keeps_every_reply_and_the_arrows_switch_between_them(
    page: Any, site: tuple[str, FakeServer, Agent]
) -> None:
    _, fake, agent = site
    fake.script(*(FakeReply.text(t) for t in ("Roses are red.", "Violets are blue.", "Skies are grey.")))
    send(page, "A line of a poem?")
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".body")).to_have_text("Roses are red.", timeout=5000)
    for text in ("Violets are blue.", "Skies are grey."):
        settled(page)
        page.click("#regenerate")
        expect(reply.locator(".body")).to_have_text(text, timeout=5000)
    expect(reply.locator(".versions .count")).to_have_text("3/3", timeout=5000)
    expect(reply.locator(".versions button[data-step=next_version]")).to_be_disabled()
    page.screenshot(path=str(SHOTS / "versions.png"))
    reply.locator(".versions button[data-step=previous_version]").click()
    expect(reply.locator(".versions .count")).to_have_text("2/3")
    expect(reply.locator(".body")).to_have_text("Violets are blue.")
    page.keyboard.press("Enter")  # the keyboard's focus stays on the arrow: ‹ again
    expect(reply.locator(".versions .count")).to_have_text("1/3")
    expect(reply.locator(".body")).to_have_text("Roses are red.")
    # the next turn continues from the version shown
    fake.script(FakeReply.text("Thanks."))
    send(page, "Another?")
    expect(page.locator(".msg.assistant .body").last).to_have_text("Thanks.", timeout=5000)
    sent = [(m["role"], m["content"]) for m in fake.chat_requests[-1].messages if m["role"] != "system"]
    assert sent == [("user", "A line of a poem?"), ("assistant", "Roses are red."), ("user", "Another?")]
    assert page.locator(".msg.assistant").first.locator(".versions .count").inner_text() == "1/3"
    assert page.problems == []


def test_edit_is_an_inline_editor_and_a_version_in_the_same_session(
    page: Any, site: tuple[str, FakeServer, Agent]
) -> None:
    _, fake, agent = site
    fake.script(FakeReply.text("Rome is lovely."))
    send(page, "Let's go to Rome.")
    expect(page.locator(".msg.assistant .body").last).to_have_text("Rome is lovely.", timeout=5000)
    settled(page)
    question = page.locator(".msg.user").first
    question.locator("button.edit").click()
    editor = question.locator(".editor textarea")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("Let's go to Rome.")
    page.keyboard.press("Escape")  # cancels: nothing sent, the message as it was
    expect(question.locator(".editor")).to_have_count(0)
    expect(question.locator(".body")).to_have_text("Let's go to Rome.")
    question.locator("button.edit").click()
    editor.fill("Let's go to Venice.")
    editor.press("Shift+Enter")  # a new line, as in the composer
    editor.type("For a week.")
    assert editor.input_value() == "Let's go to Venice.\nFor a week." and len(fake.chat_requests) == 1
    page.screenshot(path=str(SHOTS / "edit.png"))
    fake.script(FakeReply.text("Venice it is."))
    editor.press("Enter")  # saves
    expect(page.locator(".msg.assistant .body").last).to_have_text("Venice it is.", timeout=5000)
    settled(page)
    assert fake.chat_requests[-1].messages[-1]["content"] == "Let's go to Venice.\nFor a week."
    expect(page.locator("#sessions li")).to_have_count(1)  # no "… · edit 1" in the sidebar
    expect(page.locator("#branches button")).to_have_count(0)
    edited = page.locator(".msg.user").first
    expect(edited.locator(".versions .count")).to_have_text("2/2")
    edited.locator(".versions button[data-step=previous_version]").click()
    expect(page.locator(".msg.user .body").first).to_have_text("Let's go to Rome.")
    expect(page.locator(".msg.assistant .body").last).to_have_text("Rome is lovely.")
    assert [s.name for s in agent.store.list_sessions()] == [agent.store.list_sessions()[0].name]
    assert page.problems == []


def test_a_turn_stopped_before_its_first_word_keeps_the_question_with_retry(
    page: Any, site: tuple[str, FakeServer, Agent]
) -> None:
    _, fake, agent = site
    fake.script(FakeReply.silent(30), FakeReply.text("It is 42."))
    send(page, "What is the answer?")
    expect(page.locator("#stop")).to_be_enabled(timeout=5000)
    while not fake.chat_requests:  # the model was asked, and says nothing yet
        page.wait_for_timeout(20)
    page.click("#stop")
    expect(page.locator(".msg.noreply button")).to_have_text("Retry", timeout=5000)
    expect(page.locator(".msg.user .body")).to_have_text("What is the answer?")
    expect(page.locator("#status")).to_contain_text("your message is kept")
    page.screenshot(path=str(SHOTS / "stopped.png"))
    (session,) = agent.store.list_sessions()
    assert [m.content for m in agent.store.messages(session.id)] == ["What is the answer?"]
    page.reload()  # stored: still there, with Retry
    expect(page.locator(".msg.noreply button")).to_have_text("Retry", timeout=5000)
    page.click(".msg.noreply button")
    expect(page.locator(".msg.assistant .body").last).to_have_text("It is 42.", timeout=5000)
    expect(page.locator(".msg.noreply")).to_have_count(0)
    assert [m.content for m in agent.store.messages(session.id)] == ["What is the answer?", "It is 42."]
    assert page.problems == []


def test_stopping_a_regeneration_keeps_the_whole_answer_as_a_version(
    page: Any, site: tuple[str, FakeServer, Agent]
) -> None:
    # issue 17: a stopped regeneration left a fragment where a whole answer was
    _, fake, _ = site
    fake.script(FakeReply.text("The whole answer."), FakeReply.text(*[f"part{k} " for k in range(80)], delay=0.05))
    send(page, "Explain.")
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".body")).to_have_text("The whole answer.", timeout=5000)
    settled(page)
    page.click("#regenerate")
    expect(reply.locator(".body")).to_contain_text("part3", timeout=5000)
    page.click("#stop")
    expect(reply.locator(".mark")).to_have_text("[stopped]", timeout=5000)
    expect(reply.locator(".versions .count")).to_have_text("2/2")
    reply.locator(".versions button[data-step=previous_version]").click()
    expect(reply.locator(".body")).to_have_text("The whole answer.")
    expect(reply.locator(".mark")).to_have_count(0)
    assert page.problems == []
