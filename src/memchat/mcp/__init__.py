"""MCP servers' tools, resources and prompts (the ``mcp`` extra: the protocol's official Python
SDK). An adapter: only the factory and the interfaces import it; the core sees plain ``Tool``
objects through the ``ToolSource`` port (``MCPManager`` is one).

``manager``    the servers of one process: started on first use, restarted after a crash, stopped on close
``connection`` one server: its transport (stdio or streamable HTTP), session, tools, resources, prompts
``names``      MCP tool names as OpenAI function names (``time__get_current_time``)
``results``    what a call or a read returns, as the text the model or the user sees
``strings``    what it says, in English and Chinese
"""

from memchat.mcp.manager import MCPManager, require_sdk

__all__ = ["MCPManager", "require_sdk"]
