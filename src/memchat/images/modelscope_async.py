"""ModelScope API-Inference text-to-image: submit a task (``X-ModelScope-Async-Mode: true``),
poll ``/tasks/{id}`` with backoff until SUCCEED, FAILED or a time cap, download the images.
One task per requested image; the tasks run side by side."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from memchat.errors import ImageFailed, ImageTimeout, ServerError
from memchat.images.base import GeneratedImage, ImageGenerator, ImageRequest, Progress, all_or_nothing
from memchat.images.download import MAX_BYTES, fetch
from memchat.images.http import ImageHTTP, sleep

DEFAULT_MODEL = "Qwen/Qwen-Image"
#: statuses that end a task without images
FAILED = ("FAILED", "CANCEL", "CANCELED", "CANCELLED", "UNKNOWN")


class ModelScopeImages(ImageGenerator):
    name = "modelscope"

    def __init__(
        self,
        base_url: str = "https://api-inference.modelscope.cn/v1",
        api_key: str | None = None,
        model: str | None = DEFAULT_MODEL,
        *,
        poll_initial: float = 2.0,
        poll_max: float = 5.0,
        timeout: float = 300.0,
        http_timeout: float = 30.0,
        max_retries: int = 2,
        max_download_bytes: int = MAX_BYTES,
    ) -> None:
        self.http = ImageHTTP(base_url, api_key, timeout=http_timeout, max_retries=max_retries)
        self.model = model or DEFAULT_MODEL
        self.poll_initial, self.poll_max, self.timeout = poll_initial, poll_max, timeout
        self.max_download_bytes = max_download_bytes

    def close(self) -> None:
        self.http.close()

    def generate(
        self,
        request: ImageRequest,
        *,
        dest_dir: Path,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> list[GeneratedImage]:
        request.check()
        model = request.model or self.model
        start = time.monotonic()
        tasks = [self._submit(request, model, cancel) for _ in range(request.n)]
        urls = self._wait(tasks, start, progress, cancel)
        with all_or_nothing([]) as saved:
            for task_id in tasks:
                for url in urls[task_id]:
                    if cancel is not None and cancel.is_set():
                        sleep(0, cancel)
                    path, mime, size = fetch(
                        self.http.client(),
                        url,
                        trusted=self.http.base_url,
                        dest_dir=dest_dir,
                        max_bytes=self.max_download_bytes,
                    )
                    saved.append(
                        GeneratedImage(
                            path, request.prompt, self.name, model, mime, size, url, task_id, request.params()
                        )
                    )
        return saved

    def _submit(self, request: ImageRequest, model: str, cancel: threading.Event | None) -> str:
        body: dict[str, Any] = {"model": model, "prompt": request.prompt, **request.params()}
        answer = self.http.call(
            "POST", "/images/generations", json_body=body, headers={"X-ModelScope-Async-Mode": "true"}, cancel=cancel
        )
        task_id = answer.get("task_id") if isinstance(answer, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ServerError(f"the image service did not return a task id: {str(answer)[:200]}", service="image")
        return task_id

    def _wait(
        self, tasks: list[str], start: float, progress: Progress | None, cancel: threading.Event | None
    ) -> dict[str, list[str]]:
        pending = list(tasks)
        done: dict[str, list[str]] = {}
        delay = self.poll_initial
        while True:
            for task_id in list(pending):
                answer = self.http.call(
                    "GET", f"/tasks/{task_id}", headers={"X-ModelScope-Task-Type": "image_generation"}, cancel=cancel
                )
                answer = answer if isinstance(answer, dict) else {}
                status = str(answer.get("task_status") or "").upper()
                if status == "SUCCEED":
                    images = answer.get("output_images") or []
                    done[task_id] = [u for u in images if isinstance(u, str)]
                    if not done[task_id]:
                        raise ImageFailed(f"task {task_id} succeeded without an image")
                    pending.remove(task_id)
                elif status in FAILED:
                    errors: dict[str, Any] = answer["errors"] if isinstance(answer.get("errors"), dict) else {}
                    message = str(errors.get("message") or status.lower())
                    request_id = answer.get("request_id")
                    where = f"task {task_id}" + (f", request {request_id}" if request_id else "")
                    raise ImageFailed(self.http.scrub(f"{message} ({where})"), task_id=task_id)
                elif progress is not None:
                    progress(status or "PENDING", time.monotonic() - start, task_id)
            if not pending:
                return done
            elapsed = time.monotonic() - start
            if elapsed >= self.timeout:
                raise ImageTimeout(
                    f"the image task {pending[0]} did not finish within {self.timeout:g} s; "
                    "it may still complete on ModelScope's side",
                    task_id=pending[0],
                )
            sleep(min(delay, max(0.0, self.timeout - elapsed)), cancel)
            delay = min(delay * 1.5, self.poll_max)
