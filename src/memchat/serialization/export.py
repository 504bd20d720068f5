"""Session export: JSONL (re-importable, ``imports.py``) and a Markdown transcript (for people).

An export holds no ids and no secrets. A pinned message carries ``"pinned": true``; a
summary's ``first_seq``/``last_seq`` are the numbers of the messages it covers *in the
file* (1 = the first message line). The versions of a point that are not shown (a reply a
regenerate replaced, a message before an edit) are ``version`` lines among the message lines,
where each began, so that an import keeps their order (``VersionRecord``)."""

from __future__ import annotations

import bisect
import json
from typing import Any

from memchat.domain import ImageRecord, Role, Status, human_size
from memchat.serialization.wire import (
    covered,
    format_time,
    image_line,
    message_record,
    numbers,
    session_record,
    summary_record,
    version_record,
)
from memchat.stores.base import Store

#: characters ``str.splitlines()`` (and some editors) take as line breaks that JSON leaves raw
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _dump(record: Any) -> str:
    """One JSONL line: UTF-8 text kept readable, but nothing a line splitter could cut."""
    return json.dumps(record, ensure_ascii=False).translate(_LINE_BREAKS)


def export_jsonl(store: Store, name: str | int) -> str:
    """The session as JSONL: a ``session`` line, one ``message`` line per message (pinned ones
    marked), then one ``summary`` line per summary. A summary none of whose messages is left
    (after a truncate) covers nothing and is not exported."""
    info = store.get_session(name)
    messages = store.messages(info.id)
    pinned = {p.id for p in store.pins(info.id)}
    seqs = numbers(messages)
    data = store.attachment_data  # the files go whole, in base64
    lines = [_dump(session_record(info))]
    number = {m.id: i for i, m in enumerate(messages, 1)}  # message id → its number in the file
    shelved = store.shelved_versions(info.id)
    for v in shelved:  # the versions' messages are numbered after the message lines
        number.update((m.id, len(number) + 1) for m in v.messages)
    versions = iter(shelved)
    pending = next(versions, None)
    for m in messages:
        while pending is not None and (pending.messages[0].seq or 0) < (m.seq or 0):
            lines.append(_dump(version_record(pending.messages, number.get(pending.after, 0), pending.pinned, data)))
            pending = next(versions, None)
        lines.append(_dump(message_record(m, pinned=m.id in pinned, data=data)))
    while pending is not None:
        lines.append(_dump(version_record(pending.messages, number.get(pending.after, 0), pending.pinned, data)))
        pending = next(versions, None)
    for summary in store.summaries(info.id):
        span = covered(seqs, summary.first_seq, summary.last_seq)
        if span is not None:
            lines.append(_dump(summary_record(summary, *span)))
    for image in store.images(info.id):
        lines.append(_dump(image_line(image, bisect.bisect_right(seqs, image.after_seq))))
    return "\n".join(lines) + "\n"


def export_markdown(store: Store, name: str | int) -> str:
    """The session as a Markdown transcript, for people (not re-importable)."""
    info = store.get_session(name)
    messages = store.messages(info.id)
    pinned = {p.id for p in store.pins(info.id)}
    marks = store.version_marks(info.id)
    seqs = numbers(messages)
    out = [f"# {info.name}", ""]
    facts = [
        ("model", info.model),
        ("provider", info.provider),
        ("memory", info.memory),
        ("created", format_time(info.created)),
        ("updated", format_time(info.updated)),
        ("messages", str(len(messages))),
    ]
    out.extend(f"- **{key}**: {value}" for key, value in facts if value)
    out.append("")
    if info.persona:
        out += ["## Persona", "", info.persona.rstrip("\n"), ""]
    summaries = store.summaries(info.id)
    span = covered(seqs, summaries[-1].first_seq, summaries[-1].last_seq) if summaries else None
    if span is not None:  # the running summary in use; its earlier versions only in the JSONL export
        latest = summaries[-1]
        notes = [n for n in (latest.model, _tokens(latest.tokens)) if n]
        if len(summaries) > 1:
            notes.append(f"{len(summaries) - 1} earlier version" + ("s" if len(summaries) > 2 else ""))
        title = f"## Summary of messages {span[0]}–{span[1]}"
        out += [title + "".join(" · " + n for n in notes), "", _quote(latest.content), ""]
    images: dict[int, list[ImageRecord]] = {}
    for image in store.images(info.id):  # each after the message it followed (0: none left)
        i = bisect.bisect_right(seqs, image.after_seq)
        images.setdefault(seqs[i - 1] if i else 0, []).append(image)
    for i, m in enumerate(messages, 1):
        notes = [n for n in (m.model if m.role is Role.ASSISTANT else None, _tokens(m.tokens)) if n]
        if m.status is not Status.COMPLETE:
            notes.append(f"*{m.status.value}*")
        if m.id in pinned:
            notes.append("📌 *pinned*")
        mark = marks.get(m.id or 0)
        if mark is not None:  # the others are in the JSONL export
            notes.append(f"version {mark.number} of {mark.count}")
        title = f"## {i}. {m.role.value.capitalize()}"
        if notes:
            title += " · " + " · ".join(notes)
        body = m.content.rstrip("\n") if m.content else ("" if m.tool_calls else "*(empty)*")
        calls = [c.get("function") or {} for c in m.tool_calls or ()]
        body += "".join(f"\n\n→ `{fn.get('name')}({fn.get('arguments') or ''})`" for fn in calls)
        body += "".join(f"\n\n📎 {a.name} ({a.media_type}, {human_size(a.size)})" for a in m.attachments)
        out += [title, "", body.strip("\n"), ""]
        for image in images.get(m.seq or 0, []):
            out += [f"![{_alt(image.prompt)}]({_md_path(image.path)})", ""]
    for image in images.get(0, []):
        out += [f"![{_alt(image.prompt)}]({_md_path(image.path)})", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _alt(text: str) -> str:
    return " ".join(text.replace("[", "(").replace("]", ")").split())[:200]


def _md_path(path: str) -> str:
    return path.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.rstrip("\n").split("\n"))


def _tokens(tokens: int | None) -> str | None:
    if tokens is None:
        return None
    return f"{tokens} token" + ("" if tokens == 1 else "s")
