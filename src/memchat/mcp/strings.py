"""What the MCP client says, in English and Chinese. Import ``t`` from here: it registers the strings."""

from __future__ import annotations

from memchat.i18n import add, t

__all__ = ["t"]

add(
    en={
        "mcp.no_sdk": "MCP servers are configured, but the MCP SDK is not installed: pip install 'memchat[mcp]'",
        "mcp.start_failed": "MCP server {server!r} did not start: {error} (its tools are left out)",
        "mcp.crashed": "MCP server {server!r} stopped: {error}; it is restarted at its next use",
        "mcp.restarted": "MCP server {server!r} had stopped: restarted it",
        "mcp.tool_skipped": "MCP server {server!r}: tool {tool!r} skipped: {why}",
        "mcp.why_no_name": "it has no usable name",
        "mcp.why_schema": "its inputSchema is not a JSON object schema",
        "mcp.why_duplicate": "its name {name} is already taken",
        "mcp.unknown_server": "unknown MCP server {server!r} (in use: {known})",
        "mcp.not_running": "MCP server {server!r} is not running ({error})",
        "mcp.read_failed": "could not read {uri} from MCP server {server!r}: {error}",
    },
    zh={
        "mcp.no_sdk": "配置了 MCP 服务器，但未安装 MCP SDK：pip install 'memchat[mcp]'",
        "mcp.start_failed": "MCP 服务器 {server!r} 未能启动：{error}（其工具不可用）",
        "mcp.crashed": "MCP 服务器 {server!r} 已停止：{error}；下次使用时会重新启动",
        "mcp.restarted": "MCP 服务器 {server!r} 曾停止：已重新启动",
        "mcp.tool_skipped": "MCP 服务器 {server!r}：跳过工具 {tool!r}：{why}",
        "mcp.why_no_name": "它没有可用的名称",
        "mcp.why_schema": "它的 inputSchema 不是 JSON 对象模式",
        "mcp.why_duplicate": "名称 {name} 已被占用",
        "mcp.unknown_server": "未知的 MCP 服务器 {server!r}（在用的：{known}）",
        "mcp.not_running": "MCP 服务器 {server!r} 未在运行（{error}）",
        "mcp.read_failed": "无法从 MCP 服务器 {server!r} 读取 {uri}：{error}",
    },
)
