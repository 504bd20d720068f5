"""The "What memchat remembers" panel in a real browser (issue 13): Debian's chromium driven by
Playwright against the app under uvicorn and the loopback model server. Add, edit inline,
forget with undo, history, search; a reply that used memories is marked and the mark opens
them; the incognito toggle; memory text shown as text (never HTML); a phone's 390×844.
Screenshots go to /tmp (or ``MEMCHAT_SCREENSHOTS``)."""

from __future__ import annotations

import os
import re
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

SHOTS = Path(os.environ.get("MEMCHAT_SCREENSHOTS") or "/tmp")


@pytest.fixture
def site(fake_server: FakeServer, tmp_path: Path) -> Iterator[tuple[str, FakeServer, Agent]]:
    fake_server.reset()
    provider = OpenAICompatible(fake_server.url, api_key="sk-upstream-secret", model="fake/model-a", max_retries=0)
    agent = Agent(open_store(tmp_path / "web.db"), provider, persona="Be brief.", date_line=False, learning="explicit")
    served = Served(create_app(agent))
    yield served.url, fake_server, agent
    served.close()
    agent.close()
    fake_server.reset()


def open_page(browser: Any, url: str, **options: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(**options)
    page = context.new_page()
    problems: list[str] = []

    def dialog(d: Any) -> None:  # no prompt(), confirm() or alert() in the panel
        problems.append(f"dialog: {d.message}")
        d.dismiss()

    page.on("dialog", dialog)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: None if r.url.startswith(url) else problems.append(f"off-origin: {r.url}"))
    page.goto(url + "/")
    expect(page.locator("#memory option").first).to_be_attached()  # the page has started
    return context, page, problems


@pytest.fixture
def page(browser: Any, site: tuple[str, FakeServer, Agent]) -> Iterator[Any]:
    context, page, problems = open_page(browser, site[0])
    page.problems = problems
    yield page
    context.close()


def items(page: Any) -> Any:
    return page.locator("#memory-list > li.memory")


def item(page: Any, text: str) -> Any:
    return items(page).filter(has_text=text)


def served(agent: Agent) -> list[str]:
    return [m.content for m in agent.memories.list()]


def test_the_panel_adds_edits_forgets_and_restores(page: Any, site: tuple[str, FakeServer, Agent]) -> None:
    _, _, agent = site
    # keyboard: the header button opens the panel, focus goes to its search box
    page.focus("#memories-open")
    page.keyboard.press("Enter")
    panel = page.locator("#memories-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#memories-title")).to_have_text("What memchat remembers")
    assert page.evaluate("document.activeElement.id") == "memory-search"
    expect(page.locator("#memory-list li.empty")).to_contain_text("Nothing remembered yet")

    # add (Enter in the text box submits)
    page.fill("#memory-text", "My home city is Lisbon")
    page.press("#memory-text", "Enter")
    expect(item(page, "My home city is Lisbon")).to_have_count(1)
    expect(item(page, "Lisbon").locator(".kind")).to_have_text("fact")
    expect(item(page, "Lisbon").locator(".mem-meta")).to_contain_text("learned")
    expect(page.locator("#memory-status")).to_contain_text("Remembered")
    assert served(agent) == ["My home city is Lisbon"]
    page.fill("#memory-text", "Always answer in metric units")
    page.click("#memory-add-button")
    expect(item(page, "metric units").locator(".kind")).to_have_text("instruction")
    page.fill("#memory-text", "Dentist appointment")
    page.select_option("#memory-kind", "event")
    page.fill("#memory-date", "2026-12-09")
    page.click("#memory-add-button")
    expect(item(page, "Dentist").locator(".mem-meta")).to_contain_text("on Dec 9, 2026")

    # edit inline: a textarea in the item, no prompt(); Escape cancels, Save keeps a new version
    lisbon = item(page, "Lisbon")
    lisbon.get_by_role("button", name="Edit: My home city is Lisbon").click()
    editor = page.locator("#memory-list textarea.mem-edit")
    expect(editor).to_be_focused()
    editor.press("Escape")
    expect(editor).to_have_count(0)
    expect(panel).to_be_visible()  # Escape in the editor leaves the panel open
    item(page, "Lisbon").get_by_role("button", name="Edit: My home city is Lisbon").click()
    editor.fill("My home city is Porto")
    page.locator("#memory-list .mem-editing button.save").click()
    expect(item(page, "My home city is Porto")).to_have_count(1)
    expect(item(page, "Lisbon")).to_have_count(0)
    assert set(served(agent)) == {"My home city is Porto", "Always answer in metric units", "Dentist appointment"}
    page.screenshot(path=str(SHOTS / "memchat-memories-desktop.png"))

    # the history of the line: both versions, the older one restorable
    item(page, "Porto").get_by_role("button", name="History of: My home city is Porto").click()
    history = item(page, "Porto").locator(".mem-history li")
    expect(history).to_have_count(2)
    expect(history.first).to_contain_text("My home city is Lisbon")
    expect(history.last).to_contain_text("current")

    # search
    page.fill("#memory-search", "Porto")
    expect(items(page)).to_have_count(1)
    page.fill("#memory-search", "zebra")
    expect(page.locator("#memory-list li.empty")).to_have_text("No memory matches.")
    page.fill("#memory-search", "")
    expect(items(page)).to_have_count(3)

    # forget, with undo (focus lands on Undo: one key undoes it)
    item(page, "metric").get_by_role("button", name="Forget: Always answer in metric units").click()
    expect(item(page, "metric")).to_have_count(0)
    expect(page.locator("#memory-status")).to_contain_text("Forgot")
    assert "Always answer in metric units" not in served(agent)
    expect(page.locator("#memory-undo")).to_be_focused()
    page.keyboard.press("Enter")
    expect(item(page, "metric")).to_have_count(1)
    assert "Always answer in metric units" in served(agent)
    # forgotten and replaced ones: shown struck through, with Restore
    item(page, "metric").get_by_role("button", name="Forget: Always answer in metric units").click()
    page.check("#memory-all")
    expect(page.locator("#memory-list > li.memory.ended")).to_have_count(2)  # Lisbon (replaced), metric
    forgotten = page.locator("#memory-list > li.memory.ended").filter(has_text="metric")
    expect(forgotten.locator(".mem-meta")).to_contain_text("forgotten")
    forgotten.get_by_role("button", name="Restore: Always answer in metric units").click()
    expect(page.locator("#memory-list > li.memory.ended")).to_have_count(1)
    assert "Always answer in metric units" in served(agent)
    page.screenshot(path=str(SHOTS / "memchat-memories-history.png"))

    # Escape closes the panel
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert page.problems == []


def test_a_reply_that_used_memories_is_marked_and_opens_them(page: Any, site: tuple[str, FakeServer, Agent]) -> None:
    _, fake, agent = site
    agent.memories.add("My name is Ada")
    page.click("#new-session")
    fake.script(FakeReply.text("You are ", "Ada."))
    page.fill("#input", "What is my name?")
    page.press("#input", "Enter")
    mark = page.locator(".msg.assistant button.used")
    expect(mark).to_have_text("used 1 memory", timeout=5000)
    assert "My name is Ada" in "\n".join(str(m["content"]) for m in fake.chat_requests[-1].messages)
    # it survives a reload, and speaks Chinese
    page.reload()
    expect(mark).to_have_text("used 1 memory")
    page.click("#lang")
    expect(mark).to_have_text("用了 1 条记忆")
    page.click("#lang")
    # it opens the memories it used
    mark.click()
    expect(page.locator("#memories-panel")).to_be_visible()
    expect(page.locator("#memory-filter-text")).to_have_text("Memories used in this reply:")
    expect(items(page)).to_have_count(1)
    expect(items(page).first).to_contain_text("My name is Ada")
    page.click("#memory-filter-clear")
    expect(page.locator("#memory-filter")).to_be_hidden()
    page.click("#memories-close")

    # incognito: no memory in the context, no mark
    page.check("#incognito")
    expect(page.locator("body")).to_have_class(re.compile(r"\bincognito\b"))
    (info,) = [s for s in agent.store.list_sessions() if s.message_count]  # the chat (not an empty one the page made)
    assert agent.is_incognito(agent.store.get_session(info.id))
    fake.script(FakeReply.text("I don't know."))
    page.fill("#input", "And my name?")
    page.press("#input", "Enter")
    expect(page.locator(".msg.assistant .body").last).to_contain_text("I don't know.", timeout=5000)
    expect(page.locator("#stop")).to_be_disabled()
    assert "Ada" not in "\n".join(str(m["content"]) for m in fake.chat_requests[-1].messages if m["role"] == "system")
    expect(mark).to_have_count(1)  # only the first reply's
    page.screenshot(path=str(SHOTS / "memchat-memories-marked.png"))
    assert page.problems == []


def test_memory_text_is_shown_as_text(page: Any, site: tuple[str, FakeServer, Agent]) -> None:
    _, _, agent = site
    nasty = '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=1</script> I like <b>tea</b>'
    agent.memories.add(nasty)
    page.click("#memories-open")
    expect(items(page)).to_have_count(1)
    expect(items(page).first.locator(".mem-text")).to_have_text(nasty)
    assert page.locator("#memory-list img, #memory-list script, #memory-list b").count() == 0
    page.wait_for_timeout(200)
    assert page.evaluate("window.__pwned") is None
    assert page.problems == []


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_the_panel_on_a_phone(browser: Any, site: tuple[str, FakeServer, Agent], lang: str) -> None:
    url, _, agent = site
    chinese = lang == "zh-CN"
    session = agent.store.create_session("周末计划" if chinese else "weekend plans")
    for text in (
        ["我住在杭州", "总是用公制单位回答", "我喜欢喝龙井茶"]
        if chinese
        else ["I live in Lyon", "Always answer in metric units", "I prefer window seats on long flights"]
    ):
        agent.memories.add(text, session_id=session.id)
    context, page, problems = open_page(
        browser, url, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale=lang
    )
    try:
        page.click("#more")  # a phone's compact header keeps the chat's tools behind ⋯ (issue 17)
        page.click("#memories-open")
        panel = page.locator("#memories-panel")
        expect(panel).to_be_visible()
        expect(items(page)).to_have_count(3)
        box = panel.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        source = items(page).first.locator("button.source")
        expect(source).to_have_text("来自“周末计划”" if chinese else "from “weekend plans”")
        if chinese:
            expect(page.locator("#memories-title")).to_have_text("memchat 记得什么")
        for button in page.locator("#memories-panel button:visible").all():  # labelled, big enough to tap
            assert (button.text_content() or "").strip() or button.get_attribute("aria-label")
        page.screenshot(path=str(SHOTS / f"memchat-memories-phone-{lang}.png"))
        # the source opens its session
        source.click()
        expect(panel).to_be_hidden()
        expect(page.locator("#title")).to_have_text(session.name)
        assert problems == []
    finally:
        context.close()
