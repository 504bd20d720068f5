"""Upstream fault matrix (issue 8, part 2): every way the model or image service can fail, against
the loopback servers (``tests/fakeserver.py``, ``tests/imageserver.py``), through every interface
(library, ``memchat ask`` / ``memchat image``, the REPL, the HTTP API) and every operation (a chat
turn, a turn whose follow-up call after the ``now`` tool fails, an image).

For every cell: the user sees one clear line naming the problem (no traceback, never the key),
the history is as if the failed turn never happened (README: a failed call drops your message;
nothing of a failed image is kept), the next turn works and sends nothing of the failed one, and
the retries are bounded (upstream requests counted; ``Retry-After`` honoured, but one beyond the
cap fails at once).

The reduced run (the normal suite) takes a diagonal: every case once, every interface × operation
at least once. ``MEMCHAT_CAMPAIGN=full`` runs the whole cross product and writes
``bench/campaigns/fault_matrix.json``.

The command line has no setting for the provider's timeouts (60 s for the chat model, 30 s per
image request, image polls from 2 s): its subprocesses get a ``sitecustomize`` that shortens those
defaults, nothing else (``FAULT_MATRIX_TIMEOUT``).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import campaign
from fakeserver import FakeReply, FakeServer, Recorded, refused_url
from faultproxy import FaultProxy
from imageserver import MS_AUTH, Fault, ImageServer, Task
from memchat import i18n
from memchat.agent import Agent
from memchat.config import Settings, default_db_path
from memchat.domain import Message, Role
from memchat.errors import MemchatError
from memchat.factory import open_store
from memchat.images import ImageRequest
from memchat.images.modelscope_async import ModelScopeImages
from memchat.providers.openai_compat import OpenAICompatible
from memchat.providers.windows import WindowBook
from memchat.server.app import create_app
from serving import Served

pytestmark = pytest.mark.campaign

#: a recognisable key: it must never appear in anything the user sees
KEY = "sk-faultmatrix-SECRET-5ca1ab1e0042"
#: the clients' read timeout in this test (seconds); the silent upstreams stay quiet far longer
TIMEOUT = 1.0
SILENCE = 15.0
QUESTION = "what day is it today?"
NEXT = "next question"
EARLIER = [("user", "earlier question", "complete"), ("assistant", "earlier answer", "complete")]
DNS_URL = "http://no-such-host.invalid/v1"
CLI = [sys.executable, "-m", "memchat.cli.main"]
#: lines ``memchat ask`` / ``memchat image`` print on stderr besides errors (README): tool calls
#: and their results, the image task's progress
_NOT_ERRORS = re.compile(r"^memchat: (→ |← |[A-Z]+ · \d+ s · task )")


# -- the cases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What the user must get from a fault."""

    kind: str | None  # the error's kind (``memchat.errors``); None: the operation succeeds after all
    sees: tuple[str, ...] = ()  # words the one line must contain (any case)
    requests: int | None = None  # upstream requests the faulty call makes (None: none reach a server)
    paused: int = 0  # the first this many of them are each followed by a pause…
    min_gap: float = 0.0  # …of at least this many seconds (Retry-After honoured)
    connections: int | None = None  # connection attempts the server counts (a TLS handshake on plain HTTP)
    within: float = 10.0  # the faulty operation ends within this many seconds (bounded retries)
    never: tuple[str, ...] = ()  # words the line must not contain (any case)


@dataclass(frozen=True)
class ChatFault:
    """The faulty model call: scripted replies, or an address that cannot work."""

    how: str
    replies: Callable[[], list[FakeReply]]
    expect: Expect
    where: str = "fake"  # fake | refused | dns | tls


@dataclass(frozen=True)
class ImageFault:
    how: str
    setup: Callable[[ImageServer], None]
    expect: Expect
    where: str = "image"  # image | refused | dns | tls


@dataclass(frozen=True)
class Case:
    id: str
    chat: ChatFault | None
    image: ImageFault | None
    #: also after a tool call (an address fault cannot begin only after a first call that worked,
    #: except refused: the test's proxy stops listening once the first call has its connection)
    tools: bool = True


def ms_error(message: str, request_id: str = "req-fm") -> dict[str, Any]:
    return {"errors": {"message": message}, "request_id": request_id}


def oa_error(message: str, code: str | None = None, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


ECHOED_KEY = f"Incorrect API key provided: {KEY}. You can find your API key at https://platform.example/keys."
BIND = "Please bind your Alibaba Cloud account before use."
NO_MODEL = "The model `fake/gone` does not exist or you do not have access to it."
QUOTA_HEADERS = {"modelscope-ratelimit-requests-limit": "2000", "modelscope-ratelimit-requests-remaining": "0"}
SSE_HEAD = 'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'


def sse_frames(*pieces: str, finish: str | None) -> str:
    frames = [
        SSE_HEAD + json.dumps([{"index": 0, "delta": {"content": p}, "finish_reason": None}]) + "}\n\n" for p in pieces
    ]
    if finish:
        frames.append(SSE_HEAD + json.dumps([{"index": 0, "delta": {}, "finish_reason": finish}]) + "}\n\n")
    return "".join(frames)


def image_errors(*answers: tuple[int, Any, dict[str, str]]) -> Callable[[ImageServer], None]:
    def setup(s: ImageServer) -> None:
        s.http_errors.extend(answers)

    return setup


def image_faults(*faults: Fault | None) -> Callable[[ImageServer], None]:
    def setup(s: ImageServer) -> None:
        s.faults.extend(faults)

    return setup


def image_task(task: Task) -> Callable[[ImageServer], None]:
    def setup(s: ImageServer) -> None:
        s.script(task)

    return setup


def nothing(_: ImageServer) -> None:
    pass


UNREACHABLE = ("cannot reach the model server",)
NO_IMAGES = ("cannot reach the image service",)
IMAGE_KEY = ("image service refused the API key",)
# fmt: off
CASES: list[Case] = [
    Case("refused",
         ChatFault("nothing listens on the port (the proxy in front of the server stops listening)", list,
                   Expect("unavailable", (*UNREACHABLE, "refused"), None, within=8), "refused"),
         ImageFault("nothing listens on the image service's port", nothing,
                    Expect("unavailable", (*NO_IMAGES, "MEMCHAT_IMAGE_BASE_URL", "refused"), None, within=8),
                    "refused")),
    Case("dns",
         ChatFault("base URL on no-such-host.invalid", list,
                   Expect("unavailable", (*UNREACHABLE, "no-such-host.invalid"), None, within=8), "dns"),
         ImageFault("image base URL on no-such-host.invalid", nothing,
                    Expect("unavailable", (*NO_IMAGES, "no-such-host.invalid"), None, within=8), "dns"),
         tools=False),
    Case("tls",
         ChatFault("https:// to the plain-HTTP loopback port (the handshake fails)", list,
                   # three tries of the call, after one question for the server's window
                   Expect("unavailable", (*UNREACHABLE, "ssl"), None, connections=4, within=8,
                          never=("operation not permitted",)), "tls"),
         ImageFault("https:// to the plain-HTTP image port", nothing,
                    Expect("unavailable", (*NO_IMAGES, "ssl"), None, connections=3, within=8), "tls"),
         tools=False),
    Case("401-modelscope",
         ChatFault("401 {\"errors\": …} (ModelScope's envelope)", lambda: [FakeReply.auth_modelscope()],
                   Expect("auth", ("API key was refused", "valid ModelScope token"), 1)),
         ImageFault("401 {\"errors\": …} on the submit", image_errors((401, ms_error(MS_AUTH), {})),
                    Expect("auth", (*IMAGE_KEY, "MEMCHAT_IMAGE_API_KEY", "valid ModelScope token"), 1))),
    Case("401-openai",
         ChatFault("401 {\"error\": …} (OpenAI's envelope) echoing the key",
                   lambda: [FakeReply.auth_openai(ECHOED_KEY)],
                   Expect("auth", ("API key was refused", "Incorrect API key provided: ***"), 1)),
         ImageFault("401 {\"error\": …} echoing the key",
                    image_errors((401, oa_error(ECHOED_KEY, "invalid_api_key"), {})),
                    Expect("auth", (*IMAGE_KEY, "Incorrect API key provided: ***"), 1))),
    Case("403",
         ChatFault("403, account not bound", lambda: [FakeReply.error_response(403, ms_error(BIND))],
                   Expect("auth", ("API key was refused", "bind your Alibaba Cloud account"), 1)),
         ImageFault("403, account not bound", image_errors((403, ms_error(BIND), {})),
                    Expect("auth", (*IMAGE_KEY, "bind your Alibaba Cloud account"), 1))),
    Case("404-model",
         ChatFault("404 model_not_found",
                   lambda: [FakeReply.error_response(404, oa_error(NO_MODEL, "model_not_found"))],
                   Expect("bad_request", ("refused the request", "fake/gone` does not exist"), 1)),
         ImageFault("404 model not found", image_errors((404, ms_error("model fake/gone not found"), {})),
                    Expect("bad_request", ("refused the request", "fake/gone not found"), 1))),
    Case("429-quota",
         ChatFault("429 with modelscope-ratelimit-requests-remaining: 0", lambda: [FakeReply.quota_modelscope()],
                   Expect("quota", ("quota is used up", "Request limit exceeded"), 1)),
         ImageFault("429 with …-remaining: 0", image_errors((429, ms_error("Request limit exceeded."), QUOTA_HEADERS)),
                    Expect("quota", ("quota is used up",), 1))),
    Case("429-insufficient-quota",
         ChatFault("429 insufficient_quota (OpenAI)", lambda: [FakeReply.quota_openai()],
                   Expect("quota", ("quota is used up", "exceeded your current quota"), 1)),
         ImageFault("429 insufficient_quota",
                    image_errors((429, oa_error("You exceeded your current quota.", "insufficient_quota",
                                                "insufficient_quota"), {})),
                    Expect("quota", ("quota is used up",), 1))),
    Case("429-throttle-retry-after",
         ChatFault("429 Retry-After: 1, then a reply", lambda: [FakeReply.throttled(1), FakeReply.text("fine")],
                   Expect(None, (), 2, paused=1, min_gap=0.9)),
         ImageFault("429 Retry-After: 1, then the task runs",
                    image_errors((429, ms_error("Request limit exceeded."), {"Retry-After": "1"})),
                    Expect(None, (), 3, paused=1, min_gap=0.9))),
    Case("429-throttle-retry-after-again",
         ChatFault("429 Retry-After: 1, three times", lambda: [FakeReply.throttled(1)] * 3,
                   Expect("rate_limited", ("rate limited", "retry after 1 s"), 3, paused=2, min_gap=0.9)),
         ImageFault("429 Retry-After: 1, three times",
                    image_errors(*[(429, ms_error("Request limit exceeded."), {"Retry-After": "1"})] * 3),
                    Expect("rate_limited", ("rate limited", "retry after 1 s"), 3, paused=2, min_gap=0.9))),
    Case("429-throttle-retry-after-too-long",
         ChatFault("429 Retry-After: 120 (beyond the 10 s cap)", lambda: [FakeReply.throttled(120)],
                   Expect("rate_limited", ("rate limited", "retry after 120 s"), 1, within=5)),
         ImageFault("429 Retry-After: 120",
                    image_errors((429, ms_error("Request limit exceeded."), {"Retry-After": "120"})),
                    Expect("rate_limited", ("rate limited", "retry after 120 s"), 1, within=5))),
    Case("429-throttle",
         ChatFault("429 without Retry-After, three times", lambda: [FakeReply.throttled(None)] * 3,
                   Expect("rate_limited", ("rate limited", "Request limit exceeded"), 3)),
         ImageFault("429 without Retry-After, three times",
                    image_errors(*[(429, ms_error("Request limit exceeded."), {})] * 3),
                    Expect("rate_limited", ("rate limited",), 3))),
    Case("500",
         ChatFault("500, three times", lambda: [FakeReply.server_error(500)] * 3,
                   Expect("server", ("model server had an error", "error processing your request"), 3)),
         ImageFault("500, three times",
                    image_errors(*[(500, oa_error("internal error", None, "server_error"), {})] * 3),
                    Expect("server", ("image service had an error", "internal error"), 3))),
    Case("502",
         ChatFault("502 with a plain-text body, three times",
                   lambda: [FakeReply.error_response(502, "upstream connect error")] * 3,
                   Expect("server", ("model server had an error", "upstream connect error"), 3)),
         ImageFault("502, three times", image_errors(*[(502, ms_error("bad gateway"), {})] * 3),
                    Expect("server", ("image service had an error", "bad gateway"), 3))),
    Case("503",
         ChatFault("503, three times", lambda: [FakeReply.server_error(503, "Service temporarily unavailable")] * 3,
                   Expect("server", ("model server had an error", "temporarily unavailable"), 3)),
         ImageFault("503, three times", image_errors(*[(503, ms_error("Service temporarily unavailable"), {})] * 3),
                    Expect("server", ("image service had an error", "temporarily unavailable"), 3))),
    Case("503-then-ok",
         ChatFault("503 once, then a reply", lambda: [FakeReply.server_error(503), FakeReply.text("fine")],
                   Expect(None, (), 2)),
         ImageFault("503 once on the submit", image_errors((503, ms_error("busy"), {})), Expect(None, (), 3))),
    Case("timeout-first-byte",
         ChatFault("no status line for 15 s", lambda: [FakeReply.silent(SILENCE)],
                   Expect("timeout", ("did not answer in time", f"within {TIMEOUT} s"), 1)),
         ImageFault("the submit is not answered for 15 s", image_faults(Fault(wait=SILENCE)),
                    Expect("timeout", ("image service did not answer in time",), 1))),
    Case("stall-mid-stream",
         ChatFault("two chunks, then 15 s of silence",
                   lambda: [FakeReply.stall_reply(SILENCE, after=2, chunks=["one ", "two ", "three"])],
                   Expect("timeout", ("did not answer in time", "stream stalled"), 1)),
         ImageFault("the first poll hangs, the next one is answered", image_faults(None, Fault(wait=SILENCE)),
                    Expect(None, (), 3))),
    Case("cut-mid-stream",
         ChatFault("two chunks, then the connection closes", lambda: [FakeReply.cut(after=2)],
                   Expect("stream", ("reply stream broke", "cut mid-reply"), 1)),
         ImageFault("every poll's connection closes unanswered",
                    image_faults(None, *[Fault(drop=True)] * 3),
                    Expect("unavailable", NO_IMAGES, 4))),
    Case("malformed-chunk",
         ChatFault("a chunk that is not JSON", lambda: [FakeReply.malformed(after=1)],
                   Expect("stream", ("reply stream broke", "malformed stream event"), 1)),
         ImageFault("200 with a body that is not JSON", image_faults(Fault(raw=b"<html>gateway says hi</html>")),
                    Expect("server", ("image service had an error", "not JSON"), 1))),
    Case("choices-null",
         ChatFault("choices: null, usage all 0 (ModelScope's empty result)", lambda: [FakeReply.empty()],
                   Expect("stream", ("reply stream broke", "empty reply"), 1)),
         ImageFault("SUCCEED without output_images", image_task(Task(polls=0, image="none")),
                    Expect("image_failed", ("could not be generated", "without an image"), 2))),
    Case("error-event",
         ChatFault("an in-stream {\"error\": …} event", lambda: [FakeReply.stream_error("upstream model failed")],
                   Expect("stream", ("reply stream broke", "upstream model failed"), 1)),
         ImageFault("the task FAILED (422)", image_task(Task(polls=0, fail=True)),
                    Expect("image_failed", ("could not be generated", "inappropriate content"), 2))),
    Case("no-done-finished",
         ChatFault("finish_reason, then the body ends without [DONE]",
                   lambda: [FakeReply.raw_sse(sse_frames("fi", "ne", finish="stop"))], Expect(None, (), 1)),
         None),
    Case("no-done-unfinished",
         ChatFault("chunks, then the body ends: no finish_reason, no [DONE]",
                   lambda: [FakeReply.raw_sse(sse_frames("one ", "two ", finish=None))],
                   Expect("stream", ("reply stream broke", "closed before the reply was complete"), 1)),
         None),
    Case("context-length",
         ChatFault("400 context_length_exceeded (and again after planning smaller)",
                   lambda: [FakeReply.context_length()] * 2,
                   Expect("context_length", ("longer than the model's context window", "maximum context length"), 2)),
         ImageFault("400 (ModelScope: no provider for the model)",
                    image_errors((400, ms_error("Qwen/Qwen-Image has no provider supported"), {})),
                    Expect("bad_request", ("refused the request", "no provider supported"), 1))),
]
# fmt: on
BY_ID = {c.id: c for c in CASES}
INTERFACES = ("library", "cli", "repl", "server")
OPERATIONS = ("chat", "tools", "image")


def applies(case: Case, op: str) -> bool:
    if op == "image":
        return case.image is not None
    return case.chat is not None and (op == "chat" or case.tools)


def cells() -> list[tuple[str, str, str]]:
    """(case, interface, operation): all of them on a full run, else a diagonal (every case once,
    each interface × operation pair as evenly as the cases allow)."""
    if campaign.FULL:
        return [(c.id, i, o) for c in CASES for i in INTERFACES for o in OPERATIONS if applies(c, o)]
    pairs = [(i, o) for o in OPERATIONS for i in INTERFACES]
    used = dict.fromkeys(pairs, 0)
    out = []
    for c in CASES:
        i, o = min((p for p in pairs if applies(c, p[1])), key=lambda p: used[p])
        used[(i, o)] += 1
        out.append((c.id, i, o))
    return out


CELLS = cells()
RUN: list[str] = []
PASSED: list[str] = []
#: what the user saw in each passing cell (the README's table quotes them)
LINES: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    if RUN:
        campaign.record(
            "fault_matrix",
            {
                "cases": len(CASES),
                "interfaces": list(INTERFACES),
                "operations": list(OPERATIONS),
                "cells_possible": sum(applies(c, o) for c in CASES for o in OPERATIONS) * len(INTERFACES),
                "cells_run": len(RUN),
                "cells_passing": len(PASSED),
                "failing": sorted(set(RUN) - set(PASSED)),
                "lines": LINES,
            },
        )


# -- the loopback services --------------------------------------------------------------------------


class Proxy(FaultProxy):
    """The fault proxy, able to stop taking new connections while those open go on."""

    def stop_listening(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def listening(self) -> bool:
        return self._listener is not None


@pytest.fixture(scope="module")
def image_server() -> Iterator[ImageServer]:
    s = ImageServer().start()
    yield s
    s.close()


@dataclass
class World:
    """One cell's services, settings and records."""

    fake: FakeServer
    images: ImageServer
    proxy: Proxy
    tmp: Path
    case: Case
    op: str
    chat_url: str = ""
    image_url: str = ""
    connections: int | None = None  # what the server counted when the faulty operation ended

    @property
    def fault(self) -> ChatFault | ImageFault:
        fault = self.case.image if self.op == "image" else self.case.chat
        assert fault is not None
        return fault

    @property
    def expect(self) -> Expect:
        return self.fault.expect


@pytest.fixture
def world(
    fake: FakeServer, image_server: ImageServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[World]:
    case_id, _, op = request.param
    image_server.reset()
    proxy = Proxy("127.0.0.1", fake.port)
    w = World(fake, image_server, proxy, tmp_path, BY_ID[case_id], op)
    chat_where = w.fault.where if op != "image" else "fake"
    w.chat_url = {
        "fake": f"http://127.0.0.1:{proxy.port}/v1",
        "refused": f"http://127.0.0.1:{proxy.port}/v1",
        "dns": DNS_URL,
        "tls": f"https://127.0.0.1:{fake.port}/v1",
    }[chat_where]
    image_where = w.fault.where if op == "image" else "image"
    w.image_url = {
        "image": image_server.url,
        "refused": refused_url(),
        "dns": DNS_URL,
        "tls": f"https://127.0.0.1:{image_server.port}/v1",
    }[image_where]
    yield w
    image_server.reset()
    fake.reset()  # ends the silences
    proxy.close()


def arm(w: World) -> None:
    """Script the fault of this cell (just before the faulty operation)."""
    if w.op == "image":
        assert w.case.image is not None
        w.case.image.setup(w.images)
        w.images.script(Task(polls=0))  # after the case's own task, if it has one
        return
    assert w.case.chat is not None
    replies = w.case.chat.replies()
    refused = w.case.chat.where == "refused"
    if w.op == "tools":
        first = FakeReply.calls(("now", "{}"))
        if refused:  # the follow-up call finds nothing listening: this answer closes its connection

            def first_then_stop(_: Recorded) -> FakeReply:
                w.proxy.stop_listening()
                return FakeReply.calls(("now", "{}"), framing="close")

            w.fake.script(first_then_stop)
        else:
            w.fake.script(first)
    elif refused:
        w.proxy.stop_listening()
    w.fake.script(*replies)


def recover(w: World) -> None:
    """Between the faulty operation and the next turn: a refused port listens again."""
    if w.connections is None:
        w.connections = (w.images if w.op == "image" else w.fake).connections
    if not w.proxy.listening():
        w.proxy.up()


def recovers(w: World) -> bool:
    """Whether the next turn can work (a DNS or TLS fault on the chat model stays)."""
    return w.op == "image" or w.fault.where not in ("dns", "tls")


def seed(store: Any) -> int:
    info = store.create_session("fm", persona="", model="fake/model-a")
    store.append_messages(
        "fm", [Message(Role.USER, "earlier question"), Message(Role.ASSISTANT, "earlier answer", model="fake/model-a")]
    )
    return int(info.id)


def make_agent(w: World, store: Any) -> Agent:
    provider = OpenAICompatible(
        w.chat_url, api_key=KEY, model="fake/model-a", timeout=TIMEOUT, backoff=0.05,
        windows=WindowBook(),  # what this cell's servers say of their window, learned afresh
    )  # fmt: skip
    agent = Agent(store, provider, date_line=False)
    agent.images = ModelScopeImages(
        w.image_url, api_key=KEY, poll_initial=0.02, poll_max=0.05, http_timeout=TIMEOUT, timeout=20.0
    )
    agent.images_dir = w.tmp / "images"
    return agent


# -- what one interface showed ---------------------------------------------------------------------


@dataclass
class Seen:
    errors: list[str]  # the lines naming a problem, for the faulty operation
    output: str  # everything the interface showed or sent, both operations
    elapsed: float  # seconds the faulty operation took (the REPL: both)
    follow_errors: list[str] = field(default_factory=list)  # the next turn's error lines
    follow_reply: str | None = None  # the next turn's reply, when it worked
    kind: str | None = None  # the error's kind (where the interface exposes it)


def drive_library(w: World) -> tuple[Seen, Any]:
    store = open_store(w.tmp / "lib.db")
    seed(store)
    agent = make_agent(w, store)
    arm(w)
    seen = Seen([], "", 0.0)
    start = time.monotonic()
    try:
        if w.op == "image":
            made = agent.images.generate(ImageRequest("a cat in ink wash style"), dest_dir=w.tmp / "images" / "fm")
            from memchat.images.keep import to_record

            store.add_images("fm", [to_record(im) for im in made])
            seen.output += " ".join(str(im.path) for im in made)
        else:
            for chunk in agent.stream("fm", QUESTION):
                seen.output += chunk.text
    except MemchatError as exc:
        seen.kind = exc.kind
        seen.errors.append(i18n.describe_error(exc))
        seen.output += f"\n{exc!s}\n{exc!r}\n{exc.info!r}\n{exc.__cause__!s}"
    seen.elapsed = time.monotonic() - start
    recover(w)
    try:
        reply = agent.ask("fm", NEXT)
        seen.follow_reply = reply.text
    except MemchatError as exc:
        seen.follow_errors.append(i18n.describe_error(exc))
    return seen, agent


def cli_env(w: World) -> dict[str, str]:
    site = w.tmp / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import os

            _timeout = os.environ.get("FAULT_MATRIX_TIMEOUT")
            if _timeout:
                from memchat.images.modelscope_async import ModelScopeImages
                from memchat.providers.openai_compat import OpenAICompatible

                OpenAICompatible.__init__.__kwdefaults__["timeout"] = float(_timeout)
                ModelScopeImages.__init__.__kwdefaults__.update(
                    http_timeout=float(_timeout), poll_initial=0.02, poll_max=0.05
                )
            """
        )
    )
    env = os.environ.copy()
    env.update(
        {
            "PYTHONIOENCODING": "utf-8",
            "PYTHONPATH": os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p),
            "FAULT_MATRIX_TIMEOUT": str(TIMEOUT),
            "MEMCHAT_PROVIDER": "compat",
            "MEMCHAT_BASE_URL": w.chat_url,
            "MEMCHAT_API_KEY": KEY,
            "MEMCHAT_MODEL": "fake/model-a",
            "MEMCHAT_IMAGE_PROVIDER": "modelscope",
            "MEMCHAT_IMAGE_BASE_URL": w.image_url,
            "MEMCHAT_IMAGE_API_KEY": KEY,
        }
    )
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, encoding="utf-8", timeout=90
    )


def cli_errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the documented tool and progress lines; a traceback shows as more lines."""
    return [line for line in proc.stderr.splitlines() if not _NOT_ERRORS.match(line)]


def drive_cli(w: World) -> tuple[Seen, Any]:
    store = open_store(default_db_path())
    seed(store)
    store.close()
    env = cli_env(w)
    arm(w)
    start = time.monotonic()
    if w.op == "image":
        proc = cli(env, "image", "a cat in ink wash style", "-s", "fm")
    else:
        proc = cli(env, "ask", "-s", "fm", QUESTION)
    elapsed = time.monotonic() - start
    errors = cli_errors(proc)
    if proc.returncode == 0:
        assert errors == [], proc.stderr
    else:
        assert proc.returncode == 1, proc  # a failed call: 1 (2 is a usage error)
        assert proc.stdout in ("", "one \n", "one two \n"), proc.stdout  # at most what streamed
    seen = Seen(errors, proc.stdout + proc.stderr, elapsed)
    recover(w)
    follow = cli(env, "ask", "-s", "fm", NEXT)
    seen.output += follow.stdout + follow.stderr
    seen.follow_errors = cli_errors(follow)
    if follow.returncode == 0:
        seen.follow_reply = follow.stdout.rstrip("\n")
    else:
        assert follow.returncode == 1 and follow.stdout == "", follow
    return seen, open_store(default_db_path())


def drive_repl(w: World) -> tuple[Seen, Any]:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput
    from rich.console import Console

    from memchat.cli.repl import run_repl

    store = open_store(w.tmp / "repl.db")
    seed(store)
    agent = make_agent(w, store)
    arm(w)
    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None)
    first = "/image a cat in ink wash style" if w.op == "image" else QUESTION
    original = agent.stream

    def stream(session: Any, text: str, **kw: Any) -> Any:
        if text == NEXT:  # the faulty operation has ended: a refused port may listen again
            recover(w)
        return original(session, text, **kw)

    agent.stream = stream  # type: ignore[method-assign]
    start = time.monotonic()
    with create_pipe_input() as inp:
        inp.send_text(f"{first}\n{NEXT}\nq\n")
        inp.close()
        rc = run_repl(agent, Settings(), session="fm", console=console, pt_input=inp, pt_output=DummyOutput())
    elapsed = time.monotonic() - start
    text = out.getvalue()
    assert rc == 0, text
    assert text.rstrip().endswith("Bye!"), text  # still running after the fault, left normally
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    follow_reply = "echo: next question" if "Assistant: echo: next question" in text else None
    seen = Seen(errors, text, elapsed, follow_reply=follow_reply)
    if w.op == "image" and w.expect.kind is None:
        assert "image saved" in text.lower() or str(w.tmp / "images") in text, text
    if not recovers(w):
        seen.errors, seen.follow_errors = errors[:1], errors[1:]
    return seen, agent


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


def drive_server(w: World) -> tuple[Seen, Any]:
    store = open_store(w.tmp / "server.db")
    sid = seed(store)
    agent = make_agent(w, store)
    served = Served(create_app(agent))
    try:
        with httpx.Client(base_url=served.url, timeout=60) as client:
            arm(w)
            start = time.monotonic()
            seen = Seen([], "", 0.0)
            if w.op == "image":
                r = client.post(f"/api/sessions/{sid}/images", json={"prompt": "a cat in ink wash style"})
                seen.output += r.text
                if r.status_code != 201:
                    assert 400 <= r.status_code < 600 and r.status_code != 500, r.text  # no crash page
                    assert r.headers["content-type"].startswith("application/json"), r.text
                    error = r.json()["error"]
                    seen.kind = error["code"]
                    seen.errors.append(error["message"])
            else:
                r = client.post(f"/api/sessions/{sid}/turns", json={"text": QUESTION})
                seen.output += r.text
                assert r.status_code == 200, r.text
                events = sse_events(r.text)
                kinds = [k for k, _ in events]
                assert kinds.count("error") + kinds.count("done") == 1 and kinds[-1] in ("error", "done"), kinds
                for kind, data in events:
                    if kind == "error":
                        assert data["dropped"] is True, data
                        seen.kind = data["kind"]
                        seen.errors.append(data["message"])
            seen.elapsed = time.monotonic() - start
            recover(w)
            follow = client.post(f"/api/sessions/{sid}/turns", json={"text": NEXT})
            seen.output += follow.text
            for kind, data in sse_events(follow.text):
                if kind == "error":
                    seen.follow_errors.append(data["message"])
                elif kind == "done":
                    seen.follow_reply = data["text"]
            listed = client.get(f"/api/sessions/{sid}/messages").json()
            seen.output += json.dumps(listed)
    finally:
        served.close()
    return seen, agent


DRIVERS: dict[str, Callable[[World], tuple[Seen, Any]]] = {
    "library": drive_library,
    "cli": drive_cli,
    "repl": drive_repl,
    "server": drive_server,
}


# -- the matrix -------------------------------------------------------------------------------------


def history(store: Any) -> list[tuple[str, str, str]]:
    return [
        (m.role.value, "<tool result>" if m.role is Role.TOOL else m.content, m.status.value)
        + (("calls",) if m.tool_calls else ())
        for m in store.messages("fm")
    ]


def faulty_requests(w: World) -> list[Any]:
    """The upstream requests of the faulty operation (not the next turn's)."""
    if w.op == "image":
        return [r for r in w.images.requests if not r.path.startswith("/files/")]
    return [r for r in w.fake.chat_requests if r.messages[-1:] != [{"role": "user", "content": NEXT}]]


@pytest.mark.parametrize("world", CELLS, ids=["-".join(c) for c in CELLS], indirect=True)
def test_fault_cell(world: World, request: pytest.FixtureRequest) -> None:
    w = world
    case_id, interface, op = request.node.callspec.params["world"]
    cell = f"{case_id}/{interface}/{op}"
    RUN.append(cell)
    expect = w.expect
    seen, holder = DRIVERS[interface](w)
    store = holder.store if isinstance(holder, Agent) else holder
    try:
        # one clear line (or none when the operation recovered), never the key, never a traceback
        assert KEY not in seen.output and all(KEY not in line for line in seen.errors + seen.follow_errors)
        assert "Traceback" not in seen.output
        if expect.kind is None:
            assert seen.errors == [], seen.errors
        else:
            assert len(seen.errors) == 1, seen.errors
            line = seen.errors[0]
            assert "\n" not in line.strip(), line
            for word in expect.sees:
                assert word.lower() in line.lower(), (word, line)
            for word in expect.never:
                assert word.lower() not in line.lower(), (word, line)
            assert line.lower().count("try again") <= 1, line  # the advice once, not per layer
            if seen.kind is not None:
                assert seen.kind == expect.kind, (seen.kind, line)

        # retries bounded: the upstream requests of the faulty operation, their pauses, its time
        made = faulty_requests(w)
        tool_call = 1 if op == "tools" else 0
        assert len(made) == tool_call + (expect.requests or 0), [r.path for r in made]
        stamps = [r.at for r in made[tool_call:]]
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)][: expect.paused]
        assert len(gaps) == expect.paused and all(g >= expect.min_gap for g in gaps), gaps
        if expect.connections is not None:
            assert w.connections == expect.connections
        assert seen.elapsed < expect.within + (8 if interface in ("cli", "repl") else 0), seen.elapsed

        # the history: as if the failed operation never happened, then the next turn
        before = [*EARLIER]
        if expect.kind is None and op == "chat":
            before += [("user", QUESTION, "complete"), ("assistant", "fine", "complete")]
        elif expect.kind is None and op == "tools":
            before += [
                ("user", QUESTION, "complete"),
                ("assistant", "", "complete", "calls"),
                ("tool", "<tool result>", "complete"),
                ("assistant", "fine", "complete"),
            ]
        images = store.images("fm")
        if op == "image":
            assert len(images) == (1 if expect.kind is None else 0), images
            if expect.kind is not None:  # nothing half-saved
                saved = [p for p in (w.tmp / "images").rglob("*") if p.is_file()]
                saved += [p for p in (default_db_path().parent / "images").rglob("*") if p.is_file()]
                assert saved == [], saved
        if recovers(w):
            assert seen.follow_errors == [], seen.follow_errors
            assert seen.follow_reply == "echo: next question", seen.follow_reply
            after = [("user", NEXT, "complete"), ("assistant", "echo: next question", "complete")]
            assert history(store) == before + after
            # what the next turn sent: the history as kept, nothing of the failed turn
            follow = [r for r in w.fake.chat_requests if r not in made]
            assert len(follow) == 1, follow
            sent = [(m["role"], m.get("content") or "") for m in follow[0].messages if m["role"] != "tool"]
            kept = [(h[0], h[1]) for h in before if h[0] != "tool"]
            assert sent == [*kept, ("user", NEXT)], sent
        else:  # the address still cannot work: the next turn fails the same way, and keeps nothing
            assert seen.follow_reply is None
            assert len(seen.follow_errors) == 1 and seen.follow_errors[0] == seen.errors[0], seen.follow_errors
            assert history(store) == before
    finally:
        if isinstance(holder, Agent):
            holder.images.close()
            holder.close()
        else:
            holder.close()
    PASSED.append(cell)
    LINES[cell] = seen.errors[0] if seen.errors else f"(recovered: {len(made)} upstream requests)"
