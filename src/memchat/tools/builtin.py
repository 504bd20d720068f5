"""The tools memchat ships: ``now`` (the date the model cannot know), ``search_history`` (the
session's — and, if allowed, the user's other sessions' — older messages), ``remember`` and
``forget`` (the user's long-term memories) and ``generate_image``
(through the configured ``ImageGenerator``; the files are kept with the session)."""

from __future__ import annotations

import json
from pathlib import Path

from memchat.clock import WEEKDAYS, utc_offset, zone_name
from memchat.images.keep import generate_and_keep, to_record
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
    from memchat.memory.retrieve import rank_hits
    from memchat.memory.terms import query_words

    if context.store is None or context.session is None:
        return "error: no conversation to search"
    limit = max(1, min(int(limit), 20))
    words = query_words(query)
    own = context.store.search_words(words, session=context.session.id, limit=40) if words else []
    others = (
        context.store.search_words(words, session=None, exclude_session=context.session.id, limit=40)
        if words and context.search_all
        else []
    )
    ranked = [r[0] for r in rank_hits(own, others)][:limit]
    if not ranked:  # no word the ranked index knows: look for the text as it is (substrings)
        terms = query_terms(query) or ([query.strip()] if query.strip() else [])
        if not terms:
            return "error: the query has no words to search for"
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
    if context.store is not None and context.session is not None and context.images_dir is not None:
        records = generate_and_keep(context.images, request, context.store, context.session, Path(context.images_dir))
    else:  # a tool run outside a conversation: saved, kept nowhere
        records = [to_record(im) for im in context.images.generate(request, dest_dir=context.images_dir)]
    context.artifacts.extend(records)
    return json.dumps({"saved": [r.path for r in records]}, ensure_ascii=False)


def remember(
    content: str, context: ToolContext, kind: str | None = None, replaces: int | None = None, date: str | None = None
) -> str:
    """Save something to remember about the user across conversations: a fact, a preference,
    an instruction for every answer, or an event with its date. Use it when the user asks you
    to remember something, or tells you a lasting fact about themselves. To change what a
    memory says (the user moved, changed jobs…), pass its id as ``replaces``: the old one is
    kept in the history but no longer used.

    Args:
        content: the memory, one short self-contained sentence in the user's language
        kind: fact, preference, instruction or event
        replaces: the id (the number after m in [m12]) of the memory this one updates
        date: for an event, the day it happened or will happen, YYYY-MM-DD
    """
    if context.memories is None:
        return "error: long-term memory is off in this conversation"
    session = context.session
    memory = context.memories.add(
        content,
        kind=kind if kind in ("fact", "preference", "instruction", "event") else None,
        event_date=date or None,
        session_id=session.id if session is not None else None,
        replaces=replaces,
        today=context.now().date(),
    )
    context.artifacts.append(memory)
    return json.dumps({"remembered": f"m{memory.id}", "kind": memory.kind.value}, ensure_ascii=False)


def forget(context: ToolContext, memory_id: int | None = None, about: str | None = None) -> str:
    """Stop using a memory about the user, when they ask you to forget it or it is wrong.
    It is kept in the history (the user can restore it), but no longer used.

    Args:
        memory_id: the id of the memory (the number after m in [m12])
        about: words of the memory to forget, when its id is not known
    """
    if context.memories is None:
        return "error: long-term memory is off in this conversation"
    if memory_id is not None:
        memory = context.memories.forget(int(memory_id))
    elif about:
        memory = context.memories.forget_matching(about)
        if memory is None:
            return "no memory matches that"
    else:
        return "error: give memory_id or about"
    context.artifacts.append(memory)
    return json.dumps({"forgot": f"m{memory.id}", "content": memory.content}, ensure_ascii=False)


#: tools offered only while long-term memory is on in the session
MEMORY_TOOLS = ("remember", "forget")


def builtin_tools() -> list[Tool]:
    """``now``, ``search_history``, ``remember`` and ``forget`` (offered while long-term memory is
    on) and ``generate_image`` (offered only with an image provider)."""
    # an image takes a task, polling and a download: up to the image API's own 300 s cap
    return [
        make_tool(now),
        make_tool(search_history),
        make_tool(remember),
        make_tool(forget),
        make_tool(generate_image, timeout=330),
    ]
