"""The MCP servers of ``config.toml`` and which of them a run uses (no MCP SDK here: the
settings are read and checked even where the ``mcp`` extra is not installed).

    [mcp.servers.time]                 # stdio: memchat starts the command
    command = "uvx"
    args = ["mcp-server-time", "--local-timezone", "UTC"]
    env = { TOKEN = "…" }              # values are secrets: never shown (***)
    cwd = "/somewhere"                 # optional
    timeout = 30                       # seconds per call (and to start)
    trust = "always"                   # its tools run without asking (default: ask unless read-only)
    enabled = true                     # on unless a run chooses otherwise (default true)

    [mcp.servers.docs]                 # streamable HTTP
    url = "https://example.com/mcp"
    headers = { Authorization = "Bearer …" }

A run uses the enabled servers; ``--mcp NAME[,NAME]`` (or ``MEMCHAT_MCP``) uses exactly those
(a disabled one too), ``--mcp all`` every configured server, ``--mcp none`` none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memchat.errors import ConfigError

#: seconds a call may take (as ``memchat.tools.base.DEFAULT_TIMEOUT``; not imported: reading the
#: settings stays cheap)
DEFAULT_TIMEOUT = 30.0

#: what a server's table may hold, and the TOML type of each
_FIELDS: dict[str, tuple[type, ...]] = {
    "command": (str,),
    "args": (list,),
    "env": (dict,),
    "cwd": (str,),
    "url": (str,),
    "headers": (dict,),
    "enabled": (bool,),
    "timeout": (int, float),
    "trust": (str,),
}
TRUST = ("ask", "always")
HIDDEN = "***"


@dataclass(frozen=True)
class MCPServerConfig:
    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    enabled: bool = True
    timeout: float = DEFAULT_TIMEOUT
    #: ``always``: its tools run without approval; ``ask``: those not marked read-only ask first
    trust: str = "ask"

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    def target(self) -> str:
        """Where the server is, for people (no secrets: env and headers are not part of it)."""
        return self.url or " ".join([self.command or "", *self.args]).strip()

    def shown_env(self) -> dict[str, str]:
        return {k: HIDDEN for k in self.env}

    def shown_headers(self) -> dict[str, str]:
        return {k: HIDDEN for k in self.headers}

    def __repr__(self) -> str:
        return (
            f"MCPServerConfig(name={self.name!r}, target={self.target()!r}, env={self.shown_env()!r}, "
            f"headers={self.shown_headers()!r}, enabled={self.enabled!r}, timeout={self.timeout!r}, "
            f"trust={self.trust!r})"
        )


def has_secrets(table: Any) -> bool:
    """Whether the config file's ``mcp`` table holds env or header values (then it must be 0600)."""
    servers = table.get("servers") if isinstance(table, dict) else None
    if not isinstance(servers, dict):
        return False
    return any(isinstance(s, dict) and (s.get("env") or s.get("headers")) for s in servers.values())


def parse_servers(table: Any, where: Path | str) -> tuple[MCPServerConfig, ...]:
    """The servers of the ``[mcp]`` table; anything malformed is one line naming the setting."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: mcp must be a table ([mcp.servers.NAME])")
    unknown = sorted(set(table) - {"servers"})
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) mcp.{', mcp.'.join(unknown)}; known: mcp.servers")
    servers = table.get("servers", {})
    if not isinstance(servers, dict):
        raise ConfigError(f"{where}: mcp.servers must be a table of servers ([mcp.servers.NAME])")
    return tuple(_server(name, value, where) for name, value in servers.items())


def _server(name: str, value: Any, where: Path | str) -> MCPServerConfig:
    at = f"{where}: mcp.servers.{name}"
    if not isinstance(value, dict):
        raise ConfigError(f"{at} must be a table (command = … or url = …)")
    unknown = sorted(set(value) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{at}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}")
    for key, item in value.items():
        kinds = _FIELDS[key]
        if not isinstance(item, kinds) or (isinstance(item, bool) and bool not in kinds):
            raise ConfigError(f"{at}.{key} has the wrong type ({type(item).__name__})")
    has_command, has_url = bool(value.get("command")), bool(value.get("url"))
    if has_command == has_url:
        raise ConfigError(f"{at} needs either command (a program started over stdio) or url (streamable HTTP)")
    args = value.get("args", [])
    if not all(isinstance(a, str) for a in args):
        raise ConfigError(f"{at}.args must be a list of strings")
    for key in ("env", "headers"):
        if not all(isinstance(v, str) for v in value.get(key, {}).values()):
            raise ConfigError(f"{at}.{key} values must be strings")
    url = value.get("url")
    if url is not None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url.strip())
        except ValueError:
            parts = None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{at}.url {url!r} must start with http:// or https:// and name a host")
        url = url.strip()
    timeout = float(value.get("timeout", DEFAULT_TIMEOUT))
    if not 0 < timeout <= 3600:
        raise ConfigError(f"{at}.timeout must be between 0 and 3600 seconds, not {value['timeout']}")
    trust = str(value.get("trust", "ask")).strip().lower()
    if trust not in TRUST:
        raise ConfigError(f"{at}.trust must be one of {', '.join(TRUST)}, not {value['trust']!r}")
    return MCPServerConfig(
        name=name,
        command=value.get("command"),
        args=tuple(args),
        env=dict(value.get("env", {})),
        cwd=value.get("cwd"),
        url=url,
        headers=dict(value.get("headers", {})),
        enabled=bool(value.get("enabled", True)),
        timeout=timeout,
        trust=trust,
    )


def choose(servers: Sequence[MCPServerConfig], selection: Sequence[str] | None) -> tuple[MCPServerConfig, ...]:
    """The servers a run uses: ``selection`` None → the enabled ones; ``all``; ``none``; or names
    (an unknown one is a one-line error naming the configured servers)."""
    if selection is None:
        return tuple(s for s in servers if s.enabled)
    names = [n.strip() for n in selection if n.strip()]
    lowered = [n.lower() for n in names]
    if not names or lowered == ["none"]:
        return ()
    if "all" in lowered:
        return tuple(servers)
    by_name = {s.name: s for s in servers}
    for n in names:
        if n not in by_name:
            known = ", ".join(by_name) or "none (add [mcp.servers.NAME] to config.toml)"
            raise ConfigError(f"unknown MCP server {n!r} (configured: {known})")
    return tuple(by_name[n] for n in dict.fromkeys(names))
