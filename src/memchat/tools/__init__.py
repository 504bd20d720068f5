"""Tools the model can call: the port (``Tool``), the ``@tool`` decorator that turns a typed
Python function into one, the built-in tools, and the runner that executes a call safely."""

from memchat.tools.base import Tool, ToolContext, tool
from memchat.tools.registry import ToolRegistry, load_tool

__all__ = ["Tool", "ToolContext", "ToolRegistry", "load_tool", "tool"]
