"""The MCP servers of one process, as a ``ToolSource``: an asyncio loop in a background thread
owns every connection (the SDK is async; turns may be sync); the turn's threads reach it with
``run_coroutine_threadsafe``.

Servers start on first use (the first turn that offers tools, the first ``/mcp``), all at once,
once per process (a server's agents and requests share them); one that fails to start is one
line and its tools are left out. A call that finds its server gone says so in one line and the
next use restarts it (one line). A call runs at most the server's ``timeout`` and is cancelled
when the turn is (Ctrl-C, Stop). ``close`` (the agent's, or at exit) stops them all: no child
process outlives memchat.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memchat.errors import ConfigError
from memchat.mcp.connection import STOP_WAIT, Connection, Malformed, describe
from memchat.mcp.names import function_name, sanitise
from memchat.mcp.results import attachment, call_text, prompt_text, resource_text
from memchat.mcp.strings import t
from memchat.mcp_config import MCPServerConfig
from memchat.tools.base import Tool, ToolContext, ToolError

log = logging.getLogger("memchat.mcp")
#: how often a waiting call looks whether its turn was cancelled (seconds)
POLL = 0.05


def require_sdk() -> None:
    """A one-line error naming the extra when the MCP SDK is missing."""
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise ConfigError(t("mcp.no_sdk")) from None


async def _together(coros: list[Any]) -> None:
    await asyncio.gather(*coros)


def _unusable(item: Any, name: Any, schema: Any, server: str, taken: set[str]) -> str:
    """Why a listed tool cannot be offered ("" when it can)."""
    if isinstance(item, Malformed):
        return item.why
    if not isinstance(name, str) or not name.strip():
        return t("mcp.why_no_name")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return t("mcp.why_schema")
    if function_name(server, name) in taken:
        return t("mcp.why_duplicate", name=function_name(server, name))
    return ""


@dataclass(frozen=True)
class ToolInfo:
    """An MCP tool as offered: the name the model calls, the server's own name, and whether it
    runs without asking."""

    function: str
    name: str
    description: str
    approval: bool


@dataclass(frozen=True)
class ServerInfo:
    """What ``/mcp`` and ``GET /api/mcp`` show of a server (never its env or header values)."""

    name: str
    transport: str
    target: str
    state: str
    error: str
    env: dict[str, str]
    headers: dict[str, str]
    tools: tuple[ToolInfo, ...]
    resources: tuple[tuple[str, str], ...]
    prompts: tuple[tuple[str, str], ...]


class MCPManager:
    def __init__(
        self,
        servers: Iterable[MCPServerConfig],
        *,
        log_dir: Path | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.configs = {s.name: s for s in servers}
        self._conns = {
            name: Connection(c, log_dir / f"{sanitise(name)}.log" if log_dir is not None else None)
            for name, c in self.configs.items()
        }
        #: where a line about a server goes (None: the ``memchat.mcp`` logger, as a warning)
        self.report = report
        #: every line said, oldest first
        self.lines: list[str] = []
        self._tools: dict[str, list[Tool]] = {}
        self._infos: dict[str, list[ToolInfo]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        atexit.register(self.close)

    # -- the loop -------------------------------------------------------------------------

    def _ready_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="memchat-mcp", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(self, coro: Any, timeout: float) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._ready_loop())
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError() from None

    def _say(self, key: str, **fields: Any) -> None:
        line = t(key, **fields)
        self.lines.append(line)
        if self.report is not None:
            self.report(line)
        else:
            log.warning("%s", line)

    # -- starting -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the servers not started yet (and restart those that stopped), all at once."""
        with self._lock:
            if self._closed:
                return
            waiting = [c for c in self._conns.values() if c.state in ("stopped", "crashed")]
            if not waiting:
                return
            longest = max(c.config.timeout for c in waiting)
            try:
                self._run(_together([self._ensure(c) for c in waiting]), longest + 2 * STOP_WAIT)
            except TimeoutError:
                pass  # each start has its own timeout: this only guards against a stuck loop

    async def _ensure(self, conn: Connection) -> None:
        """Start ``conn`` unless it is running or failed to start (one start at a time)."""
        lock = self._locks.setdefault(conn.config.name, asyncio.Lock())
        async with lock:
            if conn.state not in ("stopped", "crashed") or self._closed:
                return
            again = conn.state == "crashed"
            try:
                await conn.start()
            except Exception:
                self._say("mcp.start_failed", server=conn.config.name, error=conn.error)
                return
            self._build(conn)
            if again:
                self._say("mcp.restarted", server=conn.config.name)

    def _build(self, conn: Connection) -> None:
        """The server's tools as ``Tool`` objects (a malformed one is skipped with a line)."""
        server = conn.config
        tools: list[Tool] = []
        infos: list[ToolInfo] = []
        taken = {t.name for name, built in self._tools.items() if name != server.name for t in built}
        for item in conn.tools:
            name = getattr(item, "name", None)
            schema = getattr(item, "input_schema", None)
            why = _unusable(item, name, schema, server.name, taken)
            if why:
                self._say("mcp.tool_skipped", server=server.name, tool=str(name), why=why)
                continue
            assert isinstance(name, str) and isinstance(schema, dict)
            fname = function_name(server.name, name)
            taken.add(fname)
            hints = getattr(item, "annotations", None)
            read_only = hints is not None and hints.read_only_hint is True
            ask = not read_only and server.trust != "always"
            description = item.description or item.title or name
            parameters = {k: v for k, v in schema.items() if k != "$schema"}
            parameters.setdefault("properties", {})
            tools.append(
                Tool(
                    name=fname,
                    description=description,
                    parameters=parameters,
                    function=self._caller(server.name, name),
                    side_effects=ask,
                    # the call's own timeout is the server's; this leaves room for a restart first
                    timeout=2 * server.timeout + 2 * STOP_WAIT,
                    context_param="_memchat_context",
                )
            )
            infos.append(ToolInfo(fname, name, description, ask))
        self._tools[server.name] = tools
        self._infos[server.name] = infos

    # -- the ToolSource port --------------------------------------------------------------

    def tools(self) -> list[Tool]:
        if self._closed:
            return []
        self.start()
        return [t for c in self._conns.values() if c.state == "running" for t in self._tools.get(c.config.name, [])]

    def close(self) -> None:
        """Stop every server and the loop (idempotent; also run at exit)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
            if loop is not None and thread is not None:
                try:
                    self._run(_together([c.stop() for c in self._conns.values()]), 3 * STOP_WAIT)
                except Exception:  # a server that will not stop: the process is ending anyway
                    log.warning("MCP servers did not all stop in time")
                loop.call_soon_threadsafe(loop.stop)
                thread.join(5)
                if not thread.is_alive():
                    loop.close()
        atexit.unregister(self.close)

    # -- calls ----------------------------------------------------------------------------

    def _caller(self, server: str, tool: str) -> Callable[..., str]:
        def call(_memchat_context: ToolContext | None = None, **arguments: Any) -> str:
            return self.call(server, tool, arguments, _memchat_context)

        return call

    def call(self, server: str, tool: str, arguments: dict[str, Any], context: ToolContext | None = None) -> str:
        """Call ``tool`` of ``server`` (its own name): the result's text; ``ToolError`` when the
        server says the call failed, times out, stopped, or the turn was cancelled meanwhile."""
        conn = self._connection(server)
        if self._closed:
            raise ToolError(f"the call of {tool} was not made: memchat has closed its MCP servers")
        future = asyncio.run_coroutine_threadsafe(self._call(conn, tool, arguments), self._ready_loop())
        while True:
            try:
                return str(future.result(POLL))
            except concurrent.futures.TimeoutError:
                if self._closed:  # closed meanwhile: its loop is gone, the call will not finish
                    future.cancel()
                    raise ToolError(f"the call of {tool} was cut: memchat is closing its MCP servers") from None
                if context is not None and context.cancelled.is_set():
                    future.cancel()  # the call's task is cancelled: the SDK tells the server
                    raise ToolError(f"the call of {tool} was cancelled") from None
            except concurrent.futures.CancelledError:
                raise ToolError(f"the call of {tool} was cancelled") from None

    async def _call(self, conn: Connection, tool: str, arguments: dict[str, Any]) -> str:
        name, timeout = conn.config.name, conn.config.timeout
        if conn.closed():  # it stopped since its last call: restarted before this one is sent
            await self._crashed(conn, RuntimeError("the connection closed"))
        await self._ensure(conn)
        session = conn.session
        if conn.state != "running" or session is None:
            raise ToolError(t("mcp.not_running", server=name, error=conn.error or conn.state))
        try:
            result = await asyncio.wait_for(session.call_tool(tool, arguments), timeout)
        except TimeoutError:
            raise ToolError(
                f"the MCP server {name!r} did not answer within {timeout:g} s (the call was cancelled)"
            ) from None
        except Exception as exc:
            if not await conn.alive():
                await self._crashed(conn, exc)
                raise ToolError(
                    f"the MCP server {name!r} stopped during the call; it is restarted at the next call"
                ) from None
            raise ToolError(f"the MCP server {name!r} refused the call: {describe(exc, timeout)}") from exc
        text, error = call_text(result)
        if error:
            raise ToolError(text.removeprefix("error: "))
        return text

    async def _crashed(self, conn: Connection, exc: BaseException) -> None:
        if conn.state != "running":
            return
        conn.state = "crashed"
        conn.error = describe(exc, conn.config.timeout)
        await conn.stop()  # what is left of it goes (the process is reaped)
        self._say("mcp.crashed", server=conn.config.name, error=conn.error)

    def _connection(self, server: str) -> Connection:
        conn = self._conns.get(server)
        if conn is None:
            raise ConfigError(t("mcp.unknown_server", server=server, known=", ".join(self._conns) or "-"))
        return conn

    # -- what the servers offer -----------------------------------------------------------

    def servers(self, *, start: bool = True) -> list[ServerInfo]:
        """Every server of this run, with its state and what it offers (``start``: start them first)."""
        if start:
            self.start()
        shown = []
        for name, conn in self._conns.items():
            c = conn.config
            running = conn.state == "running"
            shown.append(
                ServerInfo(
                    name=name,
                    transport=c.transport,
                    target=c.target(),
                    state=conn.state,
                    error=conn.error,
                    env=c.shown_env(),
                    headers=c.shown_headers(),
                    tools=tuple(self._infos.get(name, [])) if running else (),
                    resources=tuple((str(r.uri), r.name or "") for r in conn.resources) if running else (),
                    prompts=tuple((p.name, p.description or "") for p in conn.prompts) if running else (),
                )
            )
        return shown

    def read_resource(self, server: str, uri: str) -> str:
        """The text of a resource (``ConfigError``, one line, when it cannot be read)."""
        return resource_text(self._ask(server, uri, lambda session: session.read_resource(uri)))

    def prompt(self, server: str, name: str, arguments: dict[str, str] | None = None) -> str:
        """The text of a prompt of ``server``, filled with ``arguments`` (``ConfigError`` when it fails)."""
        return prompt_text(self._ask(server, name, lambda session: session.get_prompt(name, arguments or None)))

    def _ask(self, server: str, what: str, request: Callable[[Any], Any]) -> Any:
        """The answer to one request of ``server``'s session (a read, a prompt), within its timeout."""
        conn = self._connection(server)
        self.start()
        if conn.state != "running" or conn.session is None:
            raise ConfigError(t("mcp.not_running", server=server, error=conn.error or conn.state))

        async def ask() -> Any:
            return await asyncio.wait_for(request(conn.session), conn.config.timeout)

        try:
            return self._run(ask(), conn.config.timeout + 1)
        except Exception as exc:
            why = describe(exc, conn.config.timeout)
            raise ConfigError(t("mcp.read_failed", server=server, uri=what, error=why)) from None

    def attach(self, server: str, uri: str) -> str:
        """A resource as named, fenced context to put before a message."""
        return attachment(server, uri, self.read_resource(server, uri))
