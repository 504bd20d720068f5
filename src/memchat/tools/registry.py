"""The tools a session may use: the built-in ones, the user's own (``--tool module:function``),
those of tool sources (an MCP server's, started on first use), and which of them are switched on."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from memchat.errors import ConfigError
from memchat.tools.base import Tool, make_tool
from memchat.tools.source import ToolSource


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = (), sources: Iterable[ToolSource] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        #: where more tools come from (asked on use: a source may start servers then)
        self.sources: list[ToolSource] = list(sources)
        for t in tools:
            self.add(t)

    def add(self, tool: Tool) -> None:
        self._tools[tool.name] = tool

    def add_source(self, source: ToolSource) -> None:
        self.sources.append(source)

    def _all(self) -> dict[str, Tool]:
        """The registered tools, then the sources' (a source's tool never hides a registered one)."""
        if not self.sources:
            return self._tools
        found = dict(self._tools)
        for source in self.sources:
            for t in source.tools():
                found.setdefault(t.name, t)
        return found

    def names(self) -> list[str]:
        return list(self._all())

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name) or (self._all().get(name) if self.sources else None)

    def select(self, names: Iterable[str] | None) -> dict[str, Tool]:
        """The tools named (None: all); an unknown name is a one-line error."""
        if names is None:
            return dict(self._all())
        names = list(names)
        tools = self._tools if all(n in self._tools for n in names) else self._all()  # sources only when needed
        chosen: dict[str, Tool] = {}
        for name in names:
            if name not in tools:
                known = ", ".join(tools) or "none"
                raise ConfigError(f"unknown tool {name!r} (available: {known})")
            chosen[name] = tools[name]
        return chosen

    def close(self) -> None:
        """Close the sources (their servers stop); the registered tools stay usable."""
        for source in self.sources:
            source.close()


def load_tool(spec: str) -> Tool:
    """The tool ``module:function`` (a ``@tool`` object or a plain typed function)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"--tool {spec!r}: expected module:function (for example mytools:weather)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"--tool {spec!r}: cannot import {module_name} ({exc})") from exc
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(f"--tool {spec!r}: {module_name} has no {attr}")
    if isinstance(target, Tool):
        return target
    if not callable(target):
        raise ConfigError(f"--tool {spec!r}: {attr} is not a function")
    try:
        return make_tool(target)
    except ValueError as exc:
        raise ConfigError(f"--tool {spec!r}: {exc}") from exc
