"""The XSS campaign (issue 8) in a real browser (Debian's chromium through Playwright): a corpus of
payloads put everywhere the page shows text someone else could choose — the model's replies
(streamed live and loaded from history), the user's messages, session names (the list, the title,
the branch buttons) and personas (the editor and the context panel). Each must be shown as text:
no dialog, no script run, no element injected, no link other than http(s).

The page's CSP would stop an inline script even if one were injected; the test therefore checks
the DOM itself (no injected element, no event-handler attribute), not only that nothing ran."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

import campaign
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

P = "window.__pwned=1"
#: each payload, if it ever ran or became markup, would set window.__pwned, open a dialog, or
#: leave an element or attribute the DOM check below finds
CORPUS = [
    f"<script>{P}</script>",
    "<script>alert(1)</script>",
    f'<img src=x onerror="{P}">',
    "<img src=x onerror=alert(1)>",
    f'<svg onload="{P}"></svg>',
    f"<svg><script>{P}</script></svg>",
    f'<iframe src="javascript:{P}"></iframe>',
    f'<iframe srcdoc="<script>parent.{P}</script>"></iframe>',
    f"<body onload={P}>",
    f'<a href="javascript:{P}">a</a>',
    f"[click](javascript:{P})",
    f"[click](JaVaScRiPt:{P})",
    "[click](javascript&#58;alert(1))",
    f"[click](data:text/html,<script>{P}</script>)",
    "[x](vbscript:msgbox(1))",
    f"![img](javascript:{P})",
    f'![x](https://example.com/x.png" onerror="{P})',
    f'[x](https://example.com/"onmouseover="{P})',
    f"[a](https://example.com/)<img src=x onerror={P}>",
    f"**<img src=x onerror={P}>**",
    f"*<svg onload={P}>*",
    f"`<script>{P}</script>`",
    f"```html\n<script>{P}</script>\n```",
    f"# <img src=x onerror={P}>",
    f"- <img src=x onerror={P}>\n- two",
    f"> <svg onload={P}>",
    f"&lt;script&gt;{P}&lt;/script&gt;",
    f"&#60;img src=x onerror={P}&#62;",
    f"\\u003cscript\\u003e{P}\\u003c/script\\u003e",
    f"\uff1cscript\uff1e{P}\uff1c/script\uff1e",  # fullwidth brackets
    f"<scr<script>ipt>{P}</script>",
    f"</script><script>{P}</script>",
    f'"><img src=x onerror={P}>',
    f"'><svg onload={P}>",
    f'" onmouseover="{P}" x="',
    f"' autofocus onfocus='{P}",
    f"</textarea><img src=x onerror={P}>",
    f"</title><script>{P}</script>",
    f"</pre><img src=x onerror={P}>",
    f"<style>*{{background:url('javascript:{P}')}}</style>",
    f'<math><mi xlink:href="javascript:{P}">x</mi></math>',
    f"<details open ontoggle={P}>",
    f"<input autofocus onfocus={P}>",
    f'<video><source onerror="{P}"></video>',
    f'<object data="javascript:{P}"></object>',
    f'<embed src="javascript:{P}">',
    f'<meta http-equiv="refresh" content="0;url=javascript:{P}">',
    '<base href="https://evil.example/">',
    f'<form action="javascript:{P}"><button>go</button></form>',
    f"[x](java\u200bscript:{P})",  # zero-width space
    f"[x](\u202ejavascript:{P})",  # right-to-left override
    f"[x](java\tscript:{P})",
    f"https://example.com/<script>{P}</script>",
    f"[x](https://example.com/a)(javascript:{P})",
    "{{constructor.constructor('alert(1)')()}}",
    "${alert(1)}",
    f'<!--<img src="--><img src=x onerror={P}//">',
    f'<noscript><p title="</noscript><img src=x onerror={P}>">',
    f"<template><img src=x onerror={P}></template>",
    f"\u0000<script>{P}</script>",
]
#: what the DOM must not contain anywhere the corpus is shown
INJECTED = (
    "script, img, svg, iframe, object, embed, video, source, math, style, meta, base, form, input, "
    "details, template, noscript, body, link"
)
HANDLERS = "[onerror], [onload], [onmouseover], [onfocus], [ontoggle], [onclick], [srcdoc], [autofocus]"
PLACES = "#messages, #sessions, #title, #branches, #persona-panel, #context-panel"


def check(page: Any, dialogs: list[str]) -> int:
    """Nothing ran, nothing was injected, every link is http(s); the number of links checked."""
    assert dialogs == [], dialogs
    assert page.evaluate("window.__pwned") is None
    injected = page.eval_on_selector_all(
        PLACES, f"els => els.flatMap(e => [...e.querySelectorAll('{INJECTED}')]).map(e => e.outerHTML)"
    )
    assert injected == [], injected[:3]
    handlers = page.eval_on_selector_all(f"{HANDLERS}", "els => els.map(e => e.outerHTML)")
    assert handlers == [], handlers[:3]
    assert page.eval_on_selector_all("script", "els => els.map(e => e.getAttribute('src'))") == [
        "/static/i18n.js",
        "/static/markdown.js",
        "/static/app.js",
    ]
    links = page.eval_on_selector_all(
        PLACES, "els => els.flatMap(e => [...e.querySelectorAll('a')]).map(a => [a.protocol, a.rel, a.target])"
    )
    for protocol, rel, target in links:
        assert protocol in ("http:", "https:") and rel == "noopener noreferrer" and target == "_blank"
    return len(links)


def open_session(page: Any, session_id: int, name: str) -> None:
    """Open a session through the sidebar's search (it lists only the newest 50 otherwise)."""
    page.fill("#search", name.split("\n")[0].strip()[:200])  # a search box holds one line
    item = page.locator(f'#sessions li[data-id="{session_id}"]')
    item.wait_for(timeout=5000)
    item.click()
    sync_api.expect(page.locator("#sessions li.current")).to_have_attribute("data-id", str(session_id))


@pytest.mark.campaign
def test_the_xss_corpus_is_shown_as_text_everywhere(browser: Any, fake_server: FakeServer, tmp_path: Path) -> None:
    fake = fake_server
    fake.reset()
    corpus = CORPUS if campaign.FULL else CORPUS[:: max(1, len(CORPUS) // 20)]
    opened = corpus if campaign.FULL else corpus[:4]  # sessions opened one by one (title, persona, branches)
    provider = OpenAICompatible(fake.url, api_key="sk-x", model="fake/model-a", max_retries=0)
    agent = Agent(open_store(tmp_path / "xss.db"), provider, persona="p", date_line=False)
    served = Served(create_app(agent))
    api = httpx.Client(base_url=served.url, timeout=10)
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    off_origin: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(served.url) else off_origin.append(r.url))
    figures = {"payloads": len(corpus), "replies_history": 0, "user_messages": 0, "session_names": 0}
    figures |= {"titles_personas_branches": 0, "replies_streamed": 0, "links_checked": 0}
    try:
        # history: one session holding every payload as the user's message and as the model's reply
        history = api.post("/api/sessions", json={"name": "history", "persona": "\n".join(corpus)}).json()["id"]
        for payload in corpus:
            fake.script(FakeReply.text(payload[:7], payload[7:]))
            assert api.post(f"/api/sessions/{history}/turns", json={"text": payload}).status_code == 200
        figures["replies_history"] = figures["user_messages"] = len(corpus)
        # names and personas: a session (and a fork of it) per payload
        named: dict[str, int] = {}
        names: dict[str, str] = {}
        for k, payload in enumerate(corpus):
            names[payload] = f"{k} {payload}"[:200]
            made = api.post("/api/sessions", json={"name": names[payload], "persona": payload})
            assert made.status_code == 201, made.text
            named[payload] = made.json()["id"]
            api.post(f"/api/sessions/{named[payload]}/fork", json={"name": f"{k} fork {payload}"[:200]})
        page.goto(served.url + "/")
        page.wait_for_selector("#sessions li")
        listed = page.locator("#sessions li").count()
        assert listed == min(50, 1 + 2 * len(corpus))  # the page lists the newest 50
        figures["session_names"] = listed
        open_session(page, history, "history")
        sync_api.expect(page.locator(".msg.assistant .body")).to_have_count(len(corpus), timeout=10000)
        page.locator("#context-panel summary").click()
        page.wait_for_timeout(200)
        shown = page.locator("#messages").inner_text()
        assert "<script>" in shown and "onerror" in shown  # shown as text
        figures["links_checked"] += check(page, dialogs)
        for payload in opened:
            open_session(page, named[payload], names[payload])
            sync_api.expect(page.locator("#title")).to_contain_text(payload.strip()[:5], timeout=5000)
            assert page.input_value("#persona") == payload.replace("\u0000", "\ufffd") or payload.startswith("\u0000")
            figures["links_checked"] += check(page, dialogs)
            figures["titles_personas_branches"] += 1
        # live: the whole corpus streamed as one reply, a few characters at a time
        open_session(page, history, "history")
        sync_api.expect(page.locator(".msg.assistant .body")).to_have_count(len(corpus), timeout=10000)
        text = "\n\n".join(corpus) + "\n\nTHE END"
        fake.script(FakeReply.text(*[text[i : i + 9] for i in range(0, len(text), 9)], delay=0.002))
        page.fill("#input", "everything at once")
        page.press("#input", "Enter")
        sync_api.expect(page.locator(".msg.assistant .body").last).to_contain_text("THE END", timeout=20000)
        page.wait_for_timeout(200)
        figures["links_checked"] += check(page, dialogs)
        figures["replies_streamed"] = len(corpus)
        assert off_origin == []
    finally:
        context.close()
        api.close()
        served.close()
        agent.close()
        fake.reset()
    figures["shown"] = sum(v for k, v in figures.items() if k not in ("payloads", "links_checked"))
    campaign.record("security_xss", figures)
