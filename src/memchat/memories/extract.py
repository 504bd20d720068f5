"""Automatic extraction of memories from the newest exchange, as mem0 does it.

After a turn the chat model is given today's date, the exchange (the user's message and the
assistant's reply) and the served memories most related to it, and answers what to add,
update (supersede) or leave alone, as JSON::

    {"memories": [{"op": "add", "kind": "fact", "text": "Lives in Munich", "date": null},
                  {"op": "update", "id": 12, "kind": "fact", "text": "Works at Siemens", "date": null},
                  {"op": "none"}]}

``parse_operations`` reads that answer tolerantly (code fences, prose around it, a bare list,
a ``<think>`` block before it) and validates every field; ``apply`` stores the result through
``MemoryService`` (which drops exact repeats and supersedes same-subject facts by itself).

Decisions, for the model's inevitable mistakes:

* an unknown ``op`` or ``kind`` skips that entry (a missing or null ``kind`` is left to
  ``MemoryService``'s guess);
* ``update`` of an id that was not among the memories shown is treated as an ``add`` (the text
  is still something the model found worth keeping; ``MemoryService.add`` supersedes a served
  memory on the same subject itself, so nothing goes stale);
* a second ``update`` of the same id is skipped (the first one wins: two new versions of one
  memory contradict each other); a repeated text is skipped;
* a text is made one line, stripped of list marks and quotes, and skipped when it has no
  letters or is longer than ``MAX_TEXT`` characters (a memory is a sentence, not a document);
* a date that is not a real ``YYYY-MM-DD`` day (between 1900 and 2200) is dropped, the entry
  kept;
* at most ``MAX_OPERATIONS`` entries are read from one answer.

``parse_operations`` never raises: garbage gives an empty result whose ``reason`` says why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from memchat.domain import Memory, MemoryKind, MemoryOrigin
from memchat.errors import MemchatError, MemoryNotFound
from memchat.memories.service import MemoryService
from memchat.providers.base import WireMessage

__all__ = [
    "MAX_OPERATIONS",
    "MAX_TEXT",
    "Operation",
    "Operations",
    "apply",
    "build_messages",
    "parse_operations",
    "related_memories",
]

#: the longest memory text taken from the model (longer ones are skipped, not cut)
MAX_TEXT = 500
#: entries read from one answer at most (a model that lists the whole conversation is cut short)
MAX_OPERATIONS = 10
#: related memories shown to the model at most
RELATED_LIMIT = 12
#: the exchange shown to the model: the beginning of each message, at most this many characters
USER_CHARS = 6_000
REPLY_CHARS = 2_000

INSTRUCTIONS = """\
You maintain the long-term memory an assistant keeps about its user across conversations.
Read the newest exchange between the user and the assistant and decide what to remember.

Remember only durable information about the user and their world that the USER said: facts \
(name, city, job, family, pets, possessions, health), preferences (likes, dislikes, diet), \
instructions for the assistant ("always answer in metric units") and events with their date \
(appointments, trips, moves, birthdays). Never remember small talk, greetings, questions the \
user asked, the assistant's own statements or suggestions, general knowledge, or anything the \
user did not say. Most exchanges contain nothing new: then answer with an empty list.

Each existing memory below has an id. If the exchange changes or corrects one of them (the \
user moved, changed jobs, changed their mind), answer "update" with that id and the complete \
new text; it replaces the old one. If the exchange only repeats what a memory already says, \
answer nothing for it. Do not add a memory that an existing one already covers.

Write each memory as one short self-contained sentence in the language the user writes in \
(Chinese for a Chinese conversation), about the user in the third person without the word \
"user" where natural (e.g. "Lives in Munich", "住在慕尼黑", "Prefers window seats"). Resolve \
relative dates ("yesterday", "next Friday", "上周五") against today's date and put the day in \
"date" as YYYY-MM-DD (null when there is none); write the absolute date in the text too.

Answer with JSON only, no prose, in exactly this form:
{"memories": [{"op": "add", "kind": "fact", "text": "...", "date": null}, \
{"op": "update", "id": 12, "kind": "preference", "text": "...", "date": null}]}
"op" is "add" or "update" (or "none"); "kind" is one of fact, preference, instruction, event."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One validated entry of the model's answer: add a memory, or update (supersede) ``replaces``."""

    op: str  # "add" or "update"
    text: str
    kind: MemoryKind | None = None
    event_date: date | None = None
    replaces: int | None = None


class Operations(list[Operation]):
    """The operations read from an answer (a list), with why entries were skipped and, when
    nothing could be read at all, ``reason`` (empty when the answer parsed)."""

    def __init__(self, ops: Iterable[Operation] = (), *, reason: str = "", skipped: Iterable[str] = ()) -> None:
        super().__init__(ops)
        self.reason = reason
        self.skipped: list[str] = list(skipped)

    @property
    def ok(self) -> bool:
        """Whether the answer was readable JSON of the expected shape (possibly with no entries)."""
        return not self.reason


# -- the prompt ----------------------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def memory_line(m: Memory) -> str:
    """A memory as shown to the model: one JSON object per line."""
    record = {
        "id": m.id,
        "kind": m.kind.value,
        "text": m.content,
        "date": m.event_date.isoformat() if m.event_date else None,
    }
    return json.dumps(record, ensure_ascii=False)


def build_messages(user: str, reply: str, related: Sequence[Memory], today: date) -> list[WireMessage]:
    """The extraction call's messages: the instructions, then today's date, the related memories
    (one JSON object per line, with ids) and the exchange."""
    memories = "\n".join(memory_line(m) for m in related) or "(none)"
    prompt = (
        f"Today's date: {today.isoformat()} ({today.strftime('%A')})\n\n"
        f"Existing memories related to this exchange:\n{memories}\n\n"
        f"The newest exchange:\n"
        f"<user>\n{_clip(user, USER_CHARS)}\n</user>\n"
        f"<assistant>\n{_clip(reply, REPLY_CHARS)}\n</assistant>\n\n"
        'Answer with the JSON object {"memories": [...]} only.'
    )
    return [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": prompt}]


def related_memories(service: MemoryService, user: str, reply: str = "", *, limit: int = RELATED_LIMIT) -> list[Memory]:
    """The served memories the model should see to tell a new fact from an update: the one on
    the same subject as the user's message ("I moved to Munich" → "Lives in Berlin"), those
    that match the message's words (then the reply's), then the newest ones, up to ``limit``."""
    found: dict[int, Memory] = {}

    def take(memories: Iterable[Memory]) -> None:
        for m in memories:
            if m.id is not None and len(found) < limit:
                found.setdefault(m.id, m)

    same = service.same_subject(user)
    take([same] if same is not None else [])
    take(service.search(user, limit=limit))
    if reply:
        take(service.search(reply, limit=max(1, limit // 3)))
    if len(found) < limit:
        take(service.store.memories(limit=limit))
    return list(found.values())


# -- reading the answer --------------------------------------------------------------------------

_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.S)
_BULLET = re.compile(r"^\s*(?:[-*•·]+|\d+[.)])\s+")
_QUOTES = "\"'“”‘’「」『』`"
_LETTER = re.compile(r"[^\W\d_]")
_OP_NAMES = {"add": "add", "new": "add", "create": "add", "update": "update", "replace": "update", "edit": "update"}
_NOOP_NAMES = {"none", "noop", "no-op", "no_op", "nothing", "keep", "skip"}


def _candidates(text: str) -> list[str]:
    """The pieces of ``text`` that may hold the JSON: fenced blocks first, then the whole text."""
    text = _THINK.sub("", text)
    if "<think>" in text.lower():  # an unclosed think block: what follows it is not the answer
        return []
    return [m.group(1) for m in _FENCE.finditer(text)] + [text]


def _decode(text: str) -> Any:
    """The first JSON object or array in ``text`` that has the expected shape (prose around it is
    ignored); raises ValueError when there is none."""
    decoder = json.JSONDecoder()
    first: Any = None
    for piece in _candidates(text):
        for start, ch in enumerate(piece):
            if ch not in "{[":
                continue
            try:
                value, _ = decoder.raw_decode(piece, start)
            except ValueError:
                continue
            if _entries(value) is not None:
                return value
            if first is None:
                first = value
    if first is not None:
        raise ValueError(f"JSON without a memories list ({type(first).__name__})")
    raise ValueError("no JSON in the answer")


def _entries(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value if all(isinstance(v, dict) for v in value) else None
    if isinstance(value, dict):
        for key in ("memories", "operations", "memory", "ops"):
            if isinstance(value.get(key), list):
                return list(value[key])
        if "op" in value and "text" in value:  # one entry on its own
            return [value]
    return None


def clean_text(value: Any) -> str | None:
    """A memory's text from the model: one line, no list mark or surrounding quotes; None when
    it is not a string, has no letters, or is longer than ``MAX_TEXT``."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    text = _BULLET.sub("", text).strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    if not text or len(text) > MAX_TEXT or not _LETTER.search(text):
        return None
    return text


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        day = date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None
    return day if 1900 <= day.year <= 2200 else None


def _id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("#").isdigit():
        return int(value.strip().lstrip("#"))
    return None


def parse_operations(text: str, known_ids: Iterable[int]) -> Operations:
    """The operations in the model's answer ``text``, validated (see the module's notes);
    ``known_ids`` are the ids of the memories the model was shown. Never raises."""
    try:
        value = _decode(text if isinstance(text, str) else "")
    except ValueError as exc:
        return Operations(reason=str(exc))
    except RecursionError:
        return Operations(reason="JSON nested too deeply")
    entries = _entries(value) or []
    known = set(known_ids)
    ops: list[Operation] = []
    skipped: list[str] = []
    updated: set[int] = set()
    texts: set[str] = set()
    for n, entry in enumerate(entries, 1):
        if len(ops) >= MAX_OPERATIONS:
            skipped.append(f"entries after the first {MAX_OPERATIONS}")
            break
        if not isinstance(entry, dict):
            skipped.append(f"entry {n}: not an object")
            continue
        raw_op = entry.get("op", entry.get("action", entry.get("event")))
        name = str(raw_op).strip().lower() if isinstance(raw_op, str) else ""
        if name in _NOOP_NAMES:
            continue
        op = _OP_NAMES.get(name)
        if op is None:
            skipped.append(f"entry {n}: unknown op {raw_op!r}")
            continue
        raw_kind = entry.get("kind", entry.get("type"))
        kind: MemoryKind | None = None
        if raw_kind is not None and raw_kind != "":
            try:
                kind = MemoryKind(str(raw_kind).strip().lower())
            except ValueError:
                skipped.append(f"entry {n}: unknown kind {raw_kind!r}")
                continue
        content = clean_text(entry.get("text", entry.get("memory", entry.get("content"))))
        if content is None:
            skipped.append(f"entry {n}: no usable text")
            continue
        replaces: int | None = None
        if op == "update":
            target = _id(entry.get("id"))
            if target is None or target not in known:
                skipped.append(f"entry {n}: update of unknown id {entry.get('id')!r} taken as an add")
                op = "add"
            elif target in updated:
                skipped.append(f"entry {n}: a second update of memory {target}")
                continue
            else:
                replaces = target
                updated.add(target)
        if content.lower() in texts:
            skipped.append(f"entry {n}: repeated text")
            continue
        texts.add(content.lower())
        ops.append(Operation(op, content, kind, _date(entry.get("date", entry.get("event_date"))), replaces))
    return Operations(ops, skipped=skipped)


# -- storing it ----------------------------------------------------------------------------------


def apply(
    service: MemoryService,
    ops: Iterable[Operation],
    session_id: int | None,
    source_ids: Sequence[int],
    today: date,
) -> list[Memory]:
    """Store ``ops`` as automatic memories learned in ``session_id`` from ``source_ids``; the
    memories actually stored (an exact repeat of a served memory stores nothing). An update whose
    memory stopped being served meanwhile becomes an add; an entry the service refuses is left
    out (the others are still stored)."""
    stored: list[Memory] = []
    for op in ops:
        before = service.store.memory_version()
        kw: dict[str, Any] = {
            "kind": op.kind,
            "event_date": op.event_date,
            "session_id": session_id,
            "source_ids": source_ids,
            "origin": MemoryOrigin.AUTO,
            "today": today,
        }
        try:
            try:
                memory = service.add(op.text, replaces=op.replaces, **kw)
            except MemoryNotFound:
                if op.replaces is None:
                    raise
                memory = service.add(op.text, **kw)
        except MemchatError:
            continue
        if service.store.memory_version() != before and all(m.id != memory.id for m in stored):
            stored.append(memory)
    return stored
