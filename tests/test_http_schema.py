"""Bad input over HTTP (issue 8): the real app under uvicorn on 127.0.0.1, its model the loopback
fake server, fuzzed from its own OpenAPI schema with schemathesis (valid and invalid data for every
operation): no 5xx, every status and content type declared, every body matching its declared schema,
every error JSON ``{"error": {"code", "message"}}``. Plus the requests the schema does not describe
(unknown paths, wrong methods, bodies that are not JSON) and the regressions the campaign found."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

import campaign
from fakeserver import FakeServer
from memchat.agent import Agent
from memchat.factory import open_store
from memchat.providers.openai_compat import OpenAICompatible
from memchat.server.app import create_app
from serving import Served

schemathesis = pytest.importorskip("schemathesis")

from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


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


def test_a_long_context_text_is_a_422_not_a_dropped_connection(app: App) -> None:
    """Regression: the schema allowed 100,000 characters in ``…/context?text=``; uvicorn drops a
    connection whose request head is that long, so the client saw a reset instead of an answer."""
    sid = app.http.post("/api/sessions", json={"name": "c"}).json()["id"]
    assert app.http.get(f"/api/sessions/{sid}/context", params={"text": "长" * 1000}).status_code == 200
    r = app.http.get(f"/api/sessions/{sid}/context", params={"text": "x" * 1001})
    assert r.status_code == 422 and error_shaped(r)


def test_a_body_that_is_not_json_says_so(app: App) -> None:
    r = app.http.post("/api/sessions", content=b'{"name": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"
    assert r.json()["error"]["message"].startswith("the body is not valid JSON: ")


def test_the_schema_declares_every_error_and_every_media_type(app: App) -> None:
    """Every operation declares the JSON error shape for the guard's and validation's statuses;
    the streams, the export and the image file declare what they really send."""
    spec = app.http.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for status in ("400", "401", "403", "413", "415", "421", "422"):
                content = responses[status]["content"]["application/json"]["schema"]
                assert content.get("$ref", "").endswith("/ErrorBody") or "error" in content.get("properties", {}), (
                    method,
                    path,
                    status,
                )
            if "{session_id}" in path:
                assert "404" in responses, (method, path)
    turns = spec["paths"]["/api/sessions/{session_id}/turns"]["post"]["responses"]
    assert list(turns["200"]["content"]) == ["text/event-stream"] and "409" in turns
    export = spec["paths"]["/api/sessions/{session_id}/export"]["get"]["responses"]["200"]["content"]
    assert set(export) == {"application/x-ndjson", "text/markdown"}


@pytest.mark.parametrize("options", [[1], "x", 3, True])
def test_stream_options_that_are_not_an_object_are_a_400_before_any_turn(app: App, options: Any) -> None:
    """Regression: ``"stream_options": [1]`` was a 500 (AttributeError) after the turn had started."""
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True, "stream_options": options, "user": "so"}
    r = app.http.post("/v1/chat/completions", json=body)
    assert r.status_code == 400 and error_shaped(r) and r.json()["error"]["code"] == "invalid_stream_options"
    assert app.agent.store.find_session("so") is None or app.agent.store.messages("so") == []


@pytest.mark.parametrize("stream", [False, True])
def test_a_session_named_in_chinese_or_with_control_characters_is_answered(app: App, stream: bool) -> None:
    """Regression: the reply's X-Memchat-Session header echoed the name raw, and a header carries
    only Latin-1: a session named in Chinese (or emoji, or with a control character) was a 500."""
    from urllib.parse import unquote

    for name in ("日记 🙂", "a\tb", "ok-name"):
        body = {"messages": [{"role": "user", "content": "hi"}], "metadata": {"session": name}, "stream": stream}
        r = app.http.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        assert unquote(r.headers["x-memchat-session"]) == name
        assert [m.content for m in app.agent.store.messages(name)][:1] == ["hi"]
        app.agent.store.delete_session(app.agent.store.get_session(name).id)


# -- schemathesis over the whole schema ------------------------------------------------------------------

#: examples per operation and generation mode (about 30 operations, valid and invalid data)
EXAMPLES = campaign.size(12, 150)
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


def _from_the_app(response: requests.Response) -> bool:
    """Whether the app (behind the guard) answered, rather than uvicorn refusing a request that is
    not valid HTTP (schemathesis's invalid data includes control characters in a query string)."""
    return "content-security-policy" in response.headers


class Tally:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.failures: dict[tuple[str, str], str] = {}
        self.refused_by_uvicorn = 0


def fuzz_operation(app: App, operation: Any, mode: Any, known: list[int], http: requests.Session, tally: Tally) -> None:
    """``EXAMPLES`` cases of one operation in one mode (valid or invalid data), every answer checked."""
    label = f"{operation.label} [{mode.value}]"

    @SETTINGS
    @given(case=operation.as_strategy(mode), pick=st.sampled_from([None, *known]))
    def fuzz(case: Any, pick: int | None) -> None:
        if pick is not None and isinstance(case.path_parameters, dict) and "session_id" in case.path_parameters:
            case.path_parameters["session_id"] = pick  # often an existing session, not only missing ones
        response = case.call(base_url=app.url, session=http, timeout=30)
        tally.calls[mode.value] += 1
        tally.statuses[response.status_code] += 1
        if not _from_the_app(response):
            tally.refused_by_uvicorn += 1
            assert response.status_code == 400, response.text
            return
        try:
            case.validate_response(response, checks=CHECKS, transport_kwargs={"base_url": app.url})
        except FailureGroup as group:
            for failure in group.exceptions:
                tally.failures.setdefault((label, failure.title), f"{response.status_code} {response.text[:300]!r}")
        if response.status_code >= 400 and not error_shaped(response):
            tally.failures.setdefault((label, "error shape"), f"{response.status_code} {response.text[:300]!r}")

    try:
        fuzz()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing to make invalid (no parameters, no body)


@pytest.mark.campaign
def test_schemathesis_finds_no_server_error_and_no_schema_violation(app: App) -> None:
    # a few sessions with messages, so that generated ids hit real ones as well as missing ones
    known: list[int] = []
    for name in ("alpha", "beta", "gamma"):
        made = app.http.post("/api/sessions", json={"name": name})
        known.append(made.json()["id"])
        app.http.post(f"/api/sessions/{known[-1]}/turns", json={"text": f"hello {name} 你好 🙂"})
    schema = schemathesis.openapi.from_url(app.url + "/openapi.json")
    http = requests.Session()
    tally = Tally()
    operations = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(app, result.ok(), mode, known, http, tally)
    statuses = tally.statuses
    figures = {
        "schemathesis": schemathesis.__version__,
        "operations": operations,
        "examples_per_operation_and_mode": EXAMPLES,
        "requests": sum(tally.calls.values()),
        "valid_data_requests": tally.calls["positive"],
        "invalid_data_requests": tally.calls["negative"],
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "refused_by_uvicorn_as_invalid_http": tally.refused_by_uvicorn,
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
        "violations": len(tally.failures),
        "seconds": round(time.monotonic() - started, 1),
    }
    campaign.record("schema_fuzz", figures)
    assert not tally.failures, "\n".join(f"{k}: {v}" for k, v in sorted(tally.failures.items()))
    assert figures["server_errors"] == 0
