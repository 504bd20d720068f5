"""OpenAI's images API (``POST /images/generations``) and servers that copy it: the image
comes inline (``b64_json``) or as a URL fetched at once."""

from __future__ import annotations

import base64
import binascii
import threading
from pathlib import Path
from typing import Any

from memchat.errors import ServerError
from memchat.images.base import GeneratedImage, ImageGenerator, ImageRequest, Progress, all_or_nothing
from memchat.images.download import MAX_BYTES, fetch, save_bytes
from memchat.images.http import ImageHTTP

DEFAULT_MODEL = "gpt-image-1"


class OpenAIImages(ImageGenerator):
    name = "openai"

    def __init__(
        self,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        model: str | None = DEFAULT_MODEL,
        *,
        http_timeout: float = 300.0,
        max_retries: int = 2,
        max_download_bytes: int = MAX_BYTES,
    ) -> None:
        self.http = ImageHTTP(base_url, api_key, timeout=http_timeout, max_retries=max_retries)
        self.model = model or DEFAULT_MODEL
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
        body: dict[str, Any] = {"model": model, "prompt": request.prompt, "n": request.n}
        if request.size:
            body["size"] = request.size
        if model.startswith("dall-e"):
            body["response_format"] = "b64_json"  # GPT image models always answer base64
        if progress is not None:
            progress("RUNNING", 0.0, None)
        answer = self.http.call("POST", "/images/generations", json_body=body, cancel=cancel)
        items = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(items, list) or not items:
            raise ServerError(f"the image service returned no image: {str(answer)[:200]}", service="image")
        with all_or_nothing([]) as saved:
            for item in items:
                item = item if isinstance(item, dict) else {}
                params = request.params()
                if item.get("revised_prompt"):
                    params["revised_prompt"] = item["revised_prompt"]
                url = item.get("url") or None
                if item.get("b64_json"):
                    try:
                        data = base64.b64decode(item["b64_json"], validate=True)
                    except (binascii.Error, ValueError):
                        raise ServerError("the image service sent invalid base64", service="image") from None
                    path, mime, size = save_bytes(data, "image/png", dest_dir)
                elif url:
                    path, mime, size = fetch(
                        self.http.client(),
                        url,
                        trusted=self.http.base_url,
                        dest_dir=dest_dir,
                        max_bytes=self.max_download_bytes,
                    )
                else:
                    raise ServerError(
                        "the image service returned an item with neither b64_json nor url", service="image"
                    )
                saved.append(GeneratedImage(path, request.prompt, self.name, model, mime, size, url, None, params))
        return saved
