"""Run one tool call and turn whatever happens into the text the model sees.

Unknown tools, arguments that are not JSON or fail the schema, a tool that raises or runs
past its timeout: each becomes an error result (``ToolResult.error``) the model can react
to — never an exception out of the turn.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from memchat.domain import ToolCall, ToolResult
from memchat.tools.base import Tool, ToolContext, ToolError

#: a result longer than this is cut (the model's context is precious)
MAX_RESULT_CHARS = 16_000


def run_call(tools: Mapping[str, Tool], call: ToolCall, context: ToolContext) -> ToolResult:
    start = time.perf_counter()

    def fail(message: str) -> ToolResult:
        return ToolResult(call, f"error: {message}", error=True, seconds=time.perf_counter() - start)

    found = tools.get(call.name)
    if found is None:
        known = ", ".join(sorted(tools)) or "none"
        return fail(f"there is no tool named {call.name!r} (available: {known})")
    try:
        args = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        return fail(f"the arguments are not valid JSON ({exc.msg} at character {exc.pos})")
    if not isinstance(args, dict):
        return fail("the arguments must be a JSON object")
    problem = check_arguments(found.parameters, args)
    if problem:
        return fail(problem)
    if found.context_param:
        args[found.context_param] = context
    result = _call_with_timeout(found, args)
    seconds = time.perf_counter() - start
    if isinstance(result, BaseException):
        if isinstance(result, TimeoutError):
            return ToolResult(call, f"error: the tool did not finish within {found.timeout:g} s", True, seconds)
        if isinstance(result, ToolError):
            return ToolResult(call, _cut(f"error: {result}"), True, seconds)
        return ToolResult(call, f"error: {type(result).__name__}: {result}", True, seconds)
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
    return ToolResult(call, _cut(text), False, seconds)


def _cut(text: str) -> str:
    if len(text) > MAX_RESULT_CHARS:
        return text[:MAX_RESULT_CHARS] + f" … [cut: {len(text):,} characters]"
    return text


def _call_with_timeout(found: Tool, args: dict[str, Any]) -> Any:
    """The tool's return value, or the exception it raised, or ``TimeoutError``. A tool that
    overruns keeps running in its daemon thread (Python cannot kill a thread); the turn goes on."""
    box: list[Any] = []
    done = threading.Event()

    def work() -> None:
        try:
            box.append(found.function(**args))
        except BaseException as exc:  # reported to the model as the result
            box.append(exc)
        finally:
            done.set()

    threading.Thread(target=work, name=f"memchat-tool-{found.name}", daemon=True).start()
    if not done.wait(found.timeout):
        return TimeoutError()
    return box[0]


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def check_arguments(schema: Mapping[str, Any], args: Mapping[str, Any]) -> str:
    """ "" when ``args`` fit the tool's (simple, generated) JSON schema, else what is wrong."""
    props: Mapping[str, Any] = schema.get("properties") or {}
    missing = [n for n in schema.get("required") or () if n not in args]
    if missing:
        return "missing required argument(s): " + ", ".join(missing)
    if schema.get("additionalProperties") is False:
        extra = [n for n in args if n not in props]
        if extra:
            return "unknown argument(s): " + ", ".join(extra) + f" (expected: {', '.join(props) or 'none'})"
    for name, value in args.items():
        problem = _check(props.get(name) or {}, value, name)
        if problem:
            return problem
    return ""


def _check(schema: Mapping[str, Any], value: Any, where: str) -> str:
    if value is None:
        return ""  # optional parameters may be null
    kind = schema.get("type")
    if isinstance(kind, str) and kind in _TYPES:  # a list of types (an MCP server's schema): not checked
        ok = isinstance(value, _TYPES[kind]) and not (kind in ("integer", "number") and isinstance(value, bool))
        if not ok:
            return (
                f"argument {where} must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not {json.dumps(value)[:60]}"
            )
    if "enum" in schema and value not in schema["enum"]:
        return f"argument {where} must be one of {', '.join(map(json.dumps, schema['enum']))}"
    if kind == "array" and schema.get("items"):
        for i, item in enumerate(value):
            problem = _check(schema["items"], item, f"{where}[{i}]")
            if problem:
                return problem
    return ""


__all__ = ["MAX_RESULT_CHARS", "check_arguments", "run_call"]
