"""The port for tools that come from elsewhere (an MCP server's): asked for its tools when a
turn offers tools, closed when the agent closes. The core sees plain ``Tool`` objects only."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from memchat.tools.base import Tool


@runtime_checkable
class ToolSource(Protocol):
    def tools(self) -> list[Tool]:
        """The tools on offer now (may start what serves them; never raises: what fails is
        reported by the source, and its tools are left out)."""
        ...

    def close(self) -> None:
        """Stop whatever the source started (idempotent)."""
        ...
