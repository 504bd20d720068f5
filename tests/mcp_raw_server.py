"""An MCP server over stdio written by hand (newline-delimited JSON-RPC), because the SDK's own
server will not list a malformed tool: it offers ``ok`` (fine), ``bad_schema`` (its inputSchema is
a string schema, not an object), ``bad_array`` (an array schema) and a tool whose name is empty."""

from __future__ import annotations

import json
import sys

TOOLS = [
    {
        "name": "ok",
        "description": "fine",
        "inputSchema": {"type": "object", "properties": {}},
        "annotations": {"readOnlyHint": True},
    },
    {"name": "bad_schema", "description": "malformed", "inputSchema": {"type": "string"}},
    {"name": "bad_array", "description": "malformed", "inputSchema": {"type": "array", "items": {}}},
    {"name": "", "description": "no name", "inputSchema": {"type": "object"}},
]


def answer(request: dict) -> dict | None:
    method = request.get("method")
    if "id" not in request:
        return None  # a notification
    if method == "initialize":
        result = {
            "protocolVersion": request["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "raw", "version": "1"},
        }
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        result = {"content": [{"type": "text", "text": "ok called"}], "isError": False}
    elif method == "ping":
        result = {}
    else:
        return {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": f"no {method}"}}
    return {"jsonrpc": "2.0", "id": request["id"], "result": result}


for line in sys.stdin:
    if line.strip():
        reply = answer(json.loads(line))
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
