"""The one place where generated images are saved and kept with their session: the REPL's
``/image``, ``memchat image -s``, the ``generate_image`` tool and the HTTP API all come here.

Files go under the images directory, one folder per session id (a rename does not move them);
each image becomes an ``ImageRecord`` of the session, placed after its last message."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memchat.domain import ImageRecord, SessionInfo
from memchat.images.base import GeneratedImage, ImageGenerator, ImageRequest, Progress

if TYPE_CHECKING:
    from memchat.stores.base import Store


def session_folder(images_dir: Path, session: SessionInfo) -> Path:
    """Where a session's images are saved."""
    return images_dir / str(session.id)


def to_record(image: GeneratedImage | Any) -> ImageRecord:
    """A ``GeneratedImage`` as the session keeps it."""
    return ImageRecord(
        prompt=image.prompt,
        path=str(image.path),
        provider=image.provider,
        model=image.model,
        params=dict(image.params),
        task_id=image.task_id,
        mime=image.mime,
        size=image.size,
    )


def generate_and_keep(
    generator: ImageGenerator,
    request: ImageRequest,
    store: Store,
    session: SessionInfo,
    images_dir: Path,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> list[ImageRecord]:
    """Generate, save under the session's folder, keep with the session; the stored records."""
    made = generator.generate(request, dest_dir=session_folder(images_dir, session), progress=progress, cancel=cancel)
    return store.add_images(session.id, [to_record(im) for im in made])
