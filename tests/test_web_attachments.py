"""The page's attachments (issue 18): the paperclip's file input and a pasted image become chips
(× removes one), go with the message to the model as content parts, and show as a thumbnail or
a file chip served by the owner-only endpoint; a refusal keeps the files and says why."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from attachfiles import png
from conftest import CHROMIUM
from fakeserver import FakeServer
from memchat.agent import Agent

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install chromium; CI installs it)",
)
sync_api = pytest.importorskip("playwright.sync_api")


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_a_png_from_the_file_input_is_sent_and_shown_as_a_thumbnail(
    page: Any, site: tuple[str, FakeServer, Agent], tmp_path: Path
) -> None:
    _, fake, agent = site
    agent.vision = True
    image, notes = tmp_path / "fox.png", tmp_path / "notes.txt"
    image.write_bytes(png(16, 12))
    notes.write_text("remember the fox\n")
    page.set_input_files("#attach-input", [str(image), str(notes)])
    chips = page.locator("#attachments .chip")
    sync_api.expect(chips).to_have_count(2)
    sync_api.expect(chips.first).to_contain_text("fox.png (")
    page.locator("#attachments .chip .remove").nth(1).click()  # × drops notes.txt
    sync_api.expect(chips).to_have_count(1)
    page.fill("#input", "what animal?")
    page.press("#input", "Enter")
    sync_api.expect(page.locator(".msg.assistant .body").last).to_contain_text("echo:", timeout=10000)
    page.wait_for_function("!document.querySelector('#stop') || document.querySelector('#stop').disabled")
    assert fake.chat_requests[-1].messages[-1]["content"] == [
        {"type": "text", "text": "what animal?"},
        {"type": "image_url", "image_url": {"url": data_uri(png(16, 12))}},
    ]
    sync_api.expect(page.locator("#attachments .chip")).to_have_count(0)
    page.reload()  # from the store: a thumbnail served by /api/attachments/{sha256}
    thumb = page.locator(".msg.user .files img.thumb")
    sync_api.expect(thumb).to_have_count(1, timeout=5000)
    assert thumb.get_attribute("alt") == "fox.png" and thumb.get_attribute("src", timeout=1000).startswith(
        "/api/attachments/"
    )
    page.wait_for_function("document.querySelector('.msg.user .files img.thumb').complete")
    assert page.evaluate("document.querySelector('.msg.user .files img.thumb').naturalWidth") == 16
    assert page.problems == []


def test_a_pasted_image_and_a_refusal_that_keeps_the_files(page: Any, site: tuple[str, FakeServer, Agent]) -> None:
    _, fake, agent = site  # fake/model-a takes text only
    page.evaluate(
        """(b64) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const data = new DataTransfer();
          data.items.add(new File([bytes], "pasted.png", { type: "image/png" }));
          const input = document.getElementById("input");
          input.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
        }""",
        base64.b64encode(png()).decode(),
    )
    sync_api.expect(page.locator("#attachments .chip")).to_have_count(1)
    sync_api.expect(page.locator("#attachments .chip img")).to_have_count(1)
    page.fill("#input", "look")
    page.press("#input", "Enter")
    sync_api.expect(page.locator("#status")).to_contain_text("takes text only", timeout=5000)
    sync_api.expect(page.locator("#attachments .chip")).to_have_count(1)  # kept, to send elsewhere
    assert page.input_value("#input") == "look"
    assert fake.chat_requests == [] and agent.store.list_sessions() == []
    page.problems[:] = [p for p in page.problems if "400" not in p]  # the refused request's console line
    assert page.problems == []


def test_files_dropped_on_the_message_box_are_attached(page: Any, site: tuple[str, FakeServer, Agent]) -> None:
    _, fake, _ = site
    page.evaluate(
        """() => {
          const data = new DataTransfer();
          data.items.add(new File(["def f():\\n    return 1\\n"], "tool.py", { type: "text/x-python" }));
          const box = document.getElementById("composer");
          box.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true, cancelable: true }));
          box.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
        }"""
    )
    sync_api.expect(page.locator("#attachments .chip")).to_contain_text("tool.py (")
    page.fill("#input", "review")
    page.press("#input", "Enter")
    sync_api.expect(page.locator(".msg.assistant .body").last).to_contain_text("echo:", timeout=10000)
    assert fake.chat_requests[-1].messages[-1]["content"] == (
        "review\n\n```python title=tool.py\ndef f():\n    return 1\n```"
    )
    page.reload()
    sync_api.expect(page.locator(".msg.user .files a.file")).to_have_text("📎 tool.py (22 B)", timeout=5000)
    assert page.problems == []
