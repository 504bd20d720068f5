"""Shared fixtures. Every test runs with MEMCHAT_HOME in a temporary directory and without
ambient provider keys, base URLs or proxies, so nothing reaches a real service or the
user's own data."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_STRIP_PREFIXES = ("MEMCHAT_", "OPENAI_", "MODELSCOPE_", "DEEPSEEK_")
_STRIP_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
_STRIP_NAMES += tuple(n.lower() for n in _STRIP_NAMES)


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith(_STRIP_PREFIXES) or name in _STRIP_NAMES:
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "memchat-home"
    monkeypatch.setenv("MEMCHAT_HOME", str(home))
    monkeypatch.setenv("MEMCHAT_LANG", "en")
    # the context's date line changes every day: tests that compare whole messages go without it
    # (tests/test_tools.py checks the line itself, with it switched on)
    monkeypatch.setenv("MEMCHAT_DATE_LINE", "off")
    # automatic memory learning asks the model again after every turn (in the background): tests
    # that script or count the model's requests go without it (tests/test_memories_learning.py
    # and the auto-learning tests switch it on)
    monkeypatch.setenv("MEMCHAT_LEARN", "explicit")
    # titles written by the model are one more request after a session's first turn: tests that
    # script or count requests title by the first words (tests/test_titles.py switches it on)
    monkeypatch.setenv("MEMCHAT_TITLES", "words")
    # recall by meaning indexes every message in a background thread: the suite's recall tests
    # rank by words, deterministically; tests/test_semantic_recall.py gives its agents an index
    monkeypatch.setenv("MEMCHAT_EMBEDDINGS", "off")
    from memchat import i18n

    i18n.set_lang(None)
    yield home
    i18n.set_lang(None)


# -- fake OpenAI-compatible server (tests/fakeserver.py) ------------------------------------

from fakeserver import FakeServer  # noqa: E402  (tests/ has no __init__.py, so pytest puts it on sys.path)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeServer]:
    """One real fake OpenAI-compatible HTTP server on 127.0.0.1 for the whole session."""
    server = FakeServer().start()
    yield server
    server.close()


@pytest.fixture
def fake(fake_server: FakeServer) -> Iterator[FakeServer]:
    """The session's fake server with no scripts or records left from earlier tests."""
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def serve(fake: FakeServer, tmp_path: Path) -> Iterator[Any]:
    """Start ``memchat serve`` (the app under uvicorn on a free port) over the fake upstream:
    ``serve(token=None)`` gives (served, an httpx client for its API, the agent), all closed
    after the test. The agent's persona is "Be brief."; no date line."""
    import httpx

    from memchat.agent import Agent
    from memchat.factory import open_store
    from memchat.providers.openai_compat import OpenAICompatible
    from memchat.server.app import create_app
    from serving import Served

    made: list[tuple[Any, httpx.Client, Agent]] = []

    def start(token: str | None = None) -> tuple[Any, httpx.Client, Agent]:
        provider = OpenAICompatible(fake.url, api_key="sk-upstream-secret-42", model="fake/model-a", max_retries=0)
        agent = Agent(open_store(tmp_path / "server.db"), provider, persona="Be brief.", date_line=False)
        served = Served(create_app(agent, token=token))
        client = httpx.Client(base_url=served.url, timeout=10)
        made.append((served, client, agent))
        return made[-1]

    yield start
    for served, client, agent in made:
        client.close()
        served.close()
        agent.close()


# -- PostgreSQL (127.0.0.1:5432, trust auth, database "test"): a fresh schema per test ---------

PG_BASE = os.environ.get("MEMCHAT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose connections live in a schema of their own, dropped after the test."""
    import uuid

    psycopg = pytest.importorskip("psycopg")
    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        admin = psycopg.connect(PG_BASE, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at {PG_BASE}: {exc}")
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_BASE}?options=-csearch_path%3D{schema},public"
    with psycopg.connect(PG_BASE, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


# -- the browser tests (tests/test_web.py, tests/test_xss.py): Debian's chromium, one per session --

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless chromium driven by Playwright (the modules skip without it, except in CI)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield b
        b.close()


class WebSite:
    """``memchat serve``'s app (under uvicorn) over the loopback model server, for the browser
    tests: ``stop()`` stops it as Ctrl-C does, ``restart()`` serves it again on the same port."""

    def __init__(self, fake: Any, tmp_path: Path) -> None:
        from memchat.agent import Agent
        from memchat.factory import open_store
        from memchat.providers.openai_compat import OpenAICompatible
        from memchat.server.app import create_app
        from serving import Served

        self.fake = fake
        provider = OpenAICompatible(fake.url, api_key="sk-upstream-secret", model="fake/model-a", max_retries=0)
        self.agent = Agent(open_store(tmp_path / "web.db"), provider, persona="Be brief.", date_line=False)
        self._make = lambda port=None: Served(create_app(self.agent), port=port)
        self.served = self._make()
        self.url = self.served.url

    def stop(self) -> None:
        self.served.close()

    def restart(self) -> None:
        self.served.close()
        self.served = self._make(self.served.port)

    def close(self) -> None:
        self.served.close()
        self.agent.close()


@pytest.fixture
def web(fake_server: FakeServer, tmp_path: Path) -> Iterator[WebSite]:
    """The app served for a browser test (tests/test_web*.py), its model the fake server."""
    fake_server.reset()
    site = WebSite(fake_server, tmp_path)
    yield site
    site.close()
    fake_server.reset()


@pytest.fixture
def site(web: WebSite) -> tuple[str, FakeServer, Any]:
    """(url, fake model server, agent) of ``web``."""
    return web.url, web.fake, web.agent


@pytest.fixture
def page(browser: Any, site: tuple[str, FakeServer, Any]) -> Iterator[Any]:
    """A fresh browser page on ``site``: ``page.problems`` collects what must not happen — a
    dialog (prompt, confirm, alert) not expected, a console error, an uncaught error or promise
    rejection, a request to another origin."""
    url = site[0]
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []

    def unexpected_dialog(d: Any) -> None:
        problems.append(f"dialog: {d.message}")
        d.dismiss()

    page.on("dialog", unexpected_dialog)
    page.unexpected_dialog = unexpected_dialog
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    page.on("request", lambda r: None if r.url.startswith(url) else problems.append(f"off-origin request: {r.url}"))
    page.problems = problems
    page.goto(url + "/")
    yield page
    context.close()


# -- the store contract: the same tests on SQLite in memory, on disk, and on PostgreSQL -----------


@pytest.fixture(params=["memory", "file", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each store backend in turn (tests/test_store*.py); a module may define its own ``store``."""
    from memchat.factory import open_store

    if request.param == "postgres":
        target = request.getfixturevalue("pg_url")
    else:
        target = ":memory:" if request.param == "memory" else str(tmp_path / "db.sqlite")
    s = open_store(target)
    yield s
    s.close()
