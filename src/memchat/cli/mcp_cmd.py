"""``/mcp`` in the REPL: the MCP servers of this run (state, tools, resources, prompts; env and
header values shown as ***), ``/mcp attach SERVER URI``: a resource's text goes before the next
message, as named, fenced context, and ``/mcp prompt SERVER NAME [KEY=VALUE …]``: a prompt's text
goes before it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memchat.cli.repl_strings import t

if TYPE_CHECKING:
    from memchat.cli.slash import ReplState, Result


def manager(state: ReplState) -> Any:
    """The run's MCP servers (``memchat.mcp.MCPManager``), or None when none is configured."""
    for source in state.agent.tools.sources:
        if hasattr(source, "servers") and hasattr(source, "attach"):
            return source
    return None


def mcp_command(state: ReplState, arg: str) -> Result:
    found = manager(state)
    if found is None:
        state.ui.info(t("repl.mcp_none"))
        return None
    words = arg.split(None, 2)
    if words and words[0].lower() == "attach":
        if len(words) < 3:
            state.ui.error(t("repl.mcp_attach_usage"))
            return None
        text = found.attach(words[1], words[2].strip())  # a ConfigError is one line (the loop says it)
        state.attached.append(text)
        state.ui.info(t("repl.mcp_attached", uri=words[2].strip(), server=words[1], chars=len(text)))
        return None
    if words and words[0].lower() == "prompt":
        parts = arg.split()[1:]
        pairs = [p.split("=", 1) for p in parts[2:]]
        if len(parts) < 2 or any(len(p) != 2 for p in pairs):
            state.ui.error(t("repl.mcp_prompt_usage"))
            return None
        text = found.prompt(parts[0], parts[1], dict(pairs))
        state.attached.append(text)
        state.ui.info(t("repl.mcp_attached", uri=parts[1], server=parts[0], chars=len(text)))
        return None
    if words:
        state.ui.error(t("repl.mcp_usage"))
        return None
    for server in found.servers():
        state.ui.info(t("repl.mcp_server", name=server.name, transport=server.transport, state=server.state))
        state.ui.note(f"  {server.target}" + "".join(f" {k}=***" for k in {**server.env, **server.headers}))
        if server.error:
            state.ui.note("  " + server.error)
        for tool in server.tools:
            mark = "" if not tool.approval else " " + t("repl.mcp_asks")
            state.ui.info(f"  {t('repl.mcp_tool')} {tool.function}{mark}: {tool.description}")
        for uri, name in server.resources:
            state.ui.info(f"  {t('repl.mcp_resource')} {uri}" + (f" ({name})" if name else ""))
        for name, description in server.prompts:
            state.ui.info(f"  {t('repl.mcp_prompt')} {name}" + (f": {description}" if description else ""))
    return None
