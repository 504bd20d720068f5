"""An ASGI app served by uvicorn on a free loopback port in a thread, for HTTP and browser tests."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """``app`` as ``memchat serve`` runs it (``GracefulServer``), on ``port`` or a free one;
    ``close()`` stops it as Ctrl-C does."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        from memchat.server.serving import GracefulServer

        self.port = port or free_port()
        self.server = GracefulServer(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def serve_process(env: dict[str, str], *args: str) -> tuple[Any, str]:
    """``memchat serve`` in a process of its own on a free port, returned once ``/api/health``
    answers (its output discarded)."""
    import subprocess
    import sys

    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "memchat.cli.main", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.03)
    return proc, url
