"""Attachments (issue 18): files sent with a message, through the core against the loopback model
server (the exact content parts it receives), the stores (once by hash, per owner), memory (a
description, never the bytes) and the refusals (size, type by bytes, a text-only model)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from attachfiles import pdf, png
from fakeserver import FakeServer
from memchat import Agent
from memchat.attachments import IMAGE_TOKENS, from_bytes, from_data_uri, from_path, image_tokens
from memchat.config import default_db_path
from memchat.domain import Message, Role
from memchat.errors import AttachmentError, AttachmentTooLarge, ImagesNotAccepted
from memchat.factory import open_store
from memchat.i18n import describe_error
from memchat.providers.openai_compat import OpenAICompatible


def data_uri(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


#: what a test opened (agents, stores), closed after it (an open socket or database would warn)
_OPEN: list[Any] = []


@pytest.fixture(autouse=True)
def _close_what_was_opened() -> Any:
    yield
    while _OPEN:
        _OPEN.pop().close()


def opened(thing: Any) -> Any:
    _OPEN.append(thing)
    return thing


def make_agent(fake: FakeServer, tmp_path: Path, model: str = "gpt-4o-mini", **kw: Any) -> Agent:
    provider = OpenAICompatible(fake.url, api_key="sk-test", model=model, max_retries=0)
    return opened(Agent(open_store(tmp_path / "a.db"), provider, date_line=False, **kw))


# -- the turn: what the model receives -------------------------------------------------------


def test_an_image_reaches_a_vision_model_as_an_image_url_part(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path)
    image = png()
    reply = agent.ask("s", "what colour is this?", attachments=[from_bytes("photo.png", image)])
    assert reply.text.startswith("echo:")
    assert fake.chat_requests[-1].messages[-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "what colour is this?"},
            {"type": "image_url", "image_url": {"url": data_uri(image)}},
        ],
    }
    stored = agent.store.messages("s")[0]
    assert stored.content == "what colour is this?"  # the bytes are not in the text column
    assert [(a.name, a.media_type, a.size) for a in stored.attachments] == [("photo.png", "image/png", len(image))]
    assert agent.store.attachment_data(hashlib.sha256(image).hexdigest()) == image


def test_later_turns_carry_the_description_not_the_image_again(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path)
    image = png()
    agent.ask("s", "look", attachments=[from_bytes("photo.png", image)])
    agent.ask("s", "and now?")
    sent = fake.chat_requests[-1].messages
    assert sent[0] == {"role": "user", "content": f"look\n[attachment: photo.png, image/png, {len(image)} B]"}
    assert sent[-1] == {"role": "user", "content": "and now?"}
    assert "base64" not in str(sent)


def test_text_files_go_fenced_and_named_and_a_pdf_as_its_text(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path, model="fake/text-model")
    code = tmp_path / "tool.py"
    code.write_text("def f():\n    return 1\n")
    files = [from_path(code), from_bytes("report.pdf", pdf("Revenue grew nine percent"))]
    agent.ask("s", "review", attachments=files)
    content = fake.chat_requests[-1].messages[-1]["content"]
    assert content == (
        "review\n\n```python title=tool.py\ndef f():\n    return 1\n```\n\n"
        "```text title=report.pdf\nRevenue grew nine percent\n```"
    )
    stored = agent.store.messages("s")[0]
    assert stored.described.splitlines()[1:] == [
        f"[attachment: tool.py, text/x-python, {code.stat().st_size} B]",
        f"[attachment: report.pdf, application/pdf, {len(pdf('Revenue grew nine percent'))} B]",
    ]


def test_a_text_only_model_refuses_an_image_before_the_call(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path, model="fake/text-model")
    with pytest.raises(ImagesNotAccepted) as caught:
        agent.ask("s", "look", attachments=[from_bytes("photo.png", png())])
    line = describe_error(caught.value)
    assert "fake/text-model takes text only" in line and "photo.png" in line and "\n" not in line
    assert fake.chat_requests == []
    assert agent.store.list_sessions() == []  # nothing stored, not even the session


def test_vision_setting_marks_a_model_that_takes_images(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path, model="fake/text-model", vision=True)
    agent.ask("s", "look", attachments=[from_bytes("photo.png", png())])
    assert fake.chat_requests[-1].messages[-1]["content"][1]["type"] == "image_url"


def test_the_embedded_model_takes_text_only(tmp_path: Path) -> None:
    from memchat.providers.local_llama import LocalLlama

    assert LocalLlama.accepts_images is False
    store = opened(open_store(tmp_path / "a.db"))
    agent = Agent(store, LocalLlama.__new__(LocalLlama), model="SmolLM2-135M-Instruct")
    assert not agent.takes_images()
    agent.vision = True  # a configured vision flag cannot make the embedded model see
    assert not agent.takes_images()


def test_a_file_too_big_for_the_budget_is_one_line(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path, model="fake/text-model", context_window=2048)
    big = ("word " * 6000).encode()
    with pytest.raises(AttachmentError) as caught:
        agent.ask("s", "summarize", attachments=[from_bytes("notes.txt", big)])
    assert "notes.txt needs about" in str(caught.value) and "attach a part of it" in str(caught.value)
    assert fake.chat_requests == [] and agent.store.list_sessions() == []


def test_an_image_is_counted_against_the_budget(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path)
    turn = agent.stream("s", "look", attachments=[from_bytes("photo.png", png())])
    new = turn.plan.entries[-1]
    assert new.tokens >= image_tokens(png()) == 85 + 170 and "[attachment: photo.png" in new.content
    turn.close()


def test_a_failed_call_leaves_no_message_and_no_file(fake: FakeServer, tmp_path: Path) -> None:
    from fakeserver import FakeReply

    agent = make_agent(fake, tmp_path)
    agent.ask("s", "hello")
    fake.script(FakeReply.server_error(500))
    image = png(rgb=(1, 2, 3))
    with pytest.raises(Exception, match="error"):
        agent.ask("s", "look", attachments=[from_bytes("photo.png", image)])
    assert len(agent.store.messages("s")) == 2
    assert agent.store.attachment_data(hashlib.sha256(image).hexdigest()) is None


def test_a_retry_sends_the_image_again(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path)
    image = png()
    agent.ask("s", "look", attachments=[from_bytes("photo.png", image)])
    for _ in agent.retry("s"):
        pass
    assert fake.chat_requests[-1].messages[-1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": data_uri(image)},
    }


# -- reading files: size and type by bytes ----------------------------------------------------


def test_a_50_mb_file_is_refused_in_one_line_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "video.bin"
    with big.open("wb") as f:
        f.truncate(50 * 1024 * 1024)
    with pytest.raises(AttachmentTooLarge) as caught:
        from_path(big)
    assert describe_error(caught.value) == (
        "cannot attach video.bin: it is 50.0 MB, over the limit of 20.0 MB "
        "(set max_attachment or MEMCHAT_MAX_ATTACHMENT to raise it)"
    )


@pytest.mark.parametrize(
    ("name", "data", "declared", "says"),
    [
        ("photo.png", b"GIF89a" + b"\x00" * 20, None, "photo.png is named as image/png but its bytes are image/gif"),
        ("photo.png", b"just some text", None, "photo.png is not an image/png file"),
        ("notes.txt", b"\x00\x01\x02binary", None, "neither text"),
        ("x", png(), "image/jpeg", "x was sent as image/jpeg but its bytes are image/png"),
        ("x", b"hello", "image/png", "x was sent as image/png but its bytes are not"),
        ("latin.txt", "café".encode("latin-1"), None, "neither text"),
    ],
)
def test_bytes_that_are_not_their_type_are_refused(name: str, data: bytes, declared: str | None, says: str) -> None:
    with pytest.raises(AttachmentError, match=says.replace("(", r"\(")):
        from_bytes(name, data, declared=declared)


def test_types_are_read_from_the_bytes() -> None:
    assert from_bytes("a.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 10).media_type == "image/jpeg"
    assert from_bytes("a.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ").media_type == "image/webp"
    assert from_bytes("doc", pdf()).media_type == "application/pdf"
    assert from_bytes("README.md", "# 标题\n".encode()).media_type == "text/markdown"
    assert from_data_uri(data_uri(png())).name == "image.png"


# -- the stores: once by hash, per owner ------------------------------------------------------


def test_store_keeps_each_file_once_and_for_its_owner_only(store: Any) -> None:
    image = png()
    a = from_bytes("one.png", image)
    b = from_bytes("two.png", image)  # the same bytes under another name
    info = store.create_session("s")
    store.append_messages(info.id, [Message(Role.USER, "first", attachments=(a,))])
    store.append_messages(info.id, [Message(Role.USER, "second", attachments=(b,))])
    msgs = store.messages(info.id)
    assert [[x.name for x in m.attachments] for m in msgs] == [["one.png"], ["two.png"]]
    assert msgs[0].attachments[0].sha256 == msgs[1].attachments[0].sha256 == hashlib.sha256(image).hexdigest()
    assert store.attachment_data(a.sha256) == image and store.attachment_type(a.sha256) == "image/png"
    rows = store._read("SELECT COUNT(*) FROM attachments")
    assert rows[0][0] == 1
    other_id, _ = store.add_user("mallory")
    other = store.for_owner(other_id)
    assert other.attachment_data(a.sha256) is None and other.attachment_type(a.sha256) is None


def test_search_finds_a_message_by_its_file_name(store: Any) -> None:
    info = store.create_session("s")
    store.append_messages(info.id, [Message(Role.USER, "see", attachments=(from_bytes("budget-2026.csv", b"a,b\n"),))])
    hits = store.search_words(["budget"], session=info.id)
    assert [h.message.content for h in hits] == ["see"]


# -- memchat ask -a ---------------------------------------------------------------------------


def ask(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    full = {**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "memchat.cli.main", "ask", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=full,
        timeout=60,
    )


@pytest.fixture
def cli_model(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    monkeypatch.setenv("MEMCHAT_PROVIDER", "compat")
    monkeypatch.setenv("MEMCHAT_BASE_URL", fake.url)
    monkeypatch.setenv("MEMCHAT_MODEL", "gpt-4o")
    return fake


def test_ask_attach_sends_an_image_and_a_text_file(cli_model: FakeServer, tmp_path: Path) -> None:
    image, notes = tmp_path / "photo.png", tmp_path / "notes.md"
    image.write_bytes(png())
    notes.write_text("# Plan\nship it\n")
    done = ask("-a", str(image), "--attach", str(notes), "what is this?")
    assert done.returncode == 0, done.stderr
    assert cli_model.chat_requests[-1].messages[-1]["content"] == [
        {"type": "text", "text": "what is this?\n\n```markdown title=notes.md\n# Plan\nship it\n```"},
        {"type": "image_url", "image_url": {"url": data_uri(png())}},
    ]
    with open_store(default_db_path()) as store:
        info = store.list_sessions()[0]
        stored = store.messages(info.id)[0]
        assert [a.name for a in stored.attachments] == ["photo.png", "notes.md"]
    shown = subprocess.run(
        [sys.executable, "-m", "memchat.cli.main", "sessions", "show", info.name], capture_output=True, text=True
    )
    assert "    📎 photo.png (image/png, 73 B)\n    📎 notes.md (text/markdown, 15 B)" in shown.stdout, shown


def test_ask_attach_dash_takes_stdin_bytes_as_the_file(cli_model: FakeServer) -> None:
    done = ask("-a", "-", "describe it", stdin=png())
    assert done.returncode == 0, done.stderr
    content = cli_model.chat_requests[-1].messages[-1]["content"]
    assert content == [
        {"type": "text", "text": "describe it"},
        {"type": "image_url", "image_url": {"url": data_uri(png())}},
    ]


def test_ask_attach_refusals_are_one_line_and_store_nothing(cli_model: FakeServer, tmp_path: Path) -> None:
    fake_png = tmp_path / "cat.png"
    fake_png.write_text("not a picture")
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        f.truncate(50 * 1024 * 1024)
    image = tmp_path / "photo.png"
    image.write_bytes(png())
    cases = [
        (ask("-a", str(fake_png), "hi"), "cannot attach cat.png: it is not an image/png file"),
        (ask("-a", str(big), "hi"), "cannot attach big.txt: it is 50.0 MB, over the limit of 20.0 MB"),
        (ask("-a", str(tmp_path / "missing.txt"), "hi"), "cannot read"),
        (ask("-a", str(image), "hi", env={"MEMCHAT_MODEL": "fake/text-model"}), "takes text only"),
    ]
    for done, says in cases:
        err = done.stderr.decode()
        assert done.returncode != 0 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert says in err, err
    assert cli_model.chat_requests == []
    with open_store(default_db_path()) as store:
        assert store.list_sessions() == []
        assert store._read("SELECT COUNT(*) FROM attachments")[0][0] == 0


def test_ask_vision_flag_marks_the_model(cli_model: FakeServer, tmp_path: Path) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(png())
    done = ask("--vision", "-a", str(image), "hi", env={"MEMCHAT_MODEL": "fake/text-model"})
    assert done.returncode == 0, done.stderr
    assert cli_model.chat_requests[-1].messages[-1]["content"][1]["type"] == "image_url"


# -- the HTTP API: turns with files, the file served to its owner only, /v1 content parts ----------


def sse_events(response: Any) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


def upload(name: str, data: bytes, kind: str | None = None) -> dict[str, Any]:
    return {"name": name, "type": kind, "data": base64.b64encode(data).decode()}


def test_a_turn_with_an_image_through_the_api_is_sent_stored_and_served(serve: Any, fake: FakeServer) -> None:
    _, client, agent = serve()
    agent.vision = True
    image = png()
    response = client.post(
        "/api/sessions/turns", json={"text": "what is it?", "attachments": [upload("cat.png", image, "image/png")]}
    )
    assert sse_events(response)[-1][0] == "done", response.text
    assert fake.chat_requests[-1].messages[-1]["content"] == [
        {"type": "text", "text": "what is it?"},
        {"type": "image_url", "image_url": {"url": data_uri(image)}},
    ]
    sid = response.headers["X-Memchat-Session-Id"]
    first = client.get(f"/api/sessions/{sid}/messages").json()["messages"][0]
    digest = hashlib.sha256(image).hexdigest()
    assert first["content"] == "what is it?"
    assert first["attachments"] == [
        {"name": "cat.png", "media_type": "image/png", "size": len(image), "sha256": digest,
         "url": f"/api/attachments/{digest}"}
    ]  # fmt: skip
    got = client.get(first["attachments"][0]["url"])
    assert got.status_code == 200 and got.content == image and got.headers["content-type"] == "image/png"
    # an image alone (no text) is a message too, in a session that exists
    again = client.post(f"/api/sessions/{sid}/turns", json={"text": "", "attachments": [upload("b.png", png(3, 3))]})
    assert sse_events(again)[-1][0] == "done"
    assert fake.chat_requests[-1].messages[-1]["content"] == [
        {"type": "image_url", "image_url": {"url": data_uri(png(3, 3))}}
    ]


def test_api_refusals_are_one_line_and_store_nothing(serve: Any, fake: FakeServer) -> None:
    _, client, agent = serve()
    cases = [
        (
            {"text": "hi", "attachments": [upload("cat.png", b"not a png at all")]},
            400,
            "cannot attach cat.png: it is not an image/png",
        ),
        ({"text": "hi", "attachments": [upload("x.png", png(), "image/jpeg")]}, 400, "its bytes are image/png"),
        ({"text": "hi", "attachments": [upload("cat.png", png())]}, 400, "fake/model-a takes text only"),
        ({"text": "", "attachments": []}, 422, "needs text or a file"),
    ]
    for body, status, says in cases:
        response = client.post("/api/sessions/turns", json=body)
        assert response.status_code == status, response.text
        assert says in response.json()["error"]["message"]
    agent.max_attachment = 1000
    response = client.post("/api/sessions/turns", json={"text": "hi", "attachments": [upload("a.txt", b"x" * 2000)]})
    assert response.status_code == 413 and "over the limit" in response.json()["error"]["message"]
    assert fake.chat_requests == []
    assert client.get("/api/sessions").json()["sessions"] == []
    assert agent.store._read("SELECT COUNT(*) FROM attachments")[0][0] == 0


def test_another_account_cannot_fetch_an_attachment_by_its_hash(fake: FakeServer, tmp_path: Path) -> None:
    import httpx

    from memchat.server.app import create_app
    from serving import Served

    store = open_store(tmp_path / "accounts.db")
    _, ann_token = store.add_user("ann")
    _, bob_token = store.add_user("bob")
    agent = Agent(store, OpenAICompatible(fake.url, api_key="k", model="gpt-4o", max_retries=0), date_line=False)
    served = Served(create_app(agent))
    ann = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {ann_token}"}, timeout=10)
    bob = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {bob_token}"}, timeout=10)
    try:
        image = png(rgb=(9, 9, 9))
        response = ann.post("/api/sessions/turns", json={"text": "mine", "attachments": [upload("me.png", image)]})
        assert sse_events(response)[-1][0] == "done"
        url = f"/api/attachments/{hashlib.sha256(image).hexdigest()}"
        assert ann.get(url).content == image
        refused = bob.get(url)
        assert refused.status_code == 404 and refused.json()["error"]["message"] == "no such attachment"
        assert httpx.get(served.url + url).status_code == 401
    finally:
        ann.close()
        bob.close()
        served.close()
        agent.close()


def test_v1_image_url_and_file_parts_reach_the_upstream(serve: Any, fake: FakeServer) -> None:
    _, client, agent = serve()
    image = png()
    body = {
        "model": "gpt-4o",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "compare"},
                    {"type": "image_url", "image_url": {"url": data_uri(image), "detail": "low"}},
                    {"type": "file", "file": {"filename": "notes.txt", "file_data": base64.b64encode(b"ok").decode()}},
                ],
            }
        ],
    }
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert fake.chat_requests[-1].messages[-1]["content"] == [
        {"type": "text", "text": "compare\n\n```text title=notes.txt\nok\n```"},
        {"type": "image_url", "image_url": {"url": data_uri(image)}},
    ]
    name = response.headers["X-Memchat-Session"]
    assert [a.name for a in agent.store.messages(name)[0].attachments] == ["image.png", "notes.txt"]


def test_v1_refuses_what_it_cannot_send(serve: Any, fake: FakeServer) -> None:
    _, client, agent = serve()

    def ask_v1(*parts: dict[str, Any], model: str = "gpt-4o") -> Any:
        content = [{"type": "text", "text": "look"}, *parts]
        return client.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": content}]}
        )

    image = {"type": "image_url", "image_url": {"url": data_uri(png())}}
    cases = [
        (ask_v1(image, model="fake/model-a"), 400, "takes text only"),
        (
            ask_v1({"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/x.png"}}),
            400,
            "cannot fetch the image",
        ),
        (
            ask_v1({"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}),
            400,
            "is not an image/png file",
        ),
        (ask_v1({"type": "file", "file": {"file_id": "file-abc"}}), 400, "file_id is not supported"),
        (ask_v1({"type": "input_audio", "input_audio": {}}), 400, "memchat takes text, image_url and file parts"),
    ]
    for response, status, says in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert says in error["message"] and "\n" not in error["message"], error
    assert fake.chat_requests == []
    assert client.get("/api/sessions").json()["sessions"] == []


# -- export, import, db copy: the files go whole --------------------------------------------------


def test_export_import_export_is_byte_identical_with_attachments(tmp_path: Path) -> None:
    from memchat.serialization import export_jsonl, export_markdown, import_jsonl

    source = opened(open_store(tmp_path / "a.db"))
    source.create_session("files")
    files = (from_bytes("p.png", png()), from_bytes("代码.py", "print('你好')\n".encode()), from_bytes("r.pdf", pdf()))
    source.append_messages("files", [Message(Role.USER, "three files", attachments=files)])
    source.append_messages("files", [Message(Role.ASSISTANT, "seen")])
    first = export_jsonl(source, "files")
    record = json.loads(first.splitlines()[1])
    assert [base64.b64decode(a["data"]) for a in record["attachments"]] == [f.data for f in files]
    target = opened(open_store(tmp_path / "b.db"))
    import_jsonl(target, first)
    assert export_jsonl(target, "files") == first
    assert export_markdown(target, "files") == export_markdown(source, "files")
    assert "📎 p.png (image/png, 73 B)" in export_markdown(target, "files")
    assert target.attachment_data(files[0].sha256) == png()


def test_an_export_whose_file_was_changed_is_refused_in_one_line(tmp_path: Path) -> None:
    from memchat.errors import ImportFormatError
    from memchat.serialization import export_jsonl, import_jsonl

    source = opened(open_store(tmp_path / "a.db"))
    source.create_session("files")
    source.append_messages("files", [Message(Role.USER, "x", attachments=(from_bytes("p.png", png()),))])
    text = export_jsonl(source, "files")
    other = base64.b64encode(png(rgb=(0, 0, 0))).decode()
    forged = text.replace(base64.b64encode(png()).decode(), other)
    target = opened(open_store(tmp_path / "b.db"))
    with pytest.raises(ImportFormatError, match="does not match its sha256 and size"):
        import_jsonl(target, forged)
    assert target.list_sessions() == []


def test_db_copy_carries_the_files_to_postgres(tmp_path: Path, pg_url: str) -> None:
    source = open_store(tmp_path / "a.db")
    source.create_session("files")
    source.append_messages("files", [Message(Role.USER, "x", attachments=(from_bytes("p.png", png()),))])
    source.close()
    done = subprocess.run(
        [sys.executable, "-m", "memchat.cli.main", "db", "copy", str(tmp_path / "a.db"), pg_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with open_store(pg_url) as target:
        stored = target.messages("files")[0]
        assert [a.name for a in stored.attachments] == ["p.png"]
        assert target.attachment_data(stored.attachments[0].sha256) == png()


# -- the REPL: /attach ------------------------------------------------------------------------------


def repl(agent: Agent, keys: str, *, lang: str = "en") -> str:
    import io

    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput
    from rich.console import Console

    from memchat import i18n
    from memchat.cli.repl import run_repl
    from memchat.config import Settings

    i18n.set_lang(lang)
    out = io.StringIO()
    with create_pipe_input() as inp:
        inp.send_text(keys)
        inp.close()
        run_repl(agent, Settings(), console=Console(file=out, width=200, color_system=None), pt_input=inp,
                 pt_output=DummyOutput(), session="s")  # fmt: skip
    i18n.set_lang(None)
    return out.getvalue()


def test_repl_attach_sends_files_with_the_next_message_only(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path)
    image, notes = tmp_path / "photo.png", tmp_path / "my notes.txt"
    image.write_bytes(png())
    notes.write_text("line one\n")
    out = repl(
        agent,
        f"/attach {image}\n/attach '{notes}'\n/attach\nwhat are these?\nand now?\n/history\n"
        f"/attach {tmp_path / 'missing.png'}\n/attach {notes}\n/attach clear\n/attach\n",
    )
    assert "📎 photo.png (image/png, 73 B) goes with your next message" in out
    assert "📎 with your next message: photo.png (image/png, 73 B), my notes.txt (text/plain, 9 B)" in out
    first, second = (r.messages[-1]["content"] for r in fake.chat_requests)
    assert first == [
        {"type": "text", "text": "what are these?\n\n```text title=my notes.txt\nline one\n```"},
        {"type": "image_url", "image_url": {"url": data_uri(png())}},
    ]
    assert second == "and now?"  # sent once: the next message goes without them
    assert "    📎 photo.png (image/png, 73 B)" in out and "    📎 my notes.txt (text/plain, 9 B)" in out
    assert "cannot read" in out and "attachments dropped" in out and "no files attached" in out
    assert len(fake.chat_requests) == 2


def test_repl_attach_refuses_an_image_for_a_text_model_at_once_in_chinese(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path, model="fake/text-model")
    image = tmp_path / "photo.png"
    image.write_bytes(png())
    out = repl(agent, f"/attach {image}\n/attach\n", lang="zh")
    assert "模型 fake/text-model 只接受文本" in out and "没有附加文件" in out
    assert fake.chat_requests == []


def test_an_edited_message_keeps_its_files(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path)
    agent.ask("s", "look", attachments=[from_bytes("photo.png", png())])
    first = agent.store.messages("s")[0]
    for _ in agent.edit("s", first.id or 0, "look closer"):
        pass
    assert fake.chat_requests[-1].messages[-1]["content"] == [
        {"type": "text", "text": "look closer"},
        {"type": "image_url", "image_url": {"url": data_uri(png())}},
    ]
    assert [a.name for a in agent.store.messages("s")[0].attachments] == ["photo.png"]


def test_the_embedded_model_refuses_an_image_in_one_line_through_ask(tmp_path: Path) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(png())
    done = ask("--provider", "local", "-a", str(image), "what is it?")
    err = done.stderr.decode()
    assert done.returncode == 1 and err.count("\n") == 1, err
    assert "the embedded model SmolLM2-135M-Instruct takes text only, so photo.png (an image) was not sent" in err
    with open_store(default_db_path()) as store:
        assert store.list_sessions() == []


def test_refusals_are_worded_in_chinese_too() -> None:
    from memchat import i18n

    i18n.set_lang("zh")
    try:
        with pytest.raises(AttachmentError) as caught:
            from_bytes("cat.png", b"GIF89a" + b"\x00" * 8)
        assert describe_error(caught.value) == "无法附加 cat.png：文件名表明是 image/png，但内容是 image/gif"
        with pytest.raises(AttachmentTooLarge) as too_big:
            from_bytes("big.txt", b"x" * 2048, limit=1024)
        assert describe_error(too_big.value).startswith("无法附加 big.txt：文件大小 2 KB，超过上限 1 KB")
    finally:
        i18n.set_lang(None)


def test_a_summary_sees_the_description_never_the_bytes(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path, memory="summary", context_window=1200)
    agent.ask("s", "look at this", attachments=[from_bytes("photo.png", png())])
    for k in range(8):
        agent.ask("s", f"turn {k} " + "filler words here " * 30)
        agent.wait_for_summaries(10)
    assert agent.store.summaries("s"), "no summary was written"
    asked = [json.dumps(r.messages) for r in fake.chat_requests[1:]]
    summarizing = [a for a in asked if "look at this" in a]
    assert summarizing and all("[attachment: photo.png, image/png, 73 B]" in a for a in summarizing)
    assert not any("base64" in a for a in asked)


def test_files_go_when_no_message_names_them_any_more(store: Any) -> None:
    kept, gone = from_bytes("kept.png", png()), from_bytes("gone.txt", b"bye\n")
    one = store.create_session("one")
    two = store.create_session("two")
    store.append_messages(one.id, [Message(Role.USER, "a", attachments=(kept, gone))])
    store.append_messages(two.id, [Message(Role.USER, "b", attachments=(kept,))])
    other_id, _ = store.add_user("ann")
    theirs = store.for_owner(other_id)
    theirs.append_messages(theirs.create_session("x").id, [Message(Role.USER, "c", attachments=(gone,))])
    store.remove_last_turn(one.id)  # /undo
    assert store.attachment_data(gone.sha256) is None  # no message of this owner names it
    assert store.attachment_data(kept.sha256) == png()  # session two still does
    assert theirs.attachment_data(gone.sha256) == b"bye\n"  # the other account's copy stays
    store.delete_session(two.id)
    assert store.attachment_data(kept.sha256) is None
    store.append_messages(one.id, [Message(Role.USER, "again", attachments=(kept,))])
    store.truncate(one.id, 0)  # /clear
    assert store.attachment_data(kept.sha256) is None


def test_vision_and_the_size_limit_are_settings(tmp_path: Path) -> None:
    from memchat.config import resolve
    from memchat.errors import ConfigError

    assert resolve({}, env={}).vision is None and resolve({}, env={}).max_attachment == 20 * 1024 * 1024
    chosen = resolve({"vision": True}, env={"MEMCHAT_MAX_ATTACHMENT": "50MB"})
    assert chosen.vision is True and chosen.max_attachment == 50 * 1024 * 1024
    assert resolve({}, env={"MEMCHAT_VISION": "off", "MEMCHAT_MAX_ATTACHMENT": "512 KB"}).vision is False
    with pytest.raises(ConfigError, match="max_attachment must be a size such as 20MB"):
        resolve({}, env={"MEMCHAT_MAX_ATTACHMENT": "lots"})
    (tmp_path / "memchat-home").mkdir(exist_ok=True)
    (tmp_path / "memchat-home" / "config.toml").write_text('vision = true\nmax_attachment = "2MB"\n')
    from_file = resolve({}, env={"MEMCHAT_HOME": str(tmp_path / "memchat-home")})
    assert from_file.vision is True and from_file.max_attachment == 2 * 1024 * 1024


def test_a_stateless_v1_client_resending_an_image_keeps_one_session(serve: Any, fake: FakeServer) -> None:
    _, client, agent = serve()
    image = {"type": "image_url", "image_url": {"url": data_uri(png())}}
    first = [{"role": "user", "content": [{"type": "text", "text": "what is it?"}, image]}]
    body = {"model": "gpt-4o", "messages": first, "stream": True}
    streamed = client.post("/v1/chat/completions", json=body)
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text
    reply = agent.store.messages(agent.store.list_sessions()[0].id)[1].content
    again = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "and its colour?"}]
    assert client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": again}).status_code == 200
    assert len(agent.store.list_sessions()) == 1
    sent = fake.chat_requests[-1].messages
    assert sent[-3] == {"role": "user", "content": "what is it?\n[attachment: image.png, image/png, 73 B]"}
    assert sent[-1] == {"role": "user", "content": "and its colour?"}


def test_a_pdf_without_pypdf_names_the_extra(fake: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as if memchat[pdf] were not installed
    agent = make_agent(fake, tmp_path, model="fake/text-model")
    with pytest.raises(AttachmentError) as caught:
        agent.ask("s", "summarize", attachments=[from_bytes("report.pdf", pdf())])
    assert describe_error(caught.value) == (
        "cannot attach report.pdf: reading a PDF's text needs pypdf: pip install 'memchat[pdf]'"
    )
    assert fake.chat_requests == [] and agent.store.list_sessions() == []


def test_a_message_of_files_alone_starts_a_new_chat(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path)
    reply = agent.ask(None, "", attachments=[from_bytes("photo.png", png())])
    (info,) = agent.store.list_sessions()
    assert reply.session == info.name and info.label
    assert fake.chat_requests[-1].messages[-1]["content"] == [
        {"type": "image_url", "image_url": {"url": data_uri(png())}}
    ]
    with pytest.raises(Exception, match="the message is empty"):
        agent.ask(None, "  ")


def test_the_repl_toolbar_counts_the_files_waiting(
    fake: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memchat.cli.repl import PromptReader

    seen: list[str] = []
    original = PromptReader.read

    def read(reader: PromptReader, prompt: str) -> str:
        toolbar = reader.session.bottom_toolbar
        assert callable(toolbar)
        seen.append(toolbar())
        return original(reader, prompt)

    monkeypatch.setattr(PromptReader, "read", read)
    agent = make_agent(fake, tmp_path)
    image = tmp_path / "photo.png"
    image.write_bytes(png())
    repl(agent, f"/attach {image}\nlook\n")
    assert seen[1].endswith(" · 📎 1 ") and "📎" not in seen[2]


def test_an_aborted_turn_takes_its_file_unless_another_message_names_it(store: Any) -> None:
    shared, alone = from_bytes("shared.png", png()), from_bytes("alone.txt", b"only here\n")
    info = store.create_session("s")
    store.append_messages(info.id, [Message(Role.USER, "earlier", attachments=(shared,))])
    turn = store.begin_turn(info.id, Message(Role.USER, "now", attachments=(shared, alone)))
    assert store.attachment_data(alone.sha256) == b"only here\n"  # written with the question
    store.abort_turn(turn)
    assert [m.content for m in store.messages(info.id)] == ["earlier"]
    assert store.attachment_data(alone.sha256) is None and store.attachment_data(shared.sha256) == png()


def test_only_the_routes_that_carry_files_take_big_bodies(serve: Any, fake: FakeServer) -> None:
    _, client, agent = serve()
    agent.vision = True
    big = png() + os.urandom(1_500_000)  # a PNG of 1.5 MB
    response = client.post("/api/sessions/turns", json={"text": "big", "attachments": [upload("big.png", big)]})
    assert sse_events(response)[-1][0] == "done", response.text[:300]
    assert fake.chat_requests[-1].messages[-1]["content"][1]["image_url"]["url"] == data_uri(big)
    refused = client.post("/api/sessions", json={"name": "x", "persona": "p" * 1_500_000})
    assert refused.status_code == 413


def test_an_images_cost_follows_openais_tile_rule() -> None:
    import struct

    def png_of(width: int, height: int) -> bytes:  # the header is all the rule reads
        return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, height) + b"\x08\x02"

    def jpeg_of(width: int, height: int) -> bytes:
        app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
        sof = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, height, width) + b"\x03" + b"\x00" * 9
        return b"\xff\xd8" + app0 + sof

    assert image_tokens(png_of(512, 512)) == 85 + 170  # one tile
    assert image_tokens(png_of(1024, 1024)) == 85 + 170 * 4  # shorter side to 768: 2 × 2 tiles
    assert image_tokens(png_of(4096, 2048)) == 85 + 170 * 6  # into 2048, then 1536 × 768: 3 × 2
    assert image_tokens(jpeg_of(800, 600)) == 85 + 170 * 4
    assert image_tokens(b"GIF89a" + struct.pack("<HH", 100, 100)) == 85 + 170
    assert image_tokens(b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x00" * 8 + (1023).to_bytes(3, "little") * 2) == 85 + 680
    assert image_tokens(b"\xff\xd8\xff") == IMAGE_TOKENS  # no size to read


def test_a_call_with_an_image_does_not_teach_the_token_estimate(fake: FakeServer, tmp_path: Path) -> None:
    agent = make_agent(fake, tmp_path)
    agent.ask("s", "look", attachments=[from_bytes("photo.png", png())])
    assert agent.store.calibration("gpt-4o-mini") is None  # the server's count of an image is its own
    agent.ask("s", "and a plain question")
    assert agent.store.calibration("gpt-4o-mini") is not None
