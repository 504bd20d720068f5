"""What both image adapters share: a client with the key, error mapping, bounded retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from memchat.errors import ImageCancelled, ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited, ServerError
from memchat.providers._httpx import httpx
from memchat.providers.http_errors import status_error
from memchat.providers.openai_compat import MAX_RETRY_AFTER


class ImageHTTP:
    def __init__(self, base_url: str, api_key: str | None, *, timeout: float, max_retries: int) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self._client: httpx.Client | None = None

    def client(self) -> httpx.Client:
        if self._client is None:
            headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
            self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(self.timeout, connect=10.0))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        cancel: threading.Event | None = None,
    ) -> Any:
        """The JSON answer of one request; throttling, server errors and failed connections
        retried a few times (a timeout only for a GET; a ``Retry-After`` beyond ``MAX_RETRY_AFTER``
        fails at once)."""
        url = self.base_url + path
        error: ProviderError
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client().request(method, url, json=json_body, headers=headers)
            except httpx.ConnectTimeout:  # nothing was sent: as safe to retry as a refused connection
                error = ProviderUnavailable(f"timed out connecting to {self.base_url}")
            except httpx.TimeoutException as exc:
                error = ProviderTimeout(f"no answer from {self.base_url} within {self.timeout:g} s")
                error.__cause__ = exc
            except httpx.HTTPError as exc:
                error = ProviderUnavailable(
                    f"cannot reach {self.base_url}: {self.scrub(str(exc)) or type(exc).__name__}"
                )
            else:
                if response.status_code < 300:
                    try:
                        return response.json()
                    except ValueError:
                        raise ServerError(
                            f"{self.base_url} answered with something that is not JSON", service="image"
                        ) from None
                error = status_error(response, self.scrub)
            retry_after = error.retry_after if isinstance(error, RateLimited) else None
            # a request that timed out may have been carried out: only a GET is asked again
            # (a second submit could start a second paid task)
            timed_out = isinstance(error, ProviderTimeout) and method.upper() == "GET"
            retry = (
                timed_out
                or isinstance(error, ServerError | ProviderUnavailable)
                or (
                    isinstance(error, RateLimited)
                    and not error.quota
                    and (retry_after is None or retry_after <= MAX_RETRY_AFTER)  # else fail now, not in an hour
                )
            )
            if not retry or attempt == self.max_retries:
                error.info.setdefault("service", "image")  # the line names the image service's settings
                raise error
            wait = retry_after or min(1.0 * 2**attempt, 8.0)
            sleep(wait, cancel)
        raise AssertionError("unreachable")


def sleep(seconds: float, cancel: threading.Event | None, on_cancel: Callable[[], None] | None = None) -> None:
    """Wait, or stop at once when ``cancel`` is set."""
    if cancel is None:
        time.sleep(seconds)
        return
    if cancel.wait(seconds):
        if on_cancel is not None:
            on_cancel()
        raise ImageCancelled("image generation cancelled")
