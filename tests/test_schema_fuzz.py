"""Bad input over HTTP (issue 8): the real app under uvicorn on 127.0.0.1, its model the loopback
fake server, fuzzed from its own OpenAPI schema with schemathesis (valid and invalid data for every
operation): no 5xx, every status and content type declared, every body matching its declared schema,
every error JSON ``{"error": {"code", "message"}}``. Plus the requests the schema does not describe
(unknown paths, wrong methods, bodies that are not JSON) and the regressions the campaign found."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from fakeserver import FakeServer
from memchat.agent import Agent
from memchat.factory import open_store
from memchat.providers.openai_compat import OpenAICompatible
from memchat.server.app import create_app
from serving import Served


class App:
    def __init__(self, served: Served, agent: Agent) -> None:
        self.served = served
        self.agent = agent
        self.url = served.url
        self.http = httpx.Client(base_url=served.url, timeout=20)


@pytest.fixture
def app(fake: FakeServer, tmp_path: Path) -> Iterator[App]:
    provider = OpenAICompatible(fake.url, api_key="sk-upstream-secret-42", model="fake/model-a", max_retries=0)
    agent = Agent(open_store(tmp_path / "fuzz.db"), provider, persona="Be brief.", date_line=False)
    served = Served(create_app(agent))
    made = App(served, agent)
    yield made
    made.http.close()
    served.close()
    agent.close()


def error_shaped(response: httpx.Response | requests.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and bool(error["code"])
        and isinstance(error.get("message"), str)
        and bool(error["message"])
    )


# -- regressions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/api/sessions/{2**63}", None),
        ("GET", f"/api/sessions/{2**70}/export", None),
        ("PATCH", f"/api/sessions/{2**64}", {"name": "x"}),
        ("POST", f"/api/sessions/{2**63}/turns", {"text": "hi"}),
        ("POST", f"/api/sessions/{2**63}/fork", {}),
        ("GET", f"/api/images/{2**63}", None),
        ("POST", "/api/sessions/1/pins", {"message_id": 2**70}),
        ("POST", "/api/sessions/1/edit", {"message_id": 2**70, "text": "x"}),
        ("POST", "/api/sessions/1/fork", {"at": 2**70}),
    ],
)
def test_an_id_beyond_the_database_integers_is_a_422_not_a_500(
    app: App, method: str, path: str, body: dict[str, Any] | None
) -> None:
    app.http.post("/api/sessions", json={"name": "one"})
    r = app.http.request(method, path, json=body)
    assert r.status_code == 422, r.text
    assert error_shaped(r) and r.json()["error"]["code"] == "invalid"


def test_errors_raised_below_the_routes_have_the_error_shape_too(app: App) -> None:
    # a body that says JSON and is not UTF-8 (FastAPI's own 400), or not JSON at all
    r = app.http.post("/api/sessions", content=b'{"name": "\xff"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and error_shaped(r) and r.json()["error"]["code"] == "bad_request", r.text
    r = app.http.post("/api/sessions", content=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and error_shaped(r), r.text
    # no such route, and a route without that method (routing's 404 and 405)
    r = app.http.get("/api/no-such-thing")
    assert r.status_code == 404 and error_shaped(r) and r.json()["error"]["code"] == "not_found"
    r = app.http.delete("/api/health")
    assert r.status_code == 405 and error_shaped(r) and r.json()["error"]["code"] == "method_not_allowed"
    assert r.headers["allow"] == "GET"
