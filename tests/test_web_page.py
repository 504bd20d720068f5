"""The page as people who live in a chat app use it (issue 17: findings 1, 7, 8, 9 and the page's
half of 10), in Debian's chromium against ``memchat serve``'s app and the loopback model server:
a streaming reply does not drag a reader who scrolled up; a welcome, "no chats match" and a
server-down banner that retries and says when the server is back (never "Failed to fetch", no
unhandled rejections); a server stopped mid-reply is said; the server's words in Chinese on a
Chinese page; an import whose name is taken asks for another right there; rename in place; a
phone's drawer, compact header and 44 px targets; every control reached with Tab and worked with
Enter or Space; aria-live only on status regions; nothing stale after Delete and no action
offered where it cannot apply; the theme button names the theme."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM, WebSite
from fakeserver import FakeReply
from memchat.domain import Message, Role

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install chromium; CI installs it)",
)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
#: what a browser logs by itself when a request finds the server gone (not the page's doing)
REFUSED = "net::ERR_CONNECTION_REFUSED"


def chat(web: WebSite, name: str, turns: int = 1, words: int = 8) -> int:
    """A stored chat of ``turns`` exchanges; its id."""
    info = web.agent.store.create_session(name)
    messages = []
    for k in range(turns):
        messages.append(Message(Role.USER, f"question {k} of {name}"))
        messages.append(Message(Role.ASSISTANT, " ".join(f"answer{k}-{w}" for w in range(words))))
    web.agent.store.append_messages(info.id, messages)
    return info.id


def send(page: Any, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def session_button(page: Any, name: str) -> Any:
    return page.locator("#sessions").get_by_role("button", name=name, exact=True)


def settled(page: Any) -> None:
    """The reply has ended and the chat was read back from the server (every message of yours
    stored, so it has its Edit button)."""
    expect(page.locator("#stop")).to_be_disabled()
    expect(page.locator("#messages .msg.user:not(:has(button))")).to_have_count(0)


def until(page: Any, condition: str, seconds: float = 10) -> None:
    """Wait for a JavaScript condition (``wait_for_function`` evaluates a string inside the page,
    which its CSP forbids)."""
    import time

    deadline = time.monotonic() + seconds
    while not page.evaluate(condition):
        assert time.monotonic() < deadline, f"never true: {condition}"
        page.wait_for_timeout(50)


def at_bottom(page: Any) -> bool:
    return bool(
        page.evaluate("(b => b.scrollHeight - b.scrollTop - b.clientHeight <= 2)(document.querySelector('#messages'))")
    )


def problems(page: Any) -> list[str]:
    """What the page fixture recorded, but for the browser's own log of a request that failed
    (a refused connection, a 409 the page answers in its own words)."""
    return [p for p in page.problems if REFUSED not in p and not p.startswith("Failed to load resource: the server")]


# -- finding 1: following the stream -----------------------------------------------------------------


def test_a_reader_who_scrolled_up_is_left_there_while_the_reply_streams(page: Any, web: WebSite) -> None:
    chat(web, "history", turns=20, words=40)
    page.reload()
    expect(page.locator(".msg.assistant")).to_have_count(20)
    assert at_bottom(page)
    web.fake.script(FakeReply.text(*[f"word{k} " for k in range(60)], delay=0.04))
    send(page, "tell me more")
    last = page.locator(".msg.assistant .body").last
    expect(last).to_contain_text("word3")
    page.hover("#messages")
    page.mouse.wheel(0, -4000)  # scroll up to re-read
    where = -1.0
    while where != (where := page.evaluate("document.querySelector('#messages').scrollTop")):
        page.wait_for_timeout(100)  # until the wheel's smooth scroll has come to rest
    assert not at_bottom(page)
    expect(last).to_contain_text("word59")
    settled(page)
    # neither the chunks nor the reply's end dragged the reader down
    assert abs(page.evaluate("document.querySelector('#messages').scrollTop") - where) <= 2
    expect(page.locator("#jump")).to_be_visible()
    page.click("#jump")
    assert at_bottom(page)
    expect(page.locator("#jump")).to_be_hidden()
    # at the bottom, the next reply is followed to its last word
    web.fake.script(FakeReply.text(*[f"more{k} " for k in range(40)], delay=0.02))
    send(page, "and more")
    expect(page.locator(".msg.assistant .body").last).to_contain_text("more39")
    settled(page)
    assert at_bottom(page)
    assert problems(page) == []


# -- finding 9: welcome, no results, nothing stale, disabled actions, theme --------------------------


def test_with_no_chat_open_a_welcome_and_no_action_that_needs_a_chat(page: Any, web: WebSite) -> None:
    expect(page.locator("#welcome")).to_be_visible()
    expect(page.locator("#welcome h2")).to_have_text("What shall we talk about?")
    expect(page.locator("#sessions")).to_have_text("No chats yet.")
    for control in ("#rename", "#fork", "#delete", "#regenerate", "#stop"):
        expect(page.locator(control)).to_be_disabled()
    assert page.get_attribute("#export", "href") is None  # not a link to the page itself
    assert page.get_attribute("#export", "aria-disabled") == "true"
    # a search that finds nothing says so
    chat(web, "groceries")
    page.reload()
    expect(session_button(page, "groceries")).to_be_visible()
    page.fill("#search", "haiku")
    expect(page.locator("#sessions")).to_have_text("No chats match “haiku”.")
    page.fill("#search", "groc")
    expect(session_button(page, "groceries")).to_be_visible()
    assert problems(page) == []


def test_a_message_sent_while_the_page_is_still_loading_keeps_its_reply(browser: Any, web: WebSite) -> None:
    """The welcome shows before the page has read the chats; a reader who types then was left
    with "Replying…" over an empty page: the end of the load closed the new chat and its stream
    (a CI run hit it through a slow proxy)."""
    chat(web, "older")
    context = browser.new_context()
    page = context.new_page()
    held: list[tuple[Any, Any]] = []  # the chat lists asked for, answered as they were then, later

    def hold(route: Any) -> None:
        if route.request.method == "GET":
            held.append((route, route.fetch()))
        else:
            route.continue_()

    try:
        page.route("**/api/sessions", hold)
        page.goto(web.url + "/")
        expect(page.locator("#welcome")).to_be_visible()
        web.fake.script(FakeReply.text("an ", "answer ", "arrives ", "slowly", delay=0.4))
        send(page, "typed at once")
        expect(page.locator(".msg.assistant .body").last).to_contain_text("an")
        assert held, "the page's first read of the chats was not held"
        for route, response in held:  # the first says "no chats": it was read before this one began
            route.fulfill(response=response)
        page.unroute("**/api/sessions")
        expect(page.locator(".msg.assistant .body").last).to_have_text("an answer arrives slowly")
        expect(page.locator(".msg.user .body").first).to_have_text("typed at once")
        expect(page.locator("#welcome")).to_be_hidden()
        expect(session_button(page, "older")).to_be_visible()
    finally:
        context.close()


def test_after_delete_nothing_of_the_deleted_chat_is_left(page: Any, web: WebSite) -> None:
    sid = chat(web, "trip", turns=2)
    web.agent.store.fork_session(sid, "trip, take two")
    page.reload()
    session_button(page, "trip").click()
    expect(page.locator("#title")).to_have_text("trip")
    expect(page.locator("#branches button")).to_have_count(2)
    page.click("#context-panel summary")
    expect(page.locator("#gauge-text")).to_contain_text("tokens")
    assert page.get_attribute("#export", "href") == f"/api/sessions/{sid}/export"
    page.remove_listener("dialog", page.unexpected_dialog)
    page.once("dialog", lambda d: d.accept())
    page.click("#delete")
    expect(page.locator("#title")).to_have_text("memchat")
    expect(page.locator("#welcome")).to_be_visible()
    assert page.locator("#branches button").count() == 0
    expect(page.locator("#branches")).to_be_hidden()
    expect(page.locator("#context-panel")).to_be_hidden()
    assert page.inner_text("#gauge-text") == ""
    assert page.get_attribute("#export", "href") is None
    for control in ("#rename", "#fork", "#delete", "#regenerate"):
        expect(page.locator(control)).to_be_disabled()
    expect(session_button(page, "trip")).to_have_count(0)
    expect(session_button(page, "trip, take two")).to_be_visible()
    assert problems(page) == []


def test_the_theme_button_says_which_theme_is_on(page: Any, web: WebSite) -> None:
    expect(page.locator("#theme")).to_have_text("Theme: auto")
    page.click("#theme")
    expect(page.locator("#theme")).to_have_text("Theme: light")
    assert page.get_attribute("html", "data-theme") == "light"
    page.click("#theme")
    expect(page.locator("#theme")).to_have_text("Theme: dark")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(23, 24, 27)"
    page.reload()  # kept
    expect(page.locator("#theme")).to_have_text("Theme: dark")
    page.click("#lang")
    expect(page.locator("#theme")).to_have_text("主题：深色")
    page.click("#theme")
    expect(page.locator("#theme")).to_have_text("主题：自动")
    assert page.get_attribute("html", "data-theme") is None


def test_rename_edits_the_title_in_place(page: Any, web: WebSite) -> None:
    chat(web, "trip")
    chat(web, "notes")
    page.reload()
    session_button(page, "trip").click()
    expect(page.locator("#title")).to_have_text("trip")
    page.click("#rename")  # no prompt(): the page fixture fails on any dialog
    field = page.locator("#rename-input")
    expect(field).to_be_focused()
    assert field.input_value() == "trip"
    field.fill("never mind")
    field.press("Escape")  # leaves it as it was
    expect(page.locator("#title")).to_have_text("trip")
    expect(field).to_be_hidden()
    page.click("#rename")
    field.fill("notes")  # taken: said beside the field, which stays
    field.press("Enter")
    expect(page.locator("#rename-error")).to_have_text("a session named 'notes' already exists; choose another name")
    expect(field).to_be_visible()
    field.fill("Lisbon trip")
    field.press("Enter")
    expect(page.locator("#title")).to_have_text("Lisbon trip")
    expect(session_button(page, "Lisbon trip")).to_be_visible()
    assert web.agent.store.find_session("Lisbon trip") is not None
    assert problems(page) == []


# -- finding 10: errors — the server out of reach, stopping mid-reply, Chinese, import ---------------


def test_a_server_out_of_reach_is_a_banner_that_retries_and_says_when_it_is_back(page: Any, web: WebSite) -> None:
    chat(web, "trip")
    chat(web, "notes")
    page.reload()
    session_button(page, "notes").click()
    expect(page.locator("#title")).to_have_text("notes")
    page.click("#context-panel summary")
    expect(page.locator("#gauge-text")).to_contain_text("tokens")
    web.stop()
    page.click("#fork")  # each of these left an unhandled rejection (the page fixture records them)
    banner = page.locator("#offline")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Cannot reach the memchat server. Retrying…")
    page.click("#new-session")
    session_button(page, "trip").click()
    page.click("#context-panel summary")
    page.click("#context-panel summary")
    send(page, "are you there?")
    expect(page.locator("#input")).to_have_value("are you there?")  # the message is given back
    assert "Failed to fetch" not in page.inner_text("body")
    assert "Failed to fetch" not in page.inner_text("#gauge-text")
    web.restart()
    expect(banner).to_contain_text("Connected to the server again.", timeout=20_000)
    # "+ New chat" cleared the page without the server (nothing is stored until a first message)
    session_button(page, "notes").click()  # and the page works again
    expect(page.locator("#title")).to_have_text("notes")
    page.click("#fork")
    expect(page.locator("#title")).to_have_text("notes-fork")
    assert problems(page) == []


def test_importing_memories_goes_through_the_pages_client(page: Any, web: WebSite, tmp_path: Path) -> None:
    """The memories panel's import was the page's one request outside api.js: with the server
    gone it said "Failed to fetch"."""
    memories = tmp_path / "memories.jsonl"
    memories.write_text('{"content": "I live in Lyon"}\n{"content": "I prefer tea"}\n')
    page.click("#memories-open")
    page.set_input_files("#memory-import", str(memories))
    expect(page.locator("#memory-status")).to_have_text("Imported 2 memories.")
    assert sorted(m.content for m in web.agent.memories.list()) == ["I live in Lyon", "I prefer tea"]
    web.stop()
    page.set_input_files("#memory-import", str(memories))
    expect(page.locator("#offline")).to_be_visible()
    expect(page.locator("#memory-status")).to_have_text("the server cannot be reached")
    assert problems(page) == []


def test_a_server_stopped_mid_reply_tells_the_reader(page: Any, web: WebSite) -> None:
    web.fake.script(FakeReply.text(*[f"part{k} " for k in range(400)], delay=0.05))
    send(page, "a very long story")
    last = page.locator(".msg.assistant .body").last
    expect(last).to_contain_text("part3")
    web.stop()  # Ctrl-C on memchat serve
    expect(page.locator("#status")).to_have_text("The server stopped during the reply; what arrived so far is kept.")
    expect(page.locator("#offline")).to_contain_text("Cannot reach the memchat server")
    web.fake.reset()
    web.restart()
    expect(page.locator("#offline")).to_contain_text("Connected to the server again.", timeout=20_000)
    expect(page.locator(".msg.assistant .mark")).to_have_text("[stopped]")
    (session,) = web.agent.store.list_sessions()
    kept = web.agent.store.messages(session.id)[-1]
    assert kept.status.value == "stopped" and kept.content.startswith("part0 part1 part2 part3")
    assert page.inner_text(".msg.assistant .body").strip() == kept.content.strip()
    assert problems(page) == []


def test_a_connection_cut_mid_reply_catches_up_with_the_reply(browser: Any, web: WebSite) -> None:
    """The stream ends with no last word (a proxy or the network drops it): the page says so, and
    once the server can be reached again it shows the whole reply, read again from the server."""
    from faultproxy import FaultProxy

    proxy = FaultProxy("127.0.0.1", web.served.port)
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{proxy.port}/")
        expect(page.locator("#welcome")).to_be_visible()
        words = [f"w{k} " for k in range(60)]
        web.fake.script(FakeReply.text(*words, delay=0.05))
        send(page, "count slowly")
        expect(page.locator(".msg.assistant .body").last).to_contain_text("w3")
        proxy.down()  # the turn goes on at the server
        expect(page.locator("#offline")).to_contain_text("Cannot reach the memchat server")
        proxy.up()
        expect(page.locator("#offline")).to_contain_text("Connected to the server again.", timeout=20_000)
        expect(page.locator(".msg.assistant .body").last).to_contain_text("w59", timeout=10_000)
        settled(page)
        assert page.inner_text(".msg.assistant .body").strip() == "".join(words).strip()
        assert page.locator(".msg.user").count() == 1 and page.locator(".msg.assistant").count() == 1
        assert "Failed to fetch" not in page.inner_text("body")
    finally:
        context.close()
        proxy.close()


def test_a_chinese_page_gets_the_servers_words_in_chinese(browser: Any, web: WebSite) -> None:
    chat(web, "旅行")
    chat(web, "trip")
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(web.url + "/")
    session_button(page, "旅行").click()
    expect(page.locator("#title")).to_have_text("旅行")
    page.click("#rename")
    page.fill("#rename-input", "trip")
    page.press("#rename-input", "Enter")
    expect(page.locator("#rename-error")).to_have_text("已有名为“trip”的会话；请换一个名字")
    page.click("#lang")  # the page's own choice of language, not only the browser's, reaches the server
    page.press("#rename-input", "Enter")
    expect(page.locator("#rename-error")).to_have_text("a session named 'trip' already exists; choose another name")
    assert dialogs == []
    context.close()


def test_importing_a_chat_whose_name_is_taken_offers_another_name_there(
    page: Any, web: WebSite, tmp_path: Path
) -> None:
    from memchat.serialization import export_jsonl

    chat(web, "trip", turns=2)
    export = tmp_path / "trip.jsonl"
    export.write_text(export_jsonl(web.agent.store, "trip"))
    page.reload()
    page.set_input_files("#import", str(export))
    form = page.locator("#import-rename")
    expect(form).to_be_visible()
    expect(page.locator("#import-conflict")).to_have_text("A chat named “trip” already exists. Import this one as:")
    expect(page.locator("#import-name")).to_be_focused()
    assert page.input_value("#import-name") == "trip (2)"
    page.press("#import-name", "Enter")
    expect(page.locator("#title")).to_have_text("trip (2)")
    expect(form).to_be_hidden()
    expect(page.locator(".msg.user .body").first).to_have_text("question 0 of trip")
    imported = web.agent.store.find_session("trip (2)")
    assert imported is not None and len(web.agent.store.messages(imported.id)) == 4
    # taken again: the field says so and offers the next free name
    page.set_input_files("#import", str(export))
    expect(form).to_be_visible()
    assert page.input_value("#import-name") == "trip (3)"
    page.fill("#import-name", "trip (2)")
    page.press("#import-name", "Enter")
    expect(page.locator("#import-conflict")).to_have_text("A chat named “trip (2)” already exists. Import this one as:")
    page.click("#import-cancel")
    expect(form).to_be_hidden()
    assert problems(page) == []


# -- finding 7: the phone ---------------------------------------------------------------------------

#: what a finger taps, as the page has it
TAPPABLE = "button, a[href], select, input, textarea, summary, label:has(> input[type=file], > input[type=checkbox])"


def too_small(page: Any) -> list[str]:
    """The visible tap targets under 44×44 px (a checkbox or file input counts by its label)."""
    return list(
        page.evaluate(
            """sel => [...document.querySelectorAll(sel)].filter(e => {
                   if (e.matches('input[type=file], input[type=checkbox]')) return false;
                   const r = e.getBoundingClientRect(), s = getComputedStyle(e);
                   if (!r.width || !r.height || s.visibility === 'hidden') return false;
                   if (r.right <= 0 || r.bottom <= 0 || r.left >= innerWidth || r.top >= innerHeight) return false;
                   return r.width < 44 || r.height < 44;
               }).map(e => (e.id || e.className || e.tagName) + ' ' + Math.round(e.getBoundingClientRect().width)
                   + 'x' + Math.round(e.getBoundingClientRect().height))""",
            TAPPABLE,
        )
    )


def test_a_phone_has_a_compact_header_a_drawer_that_closes_and_big_targets(browser: Any, web: WebSite) -> None:
    chat(web, "weekend plans", turns=2)
    chat(web, "groceries")
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.goto(web.url + "/")
    expect(page.locator("#sessions [aria-current=true]")).to_have_count(1)  # the newest chat is open
    opened = page.inner_text("#title")
    other = "weekend plans" if opened == "groceries" else "groceries"
    above = page.evaluate(
        "['chat-head', 'branches', 'persona-panel', 'context-panel']"
        ".map(id => document.getElementById(id).getBoundingClientRect().height).reduce((a, b) => a + b)"
    )
    assert above <= 60, above  # was 229 of 844 px
    assert too_small(page) == []
    menu = page.locator("#menu")
    drawer_item = session_button(page, other)
    expect(drawer_item).to_be_hidden()  # a closed drawer is not in the Tab order either
    covered = """(m => {
        const r = m.getBoundingClientRect();
        return !m.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2));
    })(document.querySelector('#menu'))"""
    # ☰ opens it and closes it again; the drawer never covers ☰
    menu.tap()
    expect(drawer_item).to_be_in_viewport()
    assert menu.get_attribute("aria-expanded") == "true"
    assert page.evaluate(covered) is False
    assert too_small(page) == []
    menu.tap()
    expect(drawer_item).to_be_hidden()
    # a tap outside it closes it
    menu.tap()
    expect(drawer_item).to_be_in_viewport()
    page.touchscreen.tap(370, 500)
    expect(drawer_item).to_be_hidden()
    assert menu.get_attribute("aria-expanded") == "false"
    # Esc closes it, and the focus goes back to ☰
    menu.tap()
    expect(drawer_item).to_be_in_viewport()
    expect(session_button(page, opened)).to_be_focused()  # the drawer takes the focus, at the open chat
    page.keyboard.press("Escape")
    expect(drawer_item).to_be_hidden()
    expect(menu).to_be_focused()
    # picking a chat closes it
    menu.tap()
    drawer_item.tap()
    expect(page.locator("#title")).to_have_text(other)
    expect(drawer_item).to_be_hidden()
    # ⋯ shows the chat's tools and panels, big enough to tap
    expect(page.locator("#rename")).to_be_hidden()
    page.locator("#more").tap()
    expect(page.locator("#rename")).to_be_visible()
    expect(page.locator("#persona-panel")).to_be_visible()
    assert too_small(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


# -- finding 8: keyboard and screen readers ----------------------------------------------------------

#: what Tab should reach: every visible control that is not disabled
FOCUSABLE = "button, a[href], select, input, textarea, summary, [tabindex]:not([tabindex='-1'])"
#: a control's name in these tests: its id, the chat it opens, its panel, or its words
NAME = """e => e.id || (e.closest('li[data-id]') ? 'session ' + e.closest('li[data-id]').dataset.id
    : e.tagName === 'SUMMARY' ? e.parentElement.id : e.textContent.trim())"""


def test_every_control_is_reached_with_tab_and_works_with_enter_or_space(page: Any, web: WebSite) -> None:
    ids = {name: chat(web, name) for name in ("trip", "notes", "groceries")}
    page.reload()
    expect(page.locator("#sessions [aria-current=true]")).to_have_count(1)  # the newest chat is open
    expected = set(
        page.evaluate(
            f"""sel => [...document.querySelectorAll(sel)].filter(e => {{
                   const s = getComputedStyle(e), r = e.getBoundingClientRect();
                   const folded = e.closest('details:not([open])') && e.tagName !== 'SUMMARY';
                   return !e.disabled && !folded && !e.closest('dialog:not([open]), [hidden]')
                       && s.visibility !== 'hidden' && (r.width > 0 || e.matches('input[type=file]'));
               }}).map({NAME})""",
            FOCUSABLE,
        )
    )
    assert {f"session {i}" for i in ids.values()} | {"persona-panel", "context-panel", "import"} <= expected
    reached: list[str] = []
    page.locator("body").focus()
    for _ in range(len(expected) + 5):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(f"({NAME})(document.activeElement)"))
    assert expected - set(reached) == set()
    # a chat in the sidebar opens with Enter, another with Space
    session_button(page, "trip").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#title")).to_have_text("trip")
    expect(session_button(page, "trip")).to_have_attribute("aria-current", "true")
    expect(session_button(page, "trip")).to_be_focused()  # the list was made anew; the focus stayed
    session_button(page, "notes").focus()
    page.keyboard.press(" ")
    expect(page.locator("#title")).to_have_text("notes")
    expect(session_button(page, "notes")).to_have_attribute("aria-current", "true")
    assert problems(page) == []


def test_only_status_regions_are_live_and_a_streaming_reply_is_not_re_announced(page: Any, web: WebSite) -> None:
    live = "[aria-live], [role=status], [role=alert], [role=log]"
    assert page.evaluate(f"document.querySelector('#messages').closest({live!r})") is None
    regions = page.eval_on_selector_all(live, "els => els.map(e => e.id)")
    assert set(regions) <= {"status", "offline", "rename-error", "memory-status"}, regions
    # what a screen reader would hear while a reply streams: the status line, not every chunk
    page.evaluate(
        f"""window.__announced = [];
        new MutationObserver(records => {{
            for (const r of records) {{
                const region = (r.target.nodeType === 1 ? r.target : r.target.parentElement).closest({live!r});
                if (region) window.__announced.push(region.id);
            }}
        }}).observe(document.body, {{subtree: true, childList: true, characterData: true}});"""
    )
    web.fake.script(FakeReply.text(*[f"chunk{k} " for k in range(30)], delay=0.02))
    send(page, "count to thirty")
    expect(page.locator(".msg.assistant .body").last).to_contain_text("chunk29")
    settled(page)
    announced = page.evaluate("window.__announced")
    assert set(announced) <= {"status"} and len(announced) <= 4, announced


def test_status_marks_meet_aa_contrast_in_both_themes(browser: Any, web: WebSite) -> None:
    """The "stopped" mark was 3.48:1 on the page's background."""
    from memchat.domain import Status

    web.agent.store.create_session("cut")
    web.agent.store.append_messages(
        "cut", [Message(Role.USER, "go"), Message(Role.ASSISTANT, "an", status=Status.STOPPED)]
    )
    ratio = """(() => {
        const linear = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        const lum = c => {
            const [r, g, b] = c.match(/\\d+/g).slice(0, 3).map(linear);
            return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        };
        const mark = document.querySelector('.msg .mark');
        const [a, b] = [lum(getComputedStyle(mark).color), lum(getComputedStyle(document.body).backgroundColor)];
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    })()"""
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme)
        page = context.new_page()
        page.goto(web.url + "/")
        expect(page.locator(".msg .mark")).to_have_text("[stopped]")
        assert page.evaluate(ratio) >= 4.5, scheme
        context.close()
