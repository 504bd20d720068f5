"""A tool: a name, a description, a JSON schema for its arguments, and the function to run.

``@tool`` builds all of it from a typed function: the schema from the signature (str,
int, float, bool, list[...], Literal[...], optional parameters with defaults), the
descriptions from the docstring (first paragraph; ``Args:`` lines ``name: text``). A
parameter annotated ``ToolContext`` is not shown to the model: the runner passes the turn's
context (store, session, clock) in it.
"""

from __future__ import annotations

import inspect
import re
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal, get_args, get_origin

from memchat.domain import SessionInfo

#: seconds a tool may run before its call is answered with a timeout error
DEFAULT_TIMEOUT = 30.0


class ToolError(Exception):
    """A tool's own failure, told to the model as it is (``error: <message>``)."""


@dataclass
class ToolContext:
    """What a running tool may use besides its arguments."""

    session: SessionInfo | None = None
    #: the agent's store (``memchat.stores.base.Store``); typed loosely so tools stay importable alone
    store: Any = None
    #: the user's time zone (None: the system's)
    timezone: tzinfo | None = None
    #: search the user's other sessions too (``--recall all``)
    search_all: bool = False
    #: an ``ImageGenerator`` and the directory for its files, when one is configured
    images: Any = None
    images_dir: Any = None
    #: the user's long-term memories (``memchat.memories.MemoryService``), when they are on
    memories: Any = None
    #: what tools report back beyond their text (e.g. saved image files)
    artifacts: list[Any] = field(default_factory=list)
    #: set when the turn is interrupted (Ctrl-C, Stop): a tool that can cancel its work does
    cancelled: threading.Event = field(default_factory=threading.Event)

    def now(self) -> datetime:
        from memchat.clock import now

        return now(self.timezone)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    #: changes something outside the conversation: asks for approval first
    side_effects: bool = False
    timeout: float = DEFAULT_TIMEOUT
    #: the parameter that receives the ``ToolContext`` (None: none)
    context_param: str | None = None

    def schema(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def tool(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    side_effects: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """Turn a typed function into a ``Tool`` (usable bare, ``@tool``, or with options)."""

    def wrap(fn: Callable[..., Any]) -> Tool:
        return make_tool(fn, name=name, description=description, side_effects=side_effects, timeout=timeout)

    return wrap(function) if function is not None else wrap


def make_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    side_effects: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Tool:
    tool_name = name or fn.__name__
    if not _NAME.match(tool_name):
        raise ValueError(f"tool name {tool_name!r}: use 1-64 letters, digits, _ or -")
    summary, arg_docs = _parse_doc(inspect.getdoc(fn) or "")
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # unresolvable annotations
        raise ValueError(f"tool {tool_name}: cannot read its type hints ({exc})") from exc
    properties: dict[str, Any] = {}
    required: list[str] = []
    context_param = None
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        hint = hints.get(param.name, str)
        if hint is ToolContext:
            context_param = param.name
            continue
        schema, optional = _schema(hint, f"{tool_name}.{param.name}")
        if param.name in arg_docs:
            schema["description"] = arg_docs[param.name]
        properties[param.name] = schema
        if param.default is inspect.Parameter.empty and not optional:
            required.append(param.name)
    parameters: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        parameters["required"] = required
    return Tool(
        name=tool_name,
        description=description or summary or tool_name,
        parameters=parameters,
        function=fn,
        side_effects=side_effects,
        timeout=timeout,
        context_param=context_param,
    )


def _schema(hint: Any, where: str) -> tuple[dict[str, Any], bool]:
    """(JSON schema, optional) of a type hint."""
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return _schema(args[0], where)[0], True
        raise ValueError(f"tool parameter {where}: unions other than X | None are not supported")
    if origin is Literal:
        values: list[Any] = list(get_args(hint))
        kinds = {type(v) for v in values}
        schema: dict[str, Any] = {"enum": values}
        if kinds == {str}:
            schema["type"] = "string"
        elif kinds <= {int}:
            schema["type"] = "integer"
        return schema, False
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple):
        item_types = get_args(hint)
        items = _schema(item_types[0], where)[0] if item_types else {}
        return {"type": "array", "items": items}, False
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}
    if hint in simple:
        return {"type": simple[hint]}, False
    raise ValueError(f"tool parameter {where}: type {hint!r} is not supported")


def _parse_doc(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and ``name: text`` lines under an ``Args:`` heading."""
    summary = " ".join(doc.split("\n\n", 1)[0].split())
    args: dict[str, str] = {}
    in_args = False
    current = None
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if not in_args:
            continue
        if not stripped:
            current = None
            continue
        m = re.match(r"^(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$", stripped)
        if m and line.startswith((" ", "\t")) and (current is None or len(line) - len(line.lstrip()) <= 4):
            current = m.group(1)
            args[current] = m.group(2)
        elif current is not None:
            args[current] += " " + stripped
        elif not line.startswith((" ", "\t")):
            in_args = False
    return summary, args
