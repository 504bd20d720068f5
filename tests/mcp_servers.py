"""A real MCP server for the tests, made with the SDK's ``MCPServer`` (v1's FastMCP), with tools
that misbehave on purpose: run it as ``python tests/mcp_servers.py stdio`` or
``python tests/mcp_servers.py http PORT`` (streamable HTTP on 127.0.0.1).

Tools: ``echo`` (read-only), ``shout`` (not marked read-only: needs approval), ``fail`` (an
``isError`` result), ``hang`` (sleeps; when cancelled it writes ``$MCP_TEST_MARKER``), ``crash``
(the process exits mid-call), ``picture`` (an image), ``pid``. A resource
``note://hello`` and a prompt ``summarise``. ``whoami`` tells the request's Authorization header
(over HTTP) so a test can see the configured header arrived.

The SDK's server refuses to list a malformed tool, so ``tests/mcp_raw_server.py`` speaks the
protocol's JSON-RPC by hand for that case.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ImageContent, ToolAnnotations


def make() -> MCPServer:
    server = MCPServer("tricky", subscriptions=False)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def echo(text: str) -> str:
        """Say the text back."""
        return f"echo: {text}"

    @server.tool()
    def shout(text: str) -> str:
        """Say the text back, loudly (not marked read-only)."""
        return text.upper()

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def fail(reason: str = "broken on purpose") -> str:
        """Always fails."""
        raise ValueError(reason)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def hang(seconds: float = 3600) -> str:
        """Sleep (a hanging call)."""
        try:
            await anyio.sleep(seconds)
        except BaseException:
            marker = os.environ.get("MCP_TEST_MARKER")
            if marker:
                Path(marker).write_text("cancelled")  # noqa: ASYNC240
            raise
        return "woke up"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def crash() -> str:
        """The server process exits in the middle of the call."""
        os._exit(3)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def picture() -> Any:
        """A tiny image."""
        return ImageContent(type="image", data=base64.b64encode(b"\x89PNG" + b"0" * 96).decode(), mime_type="image/png")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def pid() -> str:
        """The server's process id."""
        return str(os.getpid())

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def whoami(ctx: Context) -> str:
        """The Authorization header of the request (HTTP only)."""
        request = getattr(ctx.request_context, "request", None)
        headers = getattr(request, "headers", None) or {}
        return str(headers.get("authorization", "(none)"))

    @server.resource("note://hello", name="hello", mime_type="text/plain")
    def hello() -> str:
        return "Hello from the note resource."

    @server.prompt()
    def summarise(text: str) -> str:
        """Summarise a text."""
        return f"Summarise: {text}"

    return server


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if kind == "http":
        make().run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        make().run()
