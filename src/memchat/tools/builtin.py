"""The tools memchat ships: ``now`` (the date the model cannot know), ``search_history`` (the
session's — and, if allowed, the user's other sessions' — older messages) and ``generate_image``
(through the configured ``ImageGenerator``; the files are kept with the session)."""

from __future__ import annotations

import json
from typing import Any

from memchat.clock import WEEKDAYS, utc_offset, zone_name
from memchat.domain import ImageRecord
from memchat.tools.base import Tool, ToolContext, make_tool


def now(context: ToolContext) -> str:
    """The current date, time, weekday and time zone of the user."""
    moment = context.now()
    return json.dumps(
        {
            "date": moment.strftime("%Y-%m-%d"),
            "time": moment.strftime("%H:%M:%S"),
            "weekday": WEEKDAYS["en"][moment.weekday()],
            "timezone": zone_name(moment),
            "utc_offset": utc_offset(moment),
            "iso": moment.isoformat(timespec="seconds"),
        },
        ensure_ascii=False,
    )


def search_history(query: str, context: ToolContext, limit: int = 5) -> str:
    """Search the earlier messages of this conversation (and, when allowed, the user's other
    conversations) for words or phrases; returns the best matches, newest first on ties.

    Args:
        query: the words to look for (any language; Chinese works)
        limit: how many messages to return, 1 to 20
    """
    from memchat.memory.recall import query_terms, rank

    if context.store is None or context.session is None:
        return "error: no conversation to search"
    terms = query_terms(query) or ([query.strip()] if query.strip() else [])
    if not terms:
        return "error: the query has no words to search for"
    limit = max(1, min(int(limit), 20))
    hits = context.store.search(terms, session=context.session.id, limit=40)
    if context.search_all:
        hits += context.store.search(terms, session=None, exclude_session=context.session.id, limit=40)
    ranked = rank(hits, terms)[:limit]
    if not ranked:
        return "no earlier message matches"
    lines = []
    for h in ranked:
        where = "" if h.session == context.session.name else f" {h.session}"
        text = " ".join(h.message.content.split())
        lines.append(f"[#{h.message.seq}{where} {h.message.role.value}] {text[:400]}")
    return "\n".join(lines)


def generate_image(
    prompt: str, context: ToolContext, size: str | None = None, negative_prompt: str | None = None, n: int = 1
) -> str:
    """Generate images from a text description (text-to-image) and save them; returns the files.

    Args:
        prompt: what the image shows, in detail (any language)
        size: WIDTHxHEIGHT, for example 1024x1024
        negative_prompt: what the image must not show
        n: how many images, 1 to 4
    """
    if context.images is None:
        return "error: no image provider is configured (MEMCHAT_IMAGE_PROVIDER)"
    from memchat.images.base import ImageRequest

    request = ImageRequest(prompt=prompt, size=size, negative_prompt=negative_prompt, n=max(1, min(int(n), 4)))
    made = context.images.generate(request, dest_dir=context.images_dir)
    records = [to_record(im) for im in made]
    if context.store is not None and context.session is not None:
        context.store.add_images(context.session.id, records)
    context.artifacts.extend(records)
    return json.dumps({"saved": [r.path for r in records]}, ensure_ascii=False)


def to_record(image: Any) -> ImageRecord:
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


def builtin_tools() -> list[Tool]:
    """``now``, ``search_history`` and ``generate_image`` (offered only with an image provider)."""
    # an image takes a task, polling and a download: up to the image API's own 300 s cap
    return [make_tool(now), make_tool(search_history), make_tool(generate_image, timeout=330)]
