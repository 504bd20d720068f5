"""The floor of ``bench_server.py --floor``: the least a Python proxy on this machine adds.

A bare ASGI app on uvicorn (no framework, no database, no memory): it answers the few routes the
benchmark calls, and a turn is one streamed request to the model server whose text deltas go
back as Server-Sent Events framed as memchat frames them (``id:``, ``event: delta``, ``data:``
JSON, then ``done``). What it adds over the model server is what uvicorn, httpx and one Python
process add on these cores; memchat's figure is read against it.

    python bench/floor_proxy.py --port PORT --upstream http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import uvicorn

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def make_app(upstream: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    client = httpx.AsyncClient(timeout=120, limits=limits)
    ids = itertools.count(1)

    async def body_of(receive: Receive) -> bytes:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    async def answer(send: Send, status: int, data: Any) -> None:
        body = json.dumps(data).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def turn(receive: Receive, send: Send) -> None:
        text = json.loads(await body_of(receive))["text"]
        request = {
            "model": "fake/model-a",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": text}],
        }
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        n = 0
        parts = []
        async with client.stream("POST", upstream + "/chat/completions", json=request) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                choices = chunk.get("choices") or []
                content = (choices[0].get("delta") or {}).get("content") if choices else None
                if content:
                    n += 1
                    parts.append(content)
                    data = json.dumps({"text": content}, ensure_ascii=False)
                    frame = f"id: {n}\nevent: delta\ndata: {data}\n\n".encode()
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
        done = json.dumps({"status": "complete", "text": "".join(parts)}, ensure_ascii=False)
        frame = f"id: {n + 1}\nevent: done\ndata: {done}\n\n".encode()
        await send({"type": "http.response.body", "body": frame})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/api/health":
            await answer(send, 200, {"ok": True})
        elif path == "/api/sessions" and method == "POST":
            await body_of(receive)
            await answer(send, 201, {"id": next(ids)})
        elif path.endswith("/turns") and method == "POST":
            await turn(receive, send)
        else:
            await answer(send, 404, {"error": {"code": "not_found", "message": path}})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvicorn.run(make_app(args.upstream), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
