"""What the server tells the page (issue 17): its messages in the language the request asks for
(``Accept-Language``; the page sends the one it shows), whatever the process's own, and a server
stopped mid-reply (Ctrl-C) ends the reply's stream at once with a ``done`` that says so, the
partial reply kept as stopped, instead of holding the stream open until the reply is written."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from fakeserver import FakeReply, FakeServer

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


def test_errors_come_in_the_language_the_request_asks_for(serve: Any) -> None:
    _, client, _ = serve()  # the process speaks English (MEMCHAT_LANG=en)
    sid = client.post("/api/sessions", json={"name": "旅行"}).json()["id"]
    client.post("/api/sessions", json={"name": "trip"})
    taken = client.patch(f"/api/sessions/{sid}", json={"name": "trip"}, headers=ZH)
    assert taken.status_code == 409 and taken.json()["error"]["message"] == "已有名为“trip”的会话；请换一个名字"
    english = client.patch(f"/api/sessions/{sid}", json={"name": "trip"})
    assert english.json()["error"]["message"] == "a session named 'trip' already exists; choose another name"
    missing = client.get("/api/sessions/999", headers=ZH)
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "没有会话 999"
    assert client.get("/api/sessions/999").json()["error"]["message"] == "no session 999"
    # the guard's own refusals too, and q-values decide
    refused = client.post("/api/sessions", content=b"x", headers={**ZH, "Content-Type": "text/plain"})
    assert refused.status_code == 415 and refused.json()["error"]["message"].startswith("请发送 JSON")
    prefers_english = {"Accept-Language": "zh;q=0.3, en-GB;q=0.9"}
    assert client.get("/api/sessions/999", headers=prefers_english).json()["error"]["message"] == "no session 999"
    # a language memchat does not speak: the process's own
    assert client.get("/api/sessions/999", headers={"Accept-Language": "fr"}).json()["error"]["message"] == (
        "no session 999"
    )


def test_a_failed_turn_says_why_in_the_language_asked(serve: Any, fake: FakeServer) -> None:
    _, client, _ = serve()
    sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
    fake.script(FakeReply.server_error(500))
    response = client.post(f"/api/sessions/{sid}/turns", json={"text": "hi"}, headers=ZH)
    error = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")][-1]
    assert error["message"].startswith("模型服务出错"), error


def test_a_server_stopped_mid_reply_ends_the_stream_and_says_so(serve: Any, fake: FakeServer) -> None:
    served, client, agent = serve()
    sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
    fake.script(FakeReply.text(*[f"part{k} " for k in range(400)], delay=0.05))  # 20 s of reply
    frames: list[tuple[str, dict[str, Any]]] = []
    got_text = threading.Event()
    ended = threading.Event()

    def read() -> None:
        kind = ""
        with httpx.Client(base_url=client.base_url, timeout=30) as reader:
            with reader.stream("POST", f"/api/sessions/{sid}/turns", json={"text": "a long story"}) as r:
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        frames.append((kind, json.loads(line[6:])))
                        got_text.set()
        ended.set()

    thread = threading.Thread(target=read)
    thread.start()
    assert got_text.wait(5)
    closing = threading.Thread(target=served.close)  # Ctrl-C: uvicorn's graceful shutdown
    closing.start()
    assert ended.wait(4), "the stream stayed open until the reply was written"
    closing.join(10)
    thread.join(5)
    kind, done = frames[-1]
    assert kind == "done" and done["status"] == "stopped" and done["reason"] == "shutdown"
    text = "".join(d["text"] for k, d in frames if k == "delta")
    assert 0 < len(text) < len("".join(f"part{k} " for k in range(400)))
    kept = agent.store.messages(sid)[-1]
    assert kept.status.value == "stopped" and kept.content == text
    fake.reset()  # the upstream stops streaming too
