"""The page's Tools panel (issue 18): the tools the model may call — memchat's own and a real MCP
server's (the protocol's reference time server over stdio), with the server's state — in Debian's
chromium against ``memchat serve``'s app."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM
from memchat.agent import Agent
from memchat.factory import open_store
from memchat.providers.openai_compat import OpenAICompatible
from memchat.tools import ToolRegistry
from memchat.tools.builtin import builtin_tools

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install chromium; CI installs it)",
)
sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("mcp")
expect = sync_api.expect


@pytest.fixture
def served_with_time(fake_server: Any, tmp_path: Path) -> Iterator[str]:
    from memchat.mcp import MCPManager
    from memchat.mcp_config import MCPServerConfig
    from memchat.server.app import create_app
    from serving import Served

    time = MCPServerConfig("time", command=sys.executable, args=("-m", "mcp_server_time", "--local-timezone", "UTC"))
    provider = OpenAICompatible(fake_server.url, api_key="k", model="fake/model-a", max_retries=0)
    agent = Agent(
        open_store(tmp_path / "web.db"),
        provider,
        tools=ToolRegistry(builtin_tools(), sources=[MCPManager([time])]),
        date_line=False,
    )
    served = Served(create_app(agent))
    try:
        yield served.url
    finally:
        served.close()
        agent.close()


def test_the_tools_panel_lists_memchats_tools_and_each_mcp_servers(browser: Any, served_with_time: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(served_with_time + "/")
        expect(page.locator("#tools-list li")).to_have_count(0)  # read when opened, not before
        page.click("#tools-panel summary")
        tools = page.locator("#tools-list")
        expect(tools.locator("li.server").first).to_have_text("memchat’s own")
        expect(tools.locator("li.tool code", has_text="now")).to_have_count(1)
        time_server = tools.locator("li.server", has_text="time")
        expect(time_server).to_contain_text("MCP · running", timeout=30_000)
        expect(tools.locator("li.tool", has_text="time__get_current_time")).to_contain_text("timezone")
        expect(tools.locator("li.tool", has_text="time__convert_time")).to_have_count(1)
        # read-only by the server's annotations: they run without asking, and the panel says none asks
        assert "asks first" not in tools.inner_text()
        if os.environ.get("SHOTS_DIR"):
            page.screenshot(path=os.environ["SHOTS_DIR"] + "/tools-panel.png")
        assert errors == []
    finally:
        context.close()
