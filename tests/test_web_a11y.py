"""The page and axe-core (issue 17): no serious or critical violation of WCAG 2.x A/AA (and axe's
best practices) in the light, dark, Chinese and phone views — a chat with Markdown, code, a link,
a stopped and an interrupted reply, a used-memories mark, its branches, persona and context
panels open — nor on the welcome, the phone's drawer and its tools. axe-core comes with
``axe-playwright-python`` (no CDN); Debian's chromium, as in tests/test_web.py."""

from __future__ import annotations

import os
from typing import Any

import pytest

from conftest import CHROMIUM, WebSite
from memchat.domain import Message, Role, Status

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install chromium; CI installs it)",
)
sync_api = pytest.importorskip("playwright.sync_api")
axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright")
expect = sync_api.expect

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def seed(web: WebSite, chinese: bool) -> None:
    """A chat with a bit of everything the page shows, and a fork of it (the branch bar)."""
    store = web.agent.store
    name = "周末计划" if chinese else "weekend plans"
    store.create_session(name)
    store.append_messages(
        name,
        [
            Message(Role.USER, "周末去杭州，有什么建议？" if chinese else "Any ideas for a weekend in Lisbon?"),
            Message(
                Role.ASSISTANT,
                "**西湖**边散步，然后去`灵隐寺`。\n\n1. 早上：西湖\n2. 下午：龙井村\n\n见 https://example.com/hz"
                if chinese
                else "Walk around **Alfama**, then take tram `28`.\n\n1. Morning: Belém\n2. Evening: fado\n\n"
                "```\npastel de nata x2\n```\n\nSee [the guide](https://example.com/lisbon).",
            ),
            Message(Role.USER, "再长一点" if chinese else "Tell me more"),
            Message(Role.ASSISTANT, "好的，第一天" if chinese else "Sure. On the first day", status=Status.STOPPED),
            Message(Role.USER, "然后呢？" if chinese else "And then?"),
            Message(Role.ASSISTANT, "第二天" if chinese else "On the second", status=Status.INTERRUPTED),
        ],
    )
    info = store.find_session(name)
    assert info is not None
    store.fork_session(info.id, name + " (fork)")


def violations(page: Any) -> list[str]:
    """axe's serious and critical violations on the page as it is, one line each."""
    results = axe_playwright.Axe().run(page)
    found = []
    for v in results.response["violations"]:
        if v["impact"] in ("serious", "critical"):
            targets = [" ".join(map(str, n["target"])) for n in v["nodes"]][:4]
            found.append(f"{v['id']} ({v['impact']}): {v['help']} — {targets}")
    return found


def open_chat(browser: Any, web: WebSite, options: dict[str, Any], name: str) -> tuple[Any, Any]:
    context = browser.new_context(**options)
    page = context.new_page()
    page.goto(web.url + "/")
    page.locator("#sessions").get_by_role("button", name=name, exact=True).click()
    expect(page.locator("#title")).to_have_text(name)
    expect(page.locator(".msg .mark")).to_have_count(2)
    return context, page


@pytest.mark.parametrize(
    "view, options",
    [
        ("light", {**DESKTOP, "color_scheme": "light", "locale": "en-US"}),
        ("dark", {**DESKTOP, "color_scheme": "dark", "locale": "en-US"}),
        ("chinese", {**DESKTOP, "color_scheme": "light", "locale": "zh-CN"}),
        ("phone", {**PHONE, "color_scheme": "light", "locale": "en-US"}),
        ("phone-dark", {**PHONE, "color_scheme": "dark", "locale": "en-US"}),
    ],
)
def test_no_serious_or_critical_axe_violations(browser: Any, web: WebSite, view: str, options: dict[str, Any]) -> None:
    chinese = view == "chinese"
    seed(web, chinese)
    name = "周末计划" if chinese else "weekend plans"
    if view.startswith("phone"):
        context = browser.new_context(**options)
        page = context.new_page()
        page.goto(web.url + "/")
        page.click("#menu")
        expect(page.locator("#sessions").get_by_role("button", name=name, exact=True)).to_be_visible()
        assert violations(page) == [], "the drawer"
        page.locator("#sessions").get_by_role("button", name=name, exact=True).click()
        expect(page.locator("#title")).to_have_text(name)
        expect(page.locator(".msg .mark")).to_have_count(2)
        assert violations(page) == [], "the chat"
        page.click("#more")
    else:
        context, page = open_chat(browser, web, options, name)
    page.click("#persona-panel summary")
    page.click("#context-panel summary")
    expect(page.locator("#gauge-text")).not_to_be_empty()
    expect(page.locator("#branches button")).to_have_count(2)
    assert violations(page) == [], "the chat with its tools and panels"
    context.close()


def test_the_welcome_and_an_empty_search_have_no_violations(browser: Any, web: WebSite) -> None:
    for options in ({**DESKTOP, "color_scheme": "light"}, {**DESKTOP, "color_scheme": "dark"}, PHONE):
        context = browser.new_context(**options)
        page = context.new_page()
        page.goto(web.url + "/")
        expect(page.locator("#welcome")).to_be_visible()
        assert violations(page) == [], options
        if options is PHONE:
            page.click("#menu")
        page.fill("#search", "nothing like this")
        expect(page.locator("#sessions li.empty")).to_be_visible()
        assert violations(page) == [], options
        context.close()
