"""The image port: what a request may ask for (checked before anything is sent), what comes back."""

from __future__ import annotations

import abc
import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memchat.errors import ImageRequestError

#: (status, seconds waited, task id) while a task runs
Progress = Callable[[str, float, str | None], None]

_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    model: str | None = None
    negative_prompt: str | None = None
    #: ``WIDTHxHEIGHT``
    size: str | None = None
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    #: a LoRA repo id, or {repo id: weight} (at most 6, weights summing to 1)
    loras: str | dict[str, float] | None = None
    #: the image to edit (editing models only)
    image_url: str | None = None
    n: int = 1

    def check(self) -> None:
        """One clear line for the first thing the services would refuse."""
        if not self.prompt or not self.prompt.strip():
            raise ImageRequestError("the prompt is empty")
        if len(self.prompt) >= 2000:
            raise ImageRequestError(f"the prompt is {len(self.prompt)} characters; the limit is 2,000")
        if self.negative_prompt is not None and len(self.negative_prompt) >= 2000:
            raise ImageRequestError("the negative prompt is over 2,000 characters")
        if self.size is not None:
            m = _SIZE.match(self.size)
            if not m or not (64 <= int(m.group(1)) <= 2048 and 64 <= int(m.group(2)) <= 2048):
                raise ImageRequestError(f"size {self.size!r}: use WIDTHxHEIGHT between 64x64 and 2048x2048")
        if self.seed is not None and not 0 <= self.seed <= 2**31 - 1:
            raise ImageRequestError(f"seed {self.seed}: use 0 to 2147483647")
        if self.steps is not None and not 1 <= self.steps <= 100:
            raise ImageRequestError(f"steps {self.steps}: use 1 to 100")
        if self.guidance is not None and not 1.5 <= self.guidance <= 20:
            raise ImageRequestError(f"guidance {self.guidance}: use 1.5 to 20")
        if not 1 <= self.n <= 10:
            raise ImageRequestError(f"-n {self.n}: ask for 1 to 10 images")
        if isinstance(self.loras, dict):
            if len(self.loras) > 6:
                raise ImageRequestError("at most 6 LoRAs")
            if abs(sum(self.loras.values()) - 1.0) > 1e-6:
                raise ImageRequestError("the LoRA weights must add up to 1.0")

    def params(self) -> dict[str, Any]:
        """The parameters set, as kept with the image."""
        keys = ("negative_prompt", "size", "seed", "steps", "guidance", "loras", "image_url")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


@dataclass(frozen=True)
class GeneratedImage:
    path: Path
    prompt: str
    provider: str
    model: str
    mime: str
    size: int
    url: str | None = None
    task_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


class ImageGenerator(abc.ABC):
    name: str = "images"
    model: str = ""

    @abc.abstractmethod
    def generate(
        self,
        request: ImageRequest,
        *,
        dest_dir: Path,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> list[GeneratedImage]:
        """Generate ``request.n`` images and save them under ``dest_dir``."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections."""


@contextlib.contextmanager
def all_or_nothing(saved: list[GeneratedImage]) -> Iterator[list[GeneratedImage]]:
    """Files saved inside the block are deleted if it fails: no half a set left behind."""
    try:
        yield saved
    except BaseException:
        for image in saved:
            image.path.unlink(missing_ok=True)
        raise
