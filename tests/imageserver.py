"""A real loopback image server for tests and trying memchat by hand (stdlib only).

It speaks ModelScope's asynchronous text-to-image protocol (``shared/api-protocols.md`` §2)
and OpenAI's images API (§3) on one port:

- ``POST /v1/images/generations`` with ``X-ModelScope-Async-Mode: true`` → ``{"task_id": …}``
  (without the header in ``modelscope`` mode: ModelScope's 400 "does not support synchronous
  calls"); ``GET /v1/tasks/{id}`` (requires ``X-ModelScope-Task-Type: image_generation``) walks
  ``PENDING`` → ``RUNNING`` → ``SUCCEED`` over successive polls; the image is a real PNG at
  ``/files/{name}.png``.
- in ``openai`` mode (``server.mode = "openai"``) the same POST answers at once with
  ``data: [{"b64_json" …}]`` or ``[{"url" …}]`` (``response_format`` / ``server.openai_urls``).

Misbehaviour is scripted per task with ``server.script(Task(...))``: ``fail`` (FAILED with
ModelScope's 422 body), ``never`` (stays RUNNING), ``polls`` (how many polls before SUCCEED),
``image`` (``"png"``, ``"text"`` with a wrong content type, ``"fake"`` (image/png that is not
one), ``"huge"``, ``"redirect"`` to another host, ``"none"``: SUCCEED without an image); and per
request with ``server.http_errors`` (a queue of (status, body, headers) answered before anything
else) or ``server.faults`` (a queue of ``Fault``: silence before answering, a dropped connection, a
body that is not JSON; ``None`` lets that request through), which comes first.

Standalone: ``python tests/imageserver.py --port 0 [--mode openai] [--api-key K]`` prints its
base URL (``http://127.0.0.1:PORT/v1``) first, then serves until killed.
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MS_AUTH = "Authentication failed, please make sure that a valid ModelScope token is supplied."
MS_SYNC = (
    "image-gen task currently does not support synchronous calls. Please refer to the documentation and set "
    "header X-ModelScope-Async-Mode=true to switch to asynchronous calling mode"
)


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, TimeoutError)):
            return  # the client went away (a fault test cut it): not news
        super().handle_error(request, client_address)


@dataclass
class Task:
    """How the next submitted task behaves."""

    polls: int = 2  # polls answered PENDING/RUNNING before SUCCEED
    fail: bool = False
    never: bool = False
    image: str = "png"  # png | text | fake | huge | redirect
    images: int = 1


@dataclass
class Fault:
    """How the next API request (not a file download) is answered; ``None`` in ``faults``: normally."""

    status: int = 200
    body: Any = None  # JSON; with ``raw`` unset and ``status`` 200 and no body, the request goes through
    raw: bytes | None = None  # a body written verbatim (``text/plain``)
    headers: dict[str, str] = field(default_factory=dict)
    wait: float = 0.0  # seconds of silence first (ended early by ``reset``)
    drop: bool = False  # then close the connection without answering


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = 0.0  # ``time.monotonic()`` when it arrived


class ImageServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.mode = "modelscope"
        self.openai_urls = False
        self.requests: list[Recorded] = []
        self.http_errors: deque[tuple[int, Any, dict[str, str]]] = deque()
        self.faults: deque[Fault | None] = deque()
        self._abort = threading.Event()
        #: connections accepted since the last ``reset`` (a TLS handshake on this plain port too)
        self.connections = 0
        self._scripts: deque[Task] = deque()
        self._tasks: dict[str, dict[str, Any]] = {}
        self._files: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self.redirect_to = "http://127.0.0.2:9/elsewhere.png"
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server.connections += 1

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        self._httpd = _QuietServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> ImageServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._abort.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def script(self, *tasks: Task) -> None:
        with self._lock:
            self._scripts.extend(tasks)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.http_errors.clear()
            self.faults.clear()
            self.connections = 0
            old, self._abort = self._abort, threading.Event()
        old.set()
        with self._lock:
            self._scripts.clear()
            self._tasks.clear()
            self._seq = 0
        self.mode, self.openai_urls, self.api_key = "modelscope", False, None

    def polls(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/v1/tasks/")]

    # -- the protocol -----------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = h.path.split("?")[0]
        with self._lock:
            headers = {k.lower(): v for k, v in h.headers.items()}
            self.requests.append(Recorded(method, path, headers, body, time.monotonic()))
        if path.startswith("/files/"):
            self._file(h, path.removeprefix("/files/"))
            return
        if self.api_key and h.headers.get("authorization") != f"Bearer {self.api_key}":
            self._json(h, 401, {"errors": {"message": MS_AUTH}, "request_id": "req-auth"})
            return
        with self._lock:
            fault = self.faults.popleft() if self.faults else None
            abort = self._abort
        if fault is not None and self._fault(h, fault, abort):
            return
        with self._lock:
            scripted = self.http_errors.popleft() if self.http_errors else None
        if scripted is not None:
            self._json(h, *scripted)
            return
        if method == "POST" and path == "/v1/images/generations":
            self._submit(h, body if isinstance(body, dict) else {})
        elif method == "GET" and path.startswith("/v1/tasks/"):
            self._poll(h, path.removeprefix("/v1/tasks/"))
        else:
            self._json(h, 404, {"error": {"message": f"no route {method} {path}"}})

    def _fault(self, h: BaseHTTPRequestHandler, fault: Fault, abort: threading.Event) -> bool:
        """Play ``fault``; False when it lets the request through (after its wait)."""
        if fault.wait and abort.wait(fault.wait):
            h.close_connection = True
            return True
        if fault.drop:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return True
        if fault.raw is not None:
            h.send_response(fault.status)
            h.send_header("Content-Type", "text/plain; charset=utf-8")
            h.send_header("Content-Length", str(len(fault.raw)))
            for k, v in fault.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(fault.raw)
            return True
        if fault.status != 200 or fault.body is not None:
            self._json(h, fault.status, fault.body, fault.headers)
            return True
        return False

    def _submit(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if not body.get("prompt") or not body.get("model"):
            self._json(h, 400, {"errors": {"message": "model and prompt are required"}, "request_id": "req-bad"})
            return
        if self.mode == "openai":
            self._openai(h, body)
            return
        if h.headers.get("x-modelscope-async-mode") != "true":
            self._json(h, 400, {"errors": {"message": MS_SYNC}, "request_id": "req-sync"})
            return
        with self._lock:
            self._seq += 1
            task_id = f"task-{self._seq}"
            script = self._scripts.popleft() if self._scripts else Task()
            self._tasks[task_id] = {"script": script, "polls": 0, "seq": self._seq}
        self._json(h, 200, {"task_id": task_id, "request_id": f"req-{task_id}"})

    def _poll(self, h: BaseHTTPRequestHandler, task_id: str) -> None:
        if h.headers.get("x-modelscope-task-type") != "image_generation":
            self._json(h, 400, {"errors": {"message": "missing X-ModelScope-Task-Type"}, "request_id": "req-type"})
            return
        with self._lock:
            task = self._tasks.get(task_id)
            if task is not None:
                task["polls"] += 1
        if task is None:
            self._json(h, 404, {"errors": {"message": f"task {task_id} not found"}, "request_id": "req-404"})
            return
        script: Task = task["script"]
        n = task["polls"]
        base = {"task_id": task_id, "request_id": f"req-{task_id}"}
        if script.never or n <= script.polls:
            self._json(h, 200, {**base, "task_status": "PENDING" if n == 1 else "RUNNING"})
        elif script.fail:
            errors = {"code": 422, "message": "Output data may contain inappropriate content."}
            self._json(h, 200, {**base, "task_status": "FAILED", "errors": errors})
        else:
            urls = (
                []
                if script.image == "none"
                else [self._publish(script.image, task["seq"] * 10 + k) for k in range(script.images)]
            )
            self._json(h, 200, {**base, "task_status": "SUCCEED", "output_images": urls})

    def _openai(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        n = int(body.get("n") or 1)
        with self._lock:
            self._seq += 1
            seq = self._seq
        items = []
        for k in range(n):
            data = png(rgb=((seq * 40 + k * 20) % 256, 90, 160))
            if self.openai_urls:
                items.append({"url": self._publish("png", seq * 10 + k), "revised_prompt": None})
            else:
                items.append(
                    {"b64_json": base64.b64encode(data).decode(), "revised_prompt": "revised: " + body["prompt"]}
                )
        self._json(h, 200, {"created": 1, "data": items})

    def _publish(self, kind: str, seed: int) -> str:
        name = f"img-{seed}"
        if kind == "redirect":
            self._files[name] = (b"", "redirect")
        elif kind == "text":
            self._files[name] = (b"<html>not an image</html>", "text/html")
        elif kind == "fake":
            self._files[name] = (b"GIF89a but declared png" * 4, "image/png")
        elif kind == "huge":
            self._files[name] = (png() + b"\x00" * 3_000_000, "image/png")
        else:
            self._files[name] = (png(rgb=((seed * 53) % 256, (seed * 29) % 256, 120)), "image/png")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/files/{name}.png"

    def _file(self, h: BaseHTTPRequestHandler, name: str) -> None:
        data, ctype = self._files.get(name.removesuffix(".png"), (b"", ""))
        if ctype == "redirect":
            h.send_response(302)
            h.send_header("Location", self.redirect_to)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if not ctype:
            self._json(h, 404, {"error": {"message": "no such file"}})
            return
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _json(h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A loopback ModelScope/OpenAI image server (prints its base URL).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=("modelscope", "openai"), default="modelscope")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--polls", type=int, default=2, help="polls before a task succeeds")
    args = parser.parse_args(argv)
    server = ImageServer(args.host, args.port, api_key=args.api_key)
    server.mode = args.mode
    server.script(*[Task(polls=args.polls) for _ in range(1000)])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(server.url, flush=True)
    server.start()
    try:
        server._thread.join()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
