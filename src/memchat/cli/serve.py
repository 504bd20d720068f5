"""``memchat serve``: the HTTP API and the web page on uvicorn (``pip install "memchat[server]"``)."""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import TYPE_CHECKING

from memchat.cli.common import UsageError, err, settings_for
from memchat.stores.base import Accounts

if TYPE_CHECKING:
    import argparse

INSTALL = 'the server needs its extra: pip install "memchat[server]"'


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from memchat.server.app import create_app
        from memchat.server.serving import GRACE, serve
    except ImportError as exc:
        raise UsageError(f"{INSTALL} ({exc.name} is missing)") from None
    from memchat.factory import make_agent

    token = os.environ.get("MEMCHAT_SERVER_TOKEN") or None
    settings = settings_for(args, mcp=getattr(args, "mcp", None))
    store = None
    if args.no_migrate:  # several servers on one database: migrations are run once, on purpose
        from memchat.factory import open_store

        store = open_store(settings.db, migrate=False)
    agent = make_agent(settings, store=store)
    for source in agent.tools.sources:  # an MCP server that fails or restarts: one line on stderr
        if hasattr(source, "report"):
            source.report = err
    accounts = isinstance(agent.store, Accounts) and bool(agent.store.users())
    if not _loopback(args.host) and not token and not accounts:
        agent.close()
        raise UsageError(
            f"listening on {args.host} lets other machines in: set MEMCHAT_SERVER_TOKEN to a long random "
            "secret, or add accounts with: memchat users add NAME"
        )
    hosts = ["127.0.0.1", "localhost", "[::1]", *(args.allow_host or [])]
    if not _loopback(args.host) and args.host not in ("0.0.0.0", "::"):
        hosts.append(args.host)
    redis_url = os.environ.get("MEMCHAT_REDIS_URL") or None
    shown = f"[{args.host}]" if ":" in args.host else args.host
    if args.workers > 1:
        if not redis_url:
            agent.close()
            raise UsageError("several workers share turns through Redis: set MEMCHAT_REDIS_URL (redis://…)")
        agent.close()
        # each worker builds its app from the environment: hand the resolved settings over
        os.environ.update(
            {
                "MEMCHAT_DB": settings.db,
                "MEMCHAT_PROVIDER": settings.provider,
                "MEMCHAT_ALLOWED_HOSTS": ",".join(hosts),
                **({"MEMCHAT_BASE_URL": settings.base_url} if settings.base_url else {}),
                **({"MEMCHAT_MODEL": settings.model} if "model" in settings.sources else {}),
                **({"MEMCHAT_NO_MIGRATE": "1"} if args.no_migrate else {}),
                **({"MEMCHAT_MCP": ",".join(settings.mcp)} if settings.mcp is not None else {}),
            }
        )
        err(f"serving on http://{shown}:{args.port}/ with {args.workers} workers (Ctrl-C to stop)")
        uvicorn.run(  # each worker's turn streams are cut after a few seconds, kept as stopped
            "memchat.server.app:from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=GRACE,
        )
        return 0
    app = create_app(agent, hosts=hosts, token=token, redis_url=redis_url)
    err(f"serving on http://{shown}:{args.port}/ (Ctrl-C to stop)")
    try:
        serve(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        agent.close()
    sys.stderr.flush()
    return 0
