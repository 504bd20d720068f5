"""MCP servers' tools in the turn, with real servers: the reference ``mcp-server-time`` over
stdio, an SDK ``MCPServer`` (tests/mcp_servers.py) over stdio and streamable HTTP, and a
hand-written one that lists malformed tools (tests/mcp_raw_server.py); the model is the
loopback OpenAI-compatible server (tests/fakeserver.py)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakeserver import FakeReply, FakeServer
from memchat.agent import Agent
from memchat.config import resolve
from memchat.errors import ConfigError
from memchat.factory import open_store
from memchat.mcp import MCPManager
from memchat.mcp.names import function_name
from memchat.mcp_config import MCPServerConfig, choose
from memchat.providers.openai_compat import OpenAICompatible
from memchat.tools import ToolRegistry
from memchat.tools.builtin import builtin_tools

HERE = Path(__file__).parent
TIME = MCPServerConfig("time", command=sys.executable, args=("-m", "mcp_server_time", "--local-timezone", "UTC"))
CLI = [sys.executable, "-m", "memchat.cli.main"]


def tricky(timeout: float = 30.0, **kw: Any) -> MCPServerConfig:
    return MCPServerConfig(
        "tricky", command=sys.executable, args=(str(HERE / "mcp_servers.py"),), timeout=timeout, **kw
    )


def raw() -> MCPServerConfig:
    return MCPServerConfig("raw", command=sys.executable, args=(str(HERE / "mcp_raw_server.py"),))


@pytest.fixture
def make_agent(fake: FakeServer) -> Iterator[Callable[..., tuple[Agent, MCPManager]]]:
    made: list[Agent] = []

    def make(*servers: MCPServerConfig, **kw: Any) -> tuple[Agent, MCPManager]:
        manager = MCPManager(servers)
        provider = OpenAICompatible(fake.url, api_key="k", model="fake/tools", max_retries=0)
        tools = ToolRegistry(builtin_tools(), sources=[manager])
        made.append(Agent(open_store(":memory:"), provider, tools=tools, date_line=False, **kw))
        return made[-1], manager

    yield make
    for agent in made:
        agent.close()


def tool_names(request: Any) -> list[str]:
    return [t["function"]["name"] for t in (request.body or {}).get("tools") or []]


def tool_results(request: Any) -> dict[str, str]:
    return {m["tool_call_id"]: m["content"] for m in request.messages if m["role"] == "tool"}


def gone(pid: int) -> bool:
    """The process has ended and was reaped (no zombie left)."""
    return not Path(f"/proc/{pid}").exists()


def wait_until(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# -- the reference time server through the tool loop ---------------------------------------------


def test_what_time_is_it_in_tokyo_through_the_reference_time_server(
    fake: FakeServer, make_agent: Callable[..., tuple[Agent, MCPManager]]
) -> None:
    agent, manager = make_agent(TIME)
    assert manager.servers(start=False)[0].state == "stopped"  # nothing starts before a turn offers tools
    fake.script(
        FakeReply.calls(("time__get_current_time", json.dumps({"timezone": "Asia/Tokyo"}))),
        FakeReply.text("It is evening in Tokyo."),
    )
    reply = agent.ask("s", "what time is it in Tokyo?")
    assert reply.text == "It is evening in Tokyo."
    first, second = fake.chat_requests
    offered = tool_names(first)
    assert {"time__get_current_time", "time__convert_time"} <= set(offered) and "now" in offered
    (result,) = tool_results(second).values()
    answer = json.loads(result)
    assert answer["timezone"] == "Asia/Tokyo" and answer["datetime"].endswith("+09:00")
    # stored with the turn like any tool result
    stored = [m for m in agent.store.messages("s") if m.role.value == "tool"]
    assert stored and "Asia/Tokyo" in stored[0].content
    # the tool schemas are paid for in the budget, MCP ones included
    loop = agent._tool_loop(agent.session("s"))
    assert "time__get_current_time" in loop.schema_text()
    builtin_only = agent._tool_loop(agent.session("s"))
    builtin_only.tools = {k: v for k, v in builtin_only.tools.items() if not k.startswith("time__")}
    with_mcp = agent._budget_with_tools("fake/tools", loop).tools
    assert with_mcp > agent._budget_with_tools("fake/tools", builtin_only).tools > 0


def test_the_time_servers_tools_are_read_only_so_they_run_without_asking(
    make_agent: Callable[..., tuple[Agent, MCPManager]],
) -> None:
    agent, _ = make_agent(TIME)
    time_tool = agent.tools.get("time__get_current_time")
    assert time_tool is not None and not time_tool.side_effects


# -- servers that misbehave: one line each, the turn goes on -----------------------------------


def test_failing_hanging_crashing_and_malformed_servers_cost_a_line_each_and_the_turn_goes_on(
    fake: FakeServer, make_agent: Callable[..., tuple[Agent, MCPManager]], tmp_path: Path
) -> None:
    marker = tmp_path / "cancelled"
    missing = MCPServerConfig("missing", command=str(tmp_path / "no-such-server"))
    agent, manager = make_agent(tricky(timeout=3, env={"MCP_TEST_MARKER": str(marker)}), raw(), missing)
    fake.script(
        FakeReply.calls(
            {"id": "c_fail", "name": "tricky__fail", "arguments": "{}"},
            {"id": "c_hang", "name": "tricky__hang", "arguments": "{}"},
            {"id": "c_crash", "name": "tricky__crash", "arguments": "{}"},
            {"id": "c_pic", "name": "tricky__picture", "arguments": "{}"},  # the next call: a restart first
        ),
        FakeReply.calls(
            {"id": "c_echo", "name": "tricky__echo", "arguments": '{"text": "hi"}'},
            {"id": "c_ok", "name": "raw__ok", "arguments": "{}"},
        ),
        FakeReply.text("Done."),
    )
    started = time.monotonic()
    reply = agent.ask("s", "use the tools")
    assert reply.text == "Done."
    assert time.monotonic() - started < 25  # the hanging call timed out after 3 s
    first, second, third = fake.chat_requests
    offered = tool_names(first)
    assert "tricky__echo" in offered and "raw__ok" in offered
    assert not {"raw__bad_schema", "raw__bad_array"} & set(offered)  # malformed tools are skipped
    results = tool_results(second)
    assert results["c_fail"].startswith("error: the tool reported an error")
    assert "did not answer within 3 s" in results["c_hang"]
    assert "stopped during the call" in results["c_crash"]
    assert results["c_pic"] == "[image (image/png, 102 bytes) not shown]"  # an image: a short note
    later = tool_results(third)
    assert later["c_echo"] == "echo: hi" and later["c_ok"] == "ok called"  # restarted; the others go on
    assert wait_until(marker.exists) and marker.read_text() == "cancelled"  # the timed-out call was cancelled
    lines = manager.lines
    assert sum("'missing' did not start" in line for line in lines) == 1
    assert sum("tool 'bad_schema' skipped" in line for line in lines) == 1
    assert sum("tool 'bad_array' skipped" in line for line in lines) == 1
    assert sum("tool '' skipped" in line for line in lines) == 1
    assert sum("'tricky' stopped" in line for line in lines) == 1
    assert sum("'tricky' had stopped: restarted it" in line for line in lines) == 1
    assert all("\n" not in line for line in lines)


def test_an_image_result_is_a_short_note_and_a_tool_that_is_not_read_only_asks_first(
    fake: FakeServer, make_agent: Callable[..., tuple[Agent, MCPManager]]
) -> None:
    agent, _ = make_agent(tricky())
    asked: list[str] = []
    agent.approve = lambda call, tool: asked.append(call.name) is not None  # declines
    fake.script(
        FakeReply.calls(
            {"id": "c_pic", "name": "tricky__picture", "arguments": "{}"},
            {"id": "c_shout", "name": "tricky__shout", "arguments": '{"text": "hi"}'},
        ),
        FakeReply.text("ok"),
    )
    agent.ask("s", "go")
    results = tool_results(fake.chat_requests[1])
    assert results["c_pic"] == "[image (image/png, 102 bytes) not shown]"
    assert asked == ["tricky__shout"] and "not run" in results["c_shout"]
    # trust = "always": the same tool runs without asking
    trusted, _ = make_agent(tricky(trust="always"))
    trusted.approve = lambda call, tool: pytest.fail("a trusted server's tool asked")
    fake.script(
        FakeReply.calls({"id": "c2", "name": "tricky__shout", "arguments": '{"text": "hi"}'}), FakeReply.text("ok")
    )
    trusted.ask("t", "go")
    assert tool_results(fake.chat_requests[-1])["c2"] == "HI"


def test_stopping_a_turn_cancels_the_running_mcp_call(
    fake: FakeServer, make_agent: Callable[..., tuple[Agent, MCPManager]], tmp_path: Path
) -> None:
    marker = tmp_path / "cancelled"
    agent, _ = make_agent(tricky(env={"MCP_TEST_MARKER": str(marker)}))
    fake.script(FakeReply.calls({"id": "c_hang", "name": "tricky__hang", "arguments": "{}"}), FakeReply.text("x"))

    async def stop_during_the_call() -> None:
        turn = agent.astream("s", "wait")

        async def run() -> None:
            async for chunk in turn:
                if chunk.tool_call is not None:
                    started.set()

        started = asyncio.Event()
        task = asyncio.create_task(run())
        await asyncio.wait_for(started.wait(), 30)
        await asyncio.sleep(1.0)  # the call is running in the server
        turn.stop()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    began = time.monotonic()
    asyncio.run(stop_during_the_call())
    assert wait_until(marker.exists, 10) and marker.read_text() == "cancelled"
    assert time.monotonic() - began < 20  # not the server's 30 s timeout


def test_a_server_that_died_while_idle_is_restarted_before_the_next_call(
    make_agent: Callable[..., tuple[Agent, MCPManager]],
) -> None:
    _, manager = make_agent(tricky())
    pid = int(manager.call("tricky", "pid", {}))
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: gone(pid), 10)  # reaped by the SDK's transport
    assert manager.call("tricky", "echo", {"text": "again"}) == "echo: again"
    assert int(manager.call("tricky", "pid", {})) != pid
    assert [line for line in manager.lines if "'tricky'" in line] == [
        "MCP server 'tricky' stopped: RuntimeError: the connection closed; it is restarted at its next use",
        "MCP server 'tricky' had stopped: restarted it",
    ]


def test_closing_the_agent_stops_every_server_process(
    fake: FakeServer, make_agent: Callable[..., tuple[Agent, MCPManager]]
) -> None:
    agent, manager = make_agent(tricky())
    pid = int(manager.call("tricky", "pid", {}))
    assert not gone(pid)
    agent.close()
    assert wait_until(lambda: gone(pid), 10)
    assert manager.tools() == []  # closed: nothing starts again


# -- streamable HTTP, secrets, resources -------------------------------------------------------


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "http-server.log").open("w")
    proc = subprocess.Popen([sys.executable, str(HERE / "mcp_servers.py"), "http", str(port)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/mcp"

    def up() -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return True
        except httpx.HTTPError:
            return False

    assert wait_until(up, 30), (tmp_path / "http-server.log").read_text()
    yield url
    proc.terminate()
    proc.wait(10)
    log.close()


def test_a_streamable_http_server_gets_its_headers_and_they_are_never_shown(
    fake: FakeServer, make_agent: Callable[..., tuple[Agent, MCPManager]], http_server: str
) -> None:
    config = MCPServerConfig("web", url=http_server, headers={"Authorization": "Bearer s3cret-token"})
    assert "s3cret" not in repr(config)
    agent, manager = make_agent(config)
    fake.script(FakeReply.calls({"id": "c1", "name": "web__whoami", "arguments": "{}"}), FakeReply.text("ok"))
    agent.ask("s", "who am I?")
    assert tool_results(fake.chat_requests[1])["c1"] == "Bearer s3cret-token"  # the header arrived
    (shown,) = manager.servers()
    assert shown.state == "running" and shown.headers == {"Authorization": "***"}
    assert "s3cret" not in repr(shown)
    assert ("note://hello", "hello") in shown.resources and shown.prompts[0][0] == "summarise"
    # a resource attached to a message: named, fenced context
    text = manager.attach("web", "note://hello")
    assert text == "web: note://hello\n```\nHello from the note resource.\n```"
    with pytest.raises(ConfigError, match="could not read note://nope"):
        manager.read_resource("web", "note://nope")


# -- names, settings ---------------------------------------------------------------------------


def test_tool_names_are_namespaced_sanitised_and_cut_to_64_with_a_hash() -> None:
    assert function_name("time", "get_current_time") == "time__get_current_time"
    assert function_name("my server", "read.file") == "my_server__read_file"
    long_a, long_b = function_name("s", "x" * 80 + "a"), function_name("s", "x" * 80 + "b")
    assert len(long_a) == 64 and len(long_b) == 64 and long_a != long_b


def write_config(text: str, mode: int = 0o600) -> Path:
    home = Path(os.environ["MEMCHAT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_config_servers_and_which_a_run_uses() -> None:
    write_config(
        '[mcp.servers.time]\ncommand = "uvx"\nargs = ["mcp-server-time"]\n\n'
        '[mcp.servers.docs]\nurl = "https://example.com/mcp"\nenabled = false\ntimeout = 5\ntrust = "always"\n'
    )
    settings = resolve({})
    servers = settings.mcp_servers
    assert [s.name for s in choose(servers, settings.mcp)] == ["time"]  # enabled ones by default
    assert [s.name for s in choose(servers, ["docs"])] == ["docs"]
    assert [s.name for s in choose(servers, ["all"])] == ["time", "docs"]
    assert choose(servers, ["none"]) == ()
    assert resolve({"mcp": ["time,docs"]}).mcp == ("time", "docs")
    assert resolve({}, env={"MEMCHAT_MCP": "none"}).mcp == ("none",)
    with pytest.raises(ConfigError, match="unknown MCP server 'nope' \\(configured: time, docs\\)"):
        resolve({"mcp": ["nope"]})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[mcp.servers.x]\nargs = ["a"]\n', "needs either command"),
        ('[mcp.servers.x]\ncommand = "a"\nurl = "http://h/"\n', "needs either command"),
        ('[mcp.servers.x]\ncommand = "a"\ncolour = "red"\n', "unknown setting"),
        ('[mcp.servers.x]\ncommand = "a"\ntrust = "maybe"\n', "trust must be one of"),
        ('[mcp.servers.x]\nurl = "ftp://h/"\n', "must start with http"),
        ('[mcp.servers.x]\ncommand = "a"\ntimeout = "soon"\n', "timeout has the wrong type"),
        ("[mcp]\nservers = 3\n", "mcp.servers must be a table"),
    ],
)
def test_a_malformed_server_table_is_one_line(table: str, message: str) -> None:
    write_config(table)
    with pytest.raises(ConfigError, match=message):
        resolve({})


def test_a_config_with_mcp_secrets_must_be_private() -> None:
    path = write_config('[mcp.servers.x]\nurl = "https://h/mcp"\nheaders = { Authorization = "Bearer t" }\n', 0o644)
    with pytest.raises(ConfigError, match=f"chmod 600 {path}"):
        resolve({})


# -- the command line, the REPL, the HTTP server -------------------------------------------------


def cli(*args: str, env: dict[str, str], code: str | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "PYTHONIOENCODING": "utf-8"}
    command = [sys.executable, "-c", code, *args] if code else [*CLI, *args]
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=full, timeout=90)


TIME_TOML = f'[mcp.servers.time]\ncommand = {json.dumps(sys.executable)}\nargs = ["-m", "mcp_server_time"]\n'


def test_ask_with_mcp_time_answers_from_the_time_server(fake: FakeServer) -> None:
    write_config(TIME_TOML + "enabled = false\n")
    env = {"MEMCHAT_PROVIDER": "compat", "MEMCHAT_BASE_URL": fake.url}
    fake.script(
        FakeReply.calls(("time__get_current_time", '{"timezone": "Asia/Tokyo"}')), FakeReply.text("Tokyo time.")
    )
    proc = cli("ask", "--mcp", "time", "what time is it in Tokyo?", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Tokyo time.\n"
    assert "Asia/Tokyo" in tool_results(fake.chat_requests[1])["call_0_time__get_current_time"]
    # enabled = false and no --mcp: the server is not used
    fake.script(FakeReply.text("no tools"))
    proc = cli("ask", "hello", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "time__get_current_time" not in tool_names(fake.chat_requests[-1])
    # an unknown server: one line
    proc = cli("ask", "--mcp", "nope", "hello", env=env)
    assert proc.returncode != 0 and "unknown MCP server 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_without_the_sdk_a_configured_server_is_one_line_naming_the_extra(fake: FakeServer) -> None:
    write_config(TIME_TOML)
    env = {"MEMCHAT_PROVIDER": "compat", "MEMCHAT_BASE_URL": fake.url}
    code = "import sys; sys.modules['mcp'] = None; from memchat.cli.main import main; sys.exit(main(sys.argv[1:]))"
    proc = cli("ask", "hello", env=env, code=code)
    assert proc.returncode != 0
    assert "pip install 'memchat[mcp]'" in proc.stderr and "Traceback" not in proc.stderr


def test_a_server_that_fails_to_start_is_one_line_on_stderr_and_the_answer_comes(fake: FakeServer) -> None:
    write_config('[mcp.servers.broken]\ncommand = "/nonexistent/mcp-server"\n')
    env = {"MEMCHAT_PROVIDER": "compat", "MEMCHAT_BASE_URL": fake.url}
    fake.script(FakeReply.text("Still here."))
    proc = cli("ask", "hello", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Still here.\n"
    assert proc.stderr.count("MCP server 'broken' did not start") == 1


def test_repl_mcp_lists_servers_tools_resources_prompts_and_attaches_a_resource_or_a_prompt(
    fake: FakeServer, make_agent: Callable[..., tuple[Agent, MCPManager]]
) -> None:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput
    from rich.console import Console

    from memchat.cli.repl import run_repl
    from memchat.config import Settings

    agent, _ = make_agent(tricky(env={"SECRET_TOKEN": "hunter2"}))
    fake.script(FakeReply.text("Read it."), FakeReply.text("Fine."))
    out = io.StringIO()
    with create_pipe_input() as inp:
        inp.send_text(
            "/mcp\n/mcp attach tricky note://hello\nwhat does it say?\n"
            "/mcp prompt tricky summarise text\n/mcp prompt tricky summarise text=a_poem\nnow\n"
        )
        inp.close()
        run_repl(
            agent,
            Settings(),
            console=Console(file=out, width=200, color_system=None),
            pt_input=inp,
            pt_output=DummyOutput(),
        )
    shown = out.getvalue()
    assert "tricky · stdio · running" in shown
    assert "tool tricky__echo: Say the text back." in shown
    assert "tool tricky__shout (asks first)" in shown
    assert "resource note://hello (hello)" in shown and "prompt summarise: Summarise a text." in shown
    assert "SECRET_TOKEN=***" in shown and "hunter2" not in shown
    sent = fake.chat_requests[0].messages[-1]["content"]
    assert sent == "tricky: note://hello\n```\nHello from the note resource.\n```\n\nwhat does it say?"
    # /mcp prompt: KEY=VALUE arguments; the prompt's text goes before the next message
    assert "usage: /mcp prompt SERVER NAME [KEY=VALUE …]" in shown
    assert fake.chat_requests[1].messages[-1]["content"] == "Summarise: a_poem\n\nnow"


def test_the_http_server_lists_mcp_tools_and_a_turn_uses_one(fake: FakeServer, tmp_path: Path) -> None:
    from memchat.server.app import create_app
    from serving import Served

    manager = MCPManager([TIME])
    provider = OpenAICompatible(fake.url, api_key="k", model="fake/model-a", max_retries=0)
    agent = Agent(
        open_store(tmp_path / "server.db"),
        provider,
        tools=ToolRegistry(builtin_tools(), sources=[manager]),
        date_line=False,
    )
    served = Served(create_app(agent))
    try:
        with httpx.Client(base_url=served.url, timeout=30) as client:
            tools = client.get("/api/models").json()["tools"]
            assert "time__get_current_time" in tools and "now" in tools
            (server,) = client.get("/api/mcp").json()["servers"]
            assert server["name"] == "time" and server["state"] == "running"
            assert {t["name"] for t in server["tools"]} == {"time__get_current_time", "time__convert_time"}
            fake.script(
                FakeReply.calls(("time__get_current_time", '{"timezone": "Asia/Tokyo"}')), FakeReply.text("Tokyo.")
            )
            response = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "time?"}]})
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["message"]["content"] == "Tokyo."
            assert "Asia/Tokyo" in tool_results(fake.chat_requests[-1])["call_0_time__get_current_time"]
    finally:
        served.close()
        agent.close()


def test_the_lines_speak_chinese_too(tmp_path: Path) -> None:
    from memchat import i18n

    i18n.set_lang("zh")
    manager = MCPManager([MCPServerConfig("missing", command=str(tmp_path / "no-such-server"))])
    try:
        assert manager.tools() == []
        (line,) = manager.lines
        assert line.startswith("MCP 服务器 'missing' 未能启动：") and "其工具不可用" in line
    finally:
        manager.close()


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_serve_shares_its_mcp_servers_and_stops_them_on_ctrl_c(fake: FakeServer) -> None:
    from serving import serve_process

    write_config(
        f"[mcp.servers.tricky]\ncommand = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(HERE / 'mcp_servers.py'))}]\nenabled = false\n"
    )
    env = {**os.environ, "MEMCHAT_PROVIDER": "compat", "MEMCHAT_BASE_URL": fake.url}
    proc, url = serve_process(env, "--mcp", "tricky")
    started: list[int] = []
    try:
        assert children(proc.pid) == []  # nothing started before it is needed
        (server,) = httpx.get(url + "/api/mcp", timeout=30).json()["servers"]
        assert server["state"] == "running" and "tricky__echo" in {t["name"] for t in server["tools"]}
        started = children(proc.pid)
        assert len(started) == 1
        httpx.get(url + "/api/models", timeout=30)  # another request: the same server process
        assert children(proc.pid) == started
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert started and wait_until(lambda: gone(started[0]), 10)  # Ctrl-C: the server's child is gone too


def test_ctrl_c_during_an_mcp_call_cancels_it_and_keeps_the_question(
    fake: FakeServer, make_agent: Callable[..., tuple[Agent, MCPManager]], tmp_path: Path
) -> None:
    import threading

    marker = tmp_path / "cancelled"
    agent, _ = make_agent(tricky(env={"MCP_TEST_MARKER": str(marker)}))
    fake.script(FakeReply.calls({"id": "c_hang", "name": "tricky__hang", "arguments": "{}"}), FakeReply.text("x"))
    turn = agent.stream("s", "wait")
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        for chunk in turn:
            if chunk.tool_call is not None:  # the call runs next: Ctrl-C a second into it
                threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    assert wait_until(marker.exists, 10) and marker.read_text() == "cancelled"
    assert time.monotonic() - began < 20
    assert [m.role.value for m in agent.store.messages("s")] == ["user"]  # the question stays (/retry)
