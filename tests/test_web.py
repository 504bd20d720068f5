"""The web page in a real browser: Debian's chromium driven by Playwright (no browser download),
against ``memchat serve``'s app under uvicorn and the loopback model server. Streaming, stop,
reload mid-reply, IME composition, an XSS corpus, and that every request stays on our origin."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM
from fakeserver import FakeReply, FakeServer
from memchat.agent import Agent

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install chromium; CI installs it)",
)
sync_api = pytest.importorskip("playwright.sync_api")

XSS = (
    'Look: <img src=x onerror="window.__pwned=1"> <script>window.__pwned=1</script> '
    "[click](javascript:window.__pwned=1) [data](data:text/html,<script>window.__pwned=1</script>) "
    '<svg onload="window.__pwned=1"></svg> <a href="javascript:window.__pwned=1">a</a> '
    "and a [real link](https://example.com/page)."
)


def send(page: Any, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def test_a_reply_streams_in_and_is_kept(page: Any, site: tuple[str, FakeServer, Agent]) -> None:
    _, fake, agent = site
    fake.script(FakeReply.text(*[f"word{k} " for k in range(30)], delay=0.1))
    send(page, "tell me a story")
    last = page.locator(".msg.assistant .body").last
    sync_api.expect(last).to_contain_text("word2", timeout=5000)
    assert "word29" not in last.inner_text()  # still streaming: text grows before the end
    sync_api.expect(last).to_contain_text("word29", timeout=10000)
    page.wait_for_function("!document.querySelector('#stop') || document.querySelector('#stop').disabled")
    (session,) = agent.store.list_sessions()
    assert [m.content for m in agent.store.messages(session.id)][0] == "tell me a story"
    assert page.problems == []
    page.screenshot(path=str(Path(SHOTS or "/tmp") / "streamed.png"))


def test_model_output_cannot_run_script(page: Any, site: tuple[str, FakeServer, Agent]) -> None:
    _, fake, _ = site
    fake.script(FakeReply.text(XSS[:60], XSS[60:]))
    send(page, "say something nasty")
    last = page.locator(".msg.assistant .body").last
    sync_api.expect(last).to_contain_text("real link", timeout=5000)
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".msg img, .msg script, .msg svg").count() == 0
    hrefs = page.eval_on_selector_all(".msg a", "els => els.map(e => [e.href, e.rel])")
    assert hrefs == [["https://example.com/page", "noopener noreferrer"]]
    assert "<script>" in last.inner_text()  # shown as text
    assert page.problems == []


def test_enter_during_ime_composition_never_sends(page: Any, site: tuple[str, FakeServer, Agent]) -> None:
    _, fake, _ = site
    page.fill("#input", "你好")
    page.dispatch_event("#input", "keydown", {"key": "Enter", "isComposing": True, "bubbles": True, "cancelable": True})
    page.dispatch_event("#input", "keydown", {"key": "Enter", "keyCode": 229, "bubbles": True, "cancelable": True})
    page.wait_for_timeout(300)
    assert fake.chat_requests == [] and page.input_value("#input") == "你好"
    page.press("#input", "Shift+Enter")
    assert page.input_value("#input") == "你好\n" and fake.chat_requests == []


def test_stop_keeps_the_partial_reply(page: Any, site: tuple[str, FakeServer, Agent]) -> None:
    _, fake, agent = site
    fake.script(FakeReply.text(*[f"part{k} " for k in range(80)], delay=0.05))
    send(page, "a very long answer please")
    sync_api.expect(page.locator(".msg.assistant .body").last).to_contain_text("part3", timeout=5000)
    page.click("#stop")
    sync_api.expect(page.locator(".msg.assistant .mark").last).to_have_text("[stopped]", timeout=5000)
    (session,) = agent.store.list_sessions()
    last = agent.store.messages(session.id)[-1]
    assert last.status.value == "stopped" and last.content.startswith("part0 ")


def test_a_reload_mid_reply_reattaches_without_loss_or_duplicates(
    page: Any, site: tuple[str, FakeServer, Agent]
) -> None:
    _, fake, _ = site
    words = [f"w{k} " for k in range(40)]
    fake.script(FakeReply.text(*words, delay=0.05))
    send(page, "count slowly")
    sync_api.expect(page.locator(".msg.assistant .body").last).to_contain_text("w3", timeout=5000)
    page.reload()
    last = page.locator(".msg.assistant .body").last
    sync_api.expect(last).to_contain_text("w39", timeout=10000)
    page.wait_for_timeout(300)
    assert page.locator(".msg.assistant .body").last.inner_text().strip() == "".join(words).strip()
    assert page.locator(".msg.user").count() == 1 and page.locator(".msg.assistant").count() == 1


def test_import_a_session_and_pick_a_model(page: Any, site: tuple[str, FakeServer, Agent], tmp_path: Path) -> None:
    _, fake, agent = site
    from memchat.serialization import export_jsonl

    agent.store.create_session("old trip")
    from memchat.domain import Message, Role

    agent.store.append_messages("old trip", [Message(Role.USER, "We went to Porto."), Message(Role.ASSISTANT, "Nice!")])
    export = tmp_path / "trip.jsonl"
    export.write_text(export_jsonl(agent.store, "old trip").replace('"name": "old trip"', '"name": "imported trip"'))
    page.set_input_files("#import", str(export))
    sync_api.expect(page.locator("#title")).to_have_text("imported trip", timeout=5000)
    sync_api.expect(page.locator(".msg.user .body").first).to_have_text("We went to Porto.")
    page.select_option("#model", "fake/model-b")
    page.wait_for_timeout(300)
    imported = agent.store.find_session("imported trip")
    assert imported is not None and imported.model == "fake/model-b"
    fake.script(FakeReply.text("ok"))
    send(page, "and then?")
    sync_api.expect(page.locator(".msg.assistant .body").last).to_have_text("ok", timeout=5000)
    assert fake.chat_requests[-1].body["model"] == "fake/model-b"
    assert page.problems == []


#: where the screenshots go: MEMCHAT_SCREENSHOTS=docs/screenshots refreshes the README's
SHOTS = os.environ.get("MEMCHAT_SCREENSHOTS")


@pytest.mark.parametrize(
    "name, options",
    [
        ("light", {"color_scheme": "light", "locale": "en-US", "viewport": {"width": 1280, "height": 800}}),
        ("dark", {"color_scheme": "dark", "locale": "en-US", "viewport": {"width": 1280, "height": 800}}),
        ("chinese", {"color_scheme": "light", "locale": "zh-CN", "viewport": {"width": 1280, "height": 800}}),
        (
            "phone",
            {"color_scheme": "light", "locale": "en-US", "viewport": {"width": 390, "height": 844}, "is_mobile": True},
        ),
        (
            "phone-dark",
            {"color_scheme": "dark", "locale": "en-US", "viewport": {"width": 390, "height": 844}, "is_mobile": True},
        ),
    ],
)
def test_themes_languages_and_a_phone(
    browser: Any, site: tuple[str, FakeServer, Agent], name: str, options: dict[str, Any], tmp_path: Path
) -> None:
    url, fake, agent = site
    from memchat.domain import Message, Role

    agent.store.create_session("周末计划" if name == "chinese" else "weekend plans")
    session = agent.store.list_sessions()[0]
    chinese = name == "chinese"
    agent.store.append_messages(
        session.id,
        [
            Message(Role.USER, "周末去杭州，有什么建议？" if chinese else "Any ideas for a weekend in Lisbon?"),
            Message(
                Role.ASSISTANT,
                "**西湖**边散步，然后去`灵隐寺`。\n\n1. 早上：西湖\n2. 下午：龙井村"
                if chinese
                else "Walk around **Alfama**, then take tram `28`.\n\n1. Morning: Belém\n2. Evening: fado\n\n"
                "```\npastel de nata x2\n```",
            ),
        ],
    )
    context = browser.new_context(**options)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url + "/")
    sync_api.expect(page.locator(".msg.assistant .body").last).to_contain_text("西湖" if chinese else "Alfama")
    if chinese:
        assert page.get_attribute("html", "lang") == "zh-CN"
        sync_api.expect(page.locator("#send")).to_have_text("发送")
        assert page.get_attribute("#input", "placeholder").startswith("输入消息")
        page.click("#lang")  # switchable
        sync_api.expect(page.locator("#send")).to_have_text("Send")
        page.click("#lang")
    else:
        sync_api.expect(page.locator("#send")).to_have_text("Send")
    if name.endswith("dark"):
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(23, 24, 27)"
    if name.startswith("phone"):
        assert not page.locator("#sidebar").is_visible() or page.evaluate(
            "document.querySelector('#sidebar').getBoundingClientRect().right <= 0"
        )
        page.click("#menu")
        page.wait_for_timeout(250)
        assert page.evaluate("document.querySelector('#sidebar').getBoundingClientRect().left >= 0")
        page.click("#sessions li")
        page.wait_for_timeout(250)
        assert page.evaluate("document.querySelector('#sidebar').getBoundingClientRect().right <= 0")
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))
    assert errors == []
    context.close()


def test_image_command_shows_the_picture_inline(page: Any, site: tuple[str, FakeServer, Agent], tmp_path: Path) -> None:
    from imageserver import ImageServer, Task
    from memchat.images.modelscope_async import ModelScopeImages

    _, _, agent = site
    images = ImageServer().start()
    try:
        images.script(Task(polls=0))
        agent.images = ModelScopeImages(images.url, api_key="ms-k", poll_initial=0.01)
        agent.images_dir = tmp_path / "images"
        send(page, "/image a red fox in the snow")
        image = page.locator(".msg.image img")
        sync_api.expect(image).to_have_count(1, timeout=5000)
        assert image.get_attribute("alt") == "a red fox in the snow"
        page.wait_for_function("document.querySelector('.msg.image img').complete", timeout=5000)
        assert page.evaluate("document.querySelector('.msg.image img').naturalWidth") == 8  # the real PNG, loaded
        assert page.problems == []
        agent.images.close()
    finally:
        images.close()
