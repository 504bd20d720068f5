"""The tools a session may use: the built-in ones, the user's own (``--tool module:function``),
and which of them are switched on."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from memchat.errors import ConfigError
from memchat.tools.base import Tool, make_tool


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, tool: Tool) -> None:
        self._tools[tool.name] = tool

    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def select(self, names: Iterable[str] | None) -> dict[str, Tool]:
        """The tools named (None: all); an unknown name is a one-line error."""
        if names is None:
            return dict(self._tools)
        chosen: dict[str, Tool] = {}
        for name in names:
            if name not in self._tools:
                known = ", ".join(self._tools) or "none"
                raise ConfigError(f"unknown tool {name!r} (available: {known})")
            chosen[name] = self._tools[name]
        return chosen


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
