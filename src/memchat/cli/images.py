"""``memchat image PROMPT``: generate images, save them, print their paths; a progress line
with the task's status and the time waited; Ctrl-C cancels cleanly (no file left)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memchat.cli.cli_strings import t
from memchat.cli.common import UsageError, err, settings_for, store_for

if TYPE_CHECKING:
    import argparse

    from memchat.config import Settings


def image_settings(args: argparse.Namespace) -> Settings:
    extra = {k: getattr(args, k, None) for k in ("image_provider", "image_model")}
    return settings_for(args, **extra)


def cmd_image(args: argparse.Namespace) -> int:
    from memchat.factory import images_dir, make_image_generator
    from memchat.images.base import ImageRequest
    from memchat.images.keep import session_folder
    from memchat.service import Sessions

    prompt = " ".join(args.prompt).strip()
    if not prompt:
        raise UsageError(t("cli.image_no_prompt"))
    settings = image_settings(args)
    generator = make_image_generator(settings)
    if generator is None:
        raise UsageError(t("cli.image_no_provider"))
    request = ImageRequest(
        prompt=prompt,
        model=args.image_model or getattr(args, "model", None) or None,  # --model names the image model here
        negative_prompt=args.negative,
        size=args.size,
        seed=args.seed,
        steps=args.steps,
        guidance=args.guidance,
        image_url=args.image_url,
        n=args.n,
    )
    target = Path(args.output).expanduser() if args.output else None
    single_file = target is not None and target.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".gif")
    if single_file and args.n != 1:
        raise UsageError(t("cli.image_one_file"))
    info = None
    if args.session:  # the session exists (or is made) first: its images go in its own folder
        sessions = Sessions(store_for(settings))
        try:
            info = sessions.ensure(args.session)
        finally:
            sessions.close()
    if target is not None:
        dest = target.parent if single_file else target
    else:  # the one layout of images/keep.py: a folder per session id; "cli" for none
        dest = session_folder(images_dir(), info) if info is not None else images_dir() / "cli"
    cancel = threading.Event()
    progress = _Progress()
    try:
        made = generator.generate(request, dest_dir=dest, progress=progress.update, cancel=cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise
    finally:
        progress.close()
        generator.close()
    paths = [Path(im.path) for im in made]
    if single_file and target is not None and paths:
        paths[0].replace(target)
        paths = [target]
        made = [_moved(made[0], target)]
    if info is not None:
        sessions = Sessions(store_for(settings))
        try:
            sessions.keep_images(info.id, made)
        finally:
            sessions.close()
    sys.stdout.write("".join(f"{p}\n" for p in paths))
    return 0


def _moved(image: Any, path: Path) -> Any:
    import dataclasses

    return dataclasses.replace(image, path=path)


class _Progress:
    """``⠋ RUNNING · 12 s · task abc`` on stderr, redrawn in place on a terminal; one line per
    status change otherwise."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last = ""
        self._status: Any = None
        if self._tty:
            from rich.console import Console

            self._status = Console(stderr=True).status(t("cli.image_submitting"))
            self._status.start()
        self._started = time.monotonic()

    def update(self, status: str, elapsed: float, task_id: str | None) -> None:
        line = t("cli.image_progress", status=status, seconds=f"{elapsed:.0f}", task=task_id or "-")
        if self._status is not None:
            self._status.update(line)
        elif status != self._last:
            err(line)
        self._last = status

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
