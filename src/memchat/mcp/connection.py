"""One MCP server: its transport (a child process over stdio, or streamable HTTP), the SDK's
session on it, and what it offers (tools, resources, prompts). Async; runs on the manager's
loop. The transport and the session are entered and left in one task (``_serve``), as the SDK's
task groups require; calls come from other tasks of the same loop."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from memchat.mcp_config import MCPServerConfig

#: seconds the transport gets to stop (stdio: stdin closed, then SIGTERM, then SIGKILL)
STOP_WAIT = 10.0
#: seconds a server gets to start at least (its ``timeout`` when longer)
START_TIMEOUT = 20.0
#: pages of a listing read at most (a server whose cursor never ends cannot hang the start)
MAX_PAGES = 50


class Connection:
    def __init__(self, config: MCPServerConfig, log: Path | None = None) -> None:
        self.config = config
        #: stopped (not started yet, or closed) · running · failed (could not start) · crashed
        self.state = "stopped"
        self.error = ""
        self.session: Any = None
        self.tools: list[Any] = []
        self.resources: list[Any] = []
        self.prompts: list[Any] = []
        #: how many times it was started (a restart after a crash counts)
        self.starts = 0
        self._log = log
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the server and read what it offers, within the configured timeout (raises)."""
        self.starts += 1
        self._stop = asyncio.Event()
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._serve(ready, self._stop), name=f"mcp-{self.config.name}")
        try:  # starting may take longer than a call (a Python server imports the SDK: seconds)
            await asyncio.wait_for(asyncio.shield(ready), max(self.config.timeout, START_TIMEOUT))
        except BaseException as exc:
            await self.stop()
            self.state = "failed"
            self.error = describe(exc, max(self.config.timeout, START_TIMEOUT))
            raise
        self.state = "running"
        self.error = ""

    async def _serve(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        from mcp import ClientSession, Implementation

        from memchat import __version__

        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await self._transport(stack)
                session = ClientSession(read, write, client_info=Implementation(name="memchat", version=__version__))
                await stack.enter_async_context(session)
                await session.initialize()
                caps = session.server_capabilities
                self.tools = await _list_tools(session)
                offers = (caps.resources, caps.prompts) if caps is not None else (None, None)
                self.resources = await _all_pages(session.list_resources, "resources") if offers[0] else []
                self.prompts = await _all_pages(session.list_prompts, "prompts") if offers[1] else []
                self.session = session
                ready.set_result(None)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            if not isinstance(exc, Exception):
                raise
        finally:
            self.session = None

    async def _transport(self, stack: contextlib.AsyncExitStack) -> tuple[Any, Any]:
        config = self.config
        if config.url:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            client = httpx2.AsyncClient(
                headers=dict(config.headers), timeout=httpx2.Timeout(config.timeout, read=max(config.timeout, 300.0))
            )
            await stack.enter_async_context(client)
            streams = await stack.enter_async_context(streamable_http_client(config.url, http_client=client))
            return streams[0], streams[1]
        from mcp import StdioServerParameters, stdio_client

        params = StdioServerParameters(
            command=config.command or "", args=list(config.args), env=dict(config.env) or None, cwd=config.cwd
        )
        errlog: TextIO | None = None
        if self._log is not None:  # the server's stderr goes to its log file, not over the REPL
            errlog = stack.enter_context(_open_log(self._log))
        if errlog is not None:
            streams = await stack.enter_async_context(stdio_client(params, errlog=errlog))
        else:
            streams = await stack.enter_async_context(stdio_client(params))
        return streams[0], streams[1]

    async def stop(self) -> None:
        """Stop the server (its process ends; an HTTP session is closed). Idempotent."""
        task, self._task = self._task, None
        if self._stop is not None:
            self._stop.set()
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(task, STOP_WAIT)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self.session = None
        if self.state == "running":
            self.state = "stopped"

    def closed(self) -> bool:
        """Whether the connection ended while nothing was asked (the server process exited)."""
        dispatcher = getattr(self.session, "_dispatcher", None)
        return self.state == "running" and bool(getattr(dispatcher, "_closed", False))

    async def alive(self) -> bool:
        """Whether the server still answers (a ping within a few seconds)."""
        if self.session is None:
            return False
        try:
            await asyncio.wait_for(self.session.send_ping(), min(5.0, self.config.timeout))
            return True
        except Exception:
            return False


def _open_log(path: Path) -> TextIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a", encoding="utf-8")  # closed by the connection's exit stack


@dataclass(frozen=True)
class Malformed:
    """A tool of a listing the SDK refused: its name (if any) and why."""

    name: str
    why: str


async def _list_tools(session: Any) -> list[Any]:
    """The server's tools. The SDK refuses a whole listing when one tool in it is malformed (an
    inputSchema that is not an object schema): then the listing is read again as it came, and
    each tool taken or marked ``Malformed`` on its own, so one bad tool does not cost the others."""
    from pydantic import ValidationError

    try:
        return await _all_pages(session.list_tools, "tools")
    except ValidationError:
        pass
    from mcp.types import Tool as MCPTool

    found: list[Any] = []
    cursor = None
    for _ in range(MAX_PAGES):
        opts: dict[str, Any] = {}
        session._stamp({"method": "tools/list"}, opts)  # the protocol version header, as the SDK sends
        raw = await session._dispatcher.send_raw_request("tools/list", {"cursor": cursor} if cursor else None, opts)
        for item in raw.get("tools") or []:
            name = item.get("name") if isinstance(item, dict) else None
            try:
                found.append(MCPTool.model_validate(item))
            except ValidationError as exc:
                found.append(Malformed(str(name or ""), " ".join(str(exc).split())[:200]))
        cursor = raw.get("nextCursor")
        if not cursor:
            break
    from mcp.types import ListToolsResult

    # the SDK checks a call's result against the tool's listed output schema, listing again when
    # it has not seen the tool: it is given the good ones, so it does not list (and fail) again
    session._absorb_tool_listing(ListToolsResult(tools=[t for t in found if isinstance(t, MCPTool)]), complete=True)
    return found


async def _all_pages(method: Any, field: str) -> list[Any]:
    from mcp.types import PaginatedRequestParams

    items: list[Any] = []
    cursor = None
    for _ in range(MAX_PAGES):
        result = await method(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
        items.extend(getattr(result, field))
        cursor = result.next_cursor
        if not cursor:
            break
    return items


def describe(exc: BaseException, timeout: float) -> str:
    """One line for what went wrong (an exception group: its first leaf)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    text = " ".join(str(exc).split())
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or text}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
