"""Text-to-image against a real loopback server speaking ModelScope's async task protocol and
OpenAI's images API: files saved safely, progress, failures, timeouts, cancel, download safety,
and the command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imageserver import MS_AUTH, ImageServer, Task
from memchat.errors import (
    AuthenticationError,
    ImageCancelled,
    ImageDownloadError,
    ImageFailed,
    ImageRequestError,
    ImageTimeout,
    ProviderError,
    RateLimited,
)
from memchat.images import ImageRequest
from memchat.images.download import check_url
from memchat.images.modelscope_async import ModelScopeImages
from memchat.images.openai_images import OpenAIImages

KEY = "ms-secret-key-0123456789"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def server_once() -> Iterator[ImageServer]:
    s = ImageServer().start()
    yield s
    s.close()


@pytest.fixture
def server(server_once: ImageServer) -> Iterator[ImageServer]:
    server_once.reset()
    yield server_once
    server_once.reset()


@pytest.fixture
def modelscope() -> Iterator[Callable[..., ModelScopeImages]]:
    """ModelScope adapters on the loopback server, polling fast (closed after the test)."""
    made: list[ModelScopeImages] = []

    def make(server: ImageServer, **kw: object) -> ModelScopeImages:
        options: dict[str, object] = {"poll_initial": 0.01, "poll_max": 0.02, "timeout": 5.0}
        options.update(kw)
        made.append(ModelScopeImages(server.url, api_key=KEY, **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for gen in made:
        gen.close()


def files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_task_walks_to_succeed_and_a_real_png_is_saved(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages]
) -> None:
    seen: list[tuple[str, float, str | None]] = []
    gen = modelscope(server)
    (image,) = gen.generate(
        ImageRequest("a cat in ink wash style", size="1024x1024", seed=7, negative_prompt="blurry"),
        dest_dir=tmp_path / "out",
        progress=lambda *a: seen.append(a),
    )
    gen.close()
    assert image.path.parent == tmp_path / "out" and image.path.read_bytes().startswith(PNG)
    assert len(image.path.stem) == 32 and image.path.suffix == ".png"  # <uuid>.png, nothing else
    assert files(tmp_path / "out") == [image.path]  # no temporary file left
    assert (image.provider, image.model, image.task_id, image.mime) == (
        "modelscope",
        "Qwen/Qwen-Image",
        "task-1",
        "image/png",
    )
    assert image.params == {"size": "1024x1024", "seed": 7, "negative_prompt": "blurry"}
    submit = server.requests[0]
    assert submit.headers["x-modelscope-async-mode"] == "true" and submit.headers["authorization"] == f"Bearer {KEY}"
    assert submit.body == {
        "model": "Qwen/Qwen-Image",
        "prompt": "a cat in ink wash style",
        "size": "1024x1024",
        "seed": 7,
        "negative_prompt": "blurry",
    }
    assert all(p.headers["x-modelscope-task-type"] == "image_generation" for p in server.polls())
    assert [s for s, _, _ in seen] == ["PENDING", "RUNNING"] and seen[0][1] <= seen[1][1]
    assert {t for _, _, t in seen} == {"task-1"}


def test_n_images_are_n_tasks_polled_together(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages]
) -> None:
    made = modelscope(server).generate(ImageRequest("three cats", n=3), dest_dir=tmp_path)
    assert [m.task_id for m in made] == ["task-1", "task-2", "task-3"]
    assert len({m.path.read_bytes() for m in made}) == 3 and all(m.path.read_bytes().startswith(PNG) for m in made)
    assert sum(r.path == "/v1/images/generations" for r in server.requests) == 3


def test_a_failed_task_says_why_and_saves_nothing(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages]
) -> None:
    server.script(Task(fail=True))
    with pytest.raises(ImageFailed, match=r"inappropriate content\. \(task task-1, request req-task-1\)"):
        modelscope(server).generate(ImageRequest("x"), dest_dir=tmp_path)
    assert files(tmp_path) == []


@pytest.mark.parametrize(
    "body",
    [
        {"errors": {"message": MS_AUTH}},
        {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
    ],
    ids=["modelscope-envelope", "openai-envelope"],
)
def test_a_refused_key_is_an_auth_error_without_the_key(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages], body: dict[str, object]
) -> None:
    server.http_errors.append((401, body, {}))
    with pytest.raises(AuthenticationError) as info:
        modelscope(server).generate(ImageRequest("x"), dest_dir=tmp_path)
    assert KEY not in str(info.value) and str(info.value)


def test_throttling_is_retried_and_a_used_up_quota_is_not(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages]
) -> None:
    server.http_errors.append((429, {"errors": {"message": "Request limit exceeded."}}, {"Retry-After": "0"}))
    (image,) = modelscope(server).generate(ImageRequest("x"), dest_dir=tmp_path)
    assert image.path.exists()
    server.reset()
    quota = {"modelscope-ratelimit-requests-remaining": "0"}
    server.http_errors.extend([(429, {"errors": {"message": "Request limit exceeded."}}, quota)] * 3)
    with pytest.raises(RateLimited) as info:
        modelscope(server).generate(ImageRequest("x"), dest_dir=tmp_path / "q")
    assert info.value.quota and len(server.requests) == 1  # not retried


def test_a_task_that_never_finishes_times_out_naming_it(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages]
) -> None:
    server.script(Task(never=True))
    with pytest.raises(ImageTimeout, match="the image task task-1 did not finish within 0.3 s"):
        modelscope(server, timeout=0.3).generate(ImageRequest("x"), dest_dir=tmp_path)
    assert files(tmp_path) == []


def test_cancel_stops_polling_at_once_and_leaves_no_file(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages]
) -> None:
    server.script(Task(never=True))
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(ImageCancelled):
        modelscope(server, poll_initial=0.5, poll_max=0.5).generate(ImageRequest("x"), dest_dir=tmp_path, cancel=cancel)
    assert time.monotonic() - start < 0.6 and files(tmp_path) == []


@pytest.mark.parametrize(
    "kind, message",
    [
        ("text", "not an image (content type 'text/html')"),
        ("fake", "bytes are not a image/png image"),
        ("redirect", "only https downloads are allowed"),
    ],
)
def test_unsafe_or_bogus_downloads_are_refused(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages], kind: str, message: str
) -> None:
    server.script(Task(image=kind, images=1))
    with pytest.raises(ImageDownloadError, match=re.escape(message)):
        modelscope(server).generate(ImageRequest("x"), dest_dir=tmp_path)
    assert files(tmp_path) == []


def test_an_oversized_image_is_refused_while_downloading(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages]
) -> None:
    server.script(Task(image="huge"))
    with pytest.raises(ImageDownloadError, match="limit is 1,000,000"):
        modelscope(server, max_download_bytes=1_000_000).generate(ImageRequest("x"), dest_dir=tmp_path)
    assert files(tmp_path) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/x.png",
        "https://127.0.0.1/x.png",
        "https://[::1]/x.png",
        "https://[::ffff:127.0.0.1]/x.png",
        "https://169.254.169.254/latest/meta-data",
        "http://example.com/x.png",
        "file:///etc/passwd",
    ],
)
def test_private_addresses_and_other_schemes_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(ImageDownloadError, match="refused URL"):
        check_url(url, trusted="https://api-inference.modelscope.cn/v1")


def test_the_services_own_host_is_trusted_even_on_loopback() -> None:
    check_url("http://127.0.0.1:8000/files/a.png", trusted="http://127.0.0.1:8000/v1")
    with pytest.raises(ImageDownloadError):
        check_url("http://127.0.0.1:8001/files/a.png", trusted="http://127.0.0.1:8000/v1")  # another port


@pytest.mark.parametrize(
    "request_, message",
    [
        (ImageRequest(" "), "the prompt is empty"),
        (ImageRequest("x" * 2000), "limit is 2,000"),
        (ImageRequest("x", size="big"), "size 'big'"),
        (ImageRequest("x", size="4096x4096"), "size '4096x4096'"),
        (ImageRequest("x", seed=-1), "seed -1"),
        (ImageRequest("x", steps=0), "steps 0"),
        (ImageRequest("x", guidance=99.0), "guidance 99.0"),
        (ImageRequest("x", n=11), "ask for 1 to 10"),
        (ImageRequest("x", loras={"a": 0.5, "b": 0.4}), "add up to 1.0"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_sent(
    server: ImageServer,
    tmp_path: Path,
    modelscope: Callable[..., ModelScopeImages],
    request_: ImageRequest,
    message: str,
) -> None:
    with pytest.raises(ImageRequestError, match=re.escape(message)):
        modelscope(server).generate(request_, dest_dir=tmp_path)
    assert server.requests == []


def test_the_synchronous_call_is_refused_by_the_server_as_modelscope_does(server: ImageServer) -> None:
    import httpx

    answer = httpx.post(server.url + "/images/generations", json={"model": "m", "prompt": "p"})
    assert answer.status_code == 400 and "does not support synchronous calls" in answer.json()["errors"]["message"]


@pytest.mark.parametrize("as_url", [False, True], ids=["b64_json", "url"])
def test_openai_images_inline_or_by_url(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages], as_url: bool
) -> None:
    server.mode, server.openai_urls = "openai", as_url
    gen = OpenAIImages(server.url, api_key="sk-x", model="dall-e-3")
    try:
        made = gen.generate(ImageRequest("a fox", n=2), dest_dir=tmp_path)
    finally:
        gen.close()
    assert len(made) == 2 and all(m.path.read_bytes().startswith(PNG) for m in made)
    body = server.requests[0].body
    assert body == {"model": "dall-e-3", "prompt": "a fox", "n": 2, "response_format": "b64_json"}
    assert ("revised_prompt" in made[0].params) is (not as_url)


# -- the command line ------------------------------------------------------------------------------

CLI = [sys.executable, "-m", "memchat.cli.main"]


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONIOENCODING": "utf-8", **env}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=full, stdin=subprocess.DEVNULL, timeout=60)


def test_memchat_image_saves_a_png_prints_its_path_and_keeps_it_with_the_session(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages]
) -> None:
    server.script(Task(polls=1))
    env = {"MEMCHAT_IMAGE_PROVIDER": "modelscope", "MEMCHAT_IMAGE_BASE_URL": server.url, "MEMCHAT_IMAGE_API_KEY": KEY}
    proc = cli("image", "a cat in ink wash style", "--size", "512x512", "-s", "art", env=env)
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    path = Path(line)
    assert "PENDING" in proc.stderr and KEY not in proc.stderr  # the progress line, not a tty: one per status
    from memchat.config import default_db_path
    from memchat.factory import open_store

    with open_store(default_db_path()) as db:
        # one layout everywhere: the session's own folder, named by its id
        assert path.read_bytes().startswith(PNG) and path.parent.name == str(db.get_session("art").id)
        (record,) = db.images("art")
    assert (record.prompt, record.path, record.task_id, record.params) == (
        "a cat in ink wash style",
        str(path),
        "task-1",
        {"size": "512x512"},
    )
    target = tmp_path / "one.png"
    proc = cli("image", "another", "-o", str(target), "--model", "MAILAND/majicflus_v1", env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == str(target) and target.read_bytes().startswith(PNG)
    submits = [r.body for r in server.requests if r.path == "/v1/images/generations"]
    assert submits[-1]["model"] == "MAILAND/majicflus_v1"  # --model names the image model here


def test_memchat_image_errors_are_one_line(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages]
) -> None:
    proc = cli("image", "a cat", env={})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no image provider is configured" in proc.stderr
    env = {"MEMCHAT_IMAGE_PROVIDER": "modelscope", "MEMCHAT_IMAGE_BASE_URL": server.url, "MEMCHAT_IMAGE_API_KEY": KEY}
    server.script(Task(fail=True, polls=0))
    proc = cli("image", "a cat", env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "memchat: the image could not be generated (Output data may contain inappropriate content. "
        "(task task-1, request req-task-1))"
    ]
    proc = cli("image", "a cat", "--seed", "-5", env=env)
    assert proc.returncode == 1 and proc.stderr.strip() == "memchat: seed -5: use 0 to 2147483647"


def test_a_retry_after_beyond_the_cap_fails_at_once(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages]
) -> None:
    """Regression (fault matrix): a throttled submit asking for 120 s was slept through."""
    server.http_errors.append((429, {"errors": {"message": "Request limit exceeded."}}, {"Retry-After": "120"}))
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        modelscope(server).generate(ImageRequest("x"), dest_dir=tmp_path)
    assert time.monotonic() - started < 5 and len(server.requests) == 1
    assert info.value.retry_after == 120 and not info.value.quota


def test_a_submit_that_times_out_is_not_sent_again_but_a_poll_is(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages]
) -> None:
    """Regression (fault matrix): a timed-out submit was retried, and may start a second paid task."""
    from imageserver import Fault
    from memchat.errors import ProviderTimeout

    server.faults.append(Fault(wait=10))
    with pytest.raises(ProviderTimeout):
        modelscope(server, http_timeout=0.5).generate(ImageRequest("x"), dest_dir=tmp_path / "a")
    assert [r.method for r in server.requests] == ["POST"]
    server.reset()
    server.script(Task(polls=0))
    server.faults.extend([None, Fault(wait=10)])  # the first poll hangs: asking again is harmless
    (image,) = modelscope(server, http_timeout=0.5).generate(ImageRequest("x"), dest_dir=tmp_path / "b")
    assert image.path.exists()
    assert [r.method for r in server.requests if not r.path.startswith("/files/")] == ["POST", "GET", "GET"]


def test_an_image_service_failure_names_the_image_settings(
    server: ImageServer, tmp_path: Path, modelscope: Callable[..., ModelScopeImages]
) -> None:
    """Regression (fault matrix): the line said "cannot reach the model server … MEMCHAT_BASE_URL"
    and "check MEMCHAT_API_KEY" for the image service, whose settings are MEMCHAT_IMAGE_*."""
    from fakeserver import refused_url
    from memchat.i18n import describe_error

    with pytest.raises(ProviderError) as info:
        ModelScopeImages(refused_url(), api_key=KEY, max_retries=0).generate(ImageRequest("x"), dest_dir=tmp_path)
    line = describe_error(info.value)
    assert line.startswith("cannot reach the image service (") and "MEMCHAT_IMAGE_BASE_URL" in line
    server.http_errors.append((401, {"errors": {"message": MS_AUTH}}, {}))
    with pytest.raises(AuthenticationError) as auth:
        modelscope(server).generate(ImageRequest("x"), dest_dir=tmp_path)
    line = describe_error(auth.value)
    assert line.startswith("the image service refused the API key (") and "MEMCHAT_IMAGE_API_KEY" in line
    assert KEY not in line
