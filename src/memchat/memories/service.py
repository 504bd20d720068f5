"""Long-term memories as a use case: learn, review, forget, restore, export and import what the
agent knows about its user. Every interface (the ``remember``/``forget`` tools, the REPL's
``/remember``, ``memchat memory …``, the HTTP API and the page) calls these methods; none
touches the store's memory records itself.

A memory is never rewritten or deleted: an edit, or a newer fact about the same thing,
supersedes it (the old version is kept, ended, and can be restored); forgetting ends it.
"""

from __future__ import annotations

import builtins
import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from memchat.domain import EndReason, Memory, MemoryKind, MemoryOrigin
from memchat.errors import MemchatError, MemoryNotFound
from memchat.memories.dates import resolve_date
from memchat.memory.terms import query_words
from memchat.stores.base import Store

#: the longest memory kept (a memory is a sentence or two, not a document)
MAX_CHARS = 2_000
#: how well a new memory must match an old one on the same subject to supersede it without
#: being told (BM25 score relative to the old memory matched against itself)
SAME_SUBJECT = 0.5

Counter = Callable[[str], tuple[int, str]]

_INSTRUCTION = re.compile(
    r"^\s*(please\s+)?(always|never|don'?t|do not|call me|address me|answer|reply|respond|use|write|speak|avoid)\b"
    r"|\b(from now on|in (all|every|each) (answer|reply|response)s?)\b"
    r"|^\s*(请)?(总是|永远|始终|一直|不要|别|以后|每次|回答|称呼我|叫我|用)",
    re.I,
)
_PREFERENCE = re.compile(
    r"\b(prefer|prefers|preferred|favou?rite|like|likes|love|loves|enjoy|enjoys|hate|hates|dislike|dislikes|"
    r"can'?t stand|allergic|vegetarian|vegan)\b|喜欢|爱吃|讨厌|不喜欢|偏好|最爱|过敏|吃素",
    re.I,
)
#: "my X is", "I live in", "我住在", "我的X是": the subject a fact is about, so that a newer
#: fact about the same subject supersedes the older one
_SUBJECTS = [
    re.compile(r"\bmy\s+((?:[a-z'-]+\s+){0,3}?[a-z'-]+)\s+(?:is|are|was|were|'s)\b", re.I),
    re.compile(r"\bi\s+(?:now\s+|currently\s+|still\s+)?(live|work|study|stay)\s+(?:in|at|for|as)\b", re.I),
    re.compile(r"\bi\s+(?:have\s+)?(moved)\s+to\b", re.I),
    re.compile(r"\bi(?:'m| am)\s+(?:now\s+)?(?:a|an)\s+\b", re.I),
    re.compile(r"\bi(?:'m| am)\s+(\d+)\s+years?\s+old\b", re.I),
    re.compile(r"我的(\w{1,6}?)(?:是|叫|在)"),
    re.compile(r"我(?:现在)?(住在|在\w{0,4}工作|工作在|搬到|叫)"),
]
_SUBJECT_ALIASES = {"moved": "live", "搬到": "住在", "stay": "live", "is": ""}


def guess_kind(text: str, event_date: date | None = None) -> MemoryKind:
    """The kind a memory's text suggests (an instruction, an event with a date, a preference, a fact)."""
    if _INSTRUCTION.search(text):
        return MemoryKind.INSTRUCTION
    if event_date is not None:
        return MemoryKind.EVENT
    if _PREFERENCE.search(text):
        return MemoryKind.PREFERENCE
    return MemoryKind.FACT


def subject(text: str) -> str | None:
    """What a fact is about, in a normalised form ("my home city is …" → "home city"), or None."""
    for pattern in _SUBJECTS:
        m = pattern.search(text)
        if m is None:
            continue
        key = (m.group(1) if m.groups() else m.group(0)).lower().strip()
        if pattern.pattern.startswith(r"\bi(?:'m| am)\s+(?:now"):
            key = "occupation"
        elif pattern.pattern.startswith(r"\bi(?:'m| am)\s+(\d+)"):
            key = "age"
        key = _SUBJECT_ALIASES.get(key, key)
        if key.endswith("工作"):
            key = "工作"
        return key or None
    return None


def clean(text: str) -> str:
    """A memory's text: one paragraph, trimmed, a clear error when empty or too long."""
    text = " ".join(str(text).split())
    if not text:
        raise MemchatError("a memory needs some text")
    if len(text) > MAX_CHARS:
        raise MemchatError(f"a memory is at most {MAX_CHARS:,} characters (this one has {len(text):,})")
    return text


class MemoryService:
    """The memory use cases over one user's store (``store.for_owner`` gives another user's)."""

    def __init__(self, store: Store, count: Counter) -> None:
        self.store = store
        self._count = count

    # -- reading ------------------------------------------------------------------------

    def list(self, *, include_ended: bool = False, kind: MemoryKind | str | None = None) -> builtins.list[Memory]:
        """The user's memories, newest first (only those still served unless ``include_ended``)."""
        kinds = [MemoryKind(kind)] if kind else None
        return self.store.memories(include_ended=include_ended, kinds=kinds)

    def get(self, memory_id: int) -> Memory:
        return self.store.get_memory(memory_id)

    def history(self, memory_id: int) -> builtins.list[Memory]:
        """Every version of this memory, oldest first."""
        return self.store.memory_history(memory_id)

    def search(self, query: str, *, limit: int = 20) -> builtins.list[Memory]:
        """Served memories that match ``query`` (words, any language), best first; a query with
        no words to look for (only function words) matches by substring."""
        words = query_words(query)
        if words:
            found = [m for m, _ in self.store.search_memories(words, limit=limit)]
            if found:
                return found
        needle = query.strip().lower()
        if not needle:
            return []
        return [m for m in self.store.memories() if needle in m.content.lower()][:limit]

    # -- learning -----------------------------------------------------------------------

    def add(
        self,
        text: str,
        *,
        kind: MemoryKind | str | None = None,
        event_date: date | str | None = None,
        session_id: int | None = None,
        source_ids: Sequence[int] = (),
        origin: MemoryOrigin | str = MemoryOrigin.EXPLICIT,
        replaces: int | None = None,
        today: date | None = None,
    ) -> Memory:
        """Remember ``text``. Its kind is guessed unless given; an event's date is read from the
        text ("yesterday", "next Friday", "上周五") against ``today`` unless given. With
        ``replaces`` (a memory id) the new memory supersedes that one; without, a served fact
        about the same subject ("my city is …", "I live in …") is superseded. An exact repeat
        of a served memory is not stored twice: that memory is returned."""
        text = clean(text)
        when = _as_date(event_date) if event_date is not None else resolve_date(text, today or date.today())
        kind = MemoryKind(kind) if kind else guess_kind(text, when)
        for m in self.store.memories(kinds=[kind]):
            if m.content.lower() == text.lower() and (replaces is None or replaces == m.id):
                return m
        if replaces is None:
            old = self.same_subject(text, kind)
            replaces = old.id if old is not None else None
        elif not self.store.get_memory(replaces).active:
            raise MemoryNotFound(f"memory {replaces} is no longer served; restore it first or add a new one")
        memory = Memory(
            content=text,
            kind=kind,
            origin=MemoryOrigin(origin),
            event_date=when,
            session_id=session_id,
            source_ids=tuple(int(i) for i in source_ids),
            tokens=self._count(text)[0],
        )
        return self.store.add_memory(memory, supersedes=replaces)

    def same_subject(self, text: str, kind: MemoryKind | None = None) -> Memory | None:
        """The served fact or preference that ``text`` updates, if one is clearly about the same
        subject (the same "my X is" / "I live in" form), else None."""
        key = subject(text)
        if key is None:
            return None
        for m in self.store.memories():
            if m.kind in (MemoryKind.FACT, MemoryKind.PREFERENCE) and subject(m.content) == key:
                if kind is None or kind in (MemoryKind.FACT, MemoryKind.PREFERENCE):
                    return m
        return None

    def edit(self, memory_id: int, text: str, *, kind: MemoryKind | str | None = None) -> Memory:
        """A new version of a served memory (the old one is kept, superseded)."""
        old = self.store.get_memory(memory_id)
        if not old.active:
            raise MemoryNotFound(f"memory {memory_id} is no longer served; restore it first")
        text = clean(text)
        memory = Memory(
            content=text,
            kind=MemoryKind(kind) if kind else old.kind,
            origin=MemoryOrigin.EXPLICIT,
            event_date=old.event_date,
            session_id=old.session_id,
            source_ids=old.source_ids,
            tokens=self._count(text)[0],
        )
        return self.store.add_memory(memory, supersedes=memory_id)

    def forget(self, memory_id: int) -> Memory:
        """Stop serving a memory (kept in its history; ``restore`` brings it back)."""
        return self.store.end_memory(memory_id, EndReason.FORGOTTEN)

    def forget_matching(self, text: str) -> Memory | None:
        """Forget the served memory that best matches ``text`` ("forget that I live in Berlin"),
        if one clearly does; None when nothing matches."""
        found = self.search(text, limit=1)
        if not found:
            return None
        return self.forget(found[0].id or 0)

    def restore(self, memory_id: int) -> Memory:
        """Serve an ended memory again (undo a forget or an update)."""
        return self.store.restore_memory(memory_id)

    # -- export and import ----------------------------------------------------------------

    def export(self, *, include_ended: bool = True) -> builtins.list[dict[str, Any]]:
        """Every memory as a JSON object (ended ones too: the history travels), oldest first."""
        return [to_record(m) for m in reversed(self.store.memories(include_ended=include_ended))]

    def import_records(self, records: Iterable[dict[str, Any]]) -> builtins.list[Memory]:
        """Store exported memories (one transaction; a bad record refuses the whole batch)."""
        memories = [from_record(r, i) for i, r in enumerate(records, 1)]
        memories = [dataclasses.replace(m, tokens=m.tokens or self._count(m.content)[0]) for m in memories]
        return self.store.import_memories(memories)


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise MemchatError(f"a date must look like 2026-12-02, not {value!r}") from exc


def to_record(m: Memory) -> dict[str, Any]:
    """A memory as exported (and as the JSON API shows it)."""
    return {
        "id": m.id,
        "content": m.content,
        "kind": m.kind.value,
        "origin": m.origin.value,
        "event_date": m.event_date.isoformat() if m.event_date else None,
        "session_id": m.session_id,
        "session": m.session_name,
        "source_ids": list(m.source_ids),
        "supersedes": m.supersedes,
        "superseded_by": m.superseded_by,
        "created": m.created.isoformat() if m.created else None,
        "ended": m.ended.isoformat() if m.ended else None,
        "end_reason": m.end_reason.value if m.end_reason else None,
    }


def from_record(record: Any, line: int = 0) -> Memory:
    """A memory from an exported record; a clear error naming the record when it is not one."""
    where = f"memory {line}: " if line else ""
    if not isinstance(record, dict):
        raise MemchatError(f"{where}not a JSON object")
    try:
        created = datetime.fromisoformat(record["created"]) if record.get("created") else None
        ended = datetime.fromisoformat(record["ended"]) if record.get("ended") else None
        return Memory(
            content=clean(record.get("content", "")),
            kind=MemoryKind(record.get("kind") or "fact"),
            origin=MemoryOrigin(record.get("origin") or "import"),
            event_date=_as_date(record["event_date"]) if record.get("event_date") else None,
            source_ids=(),
            supersedes=_opt_int(record.get("supersedes")),
            superseded_by=_opt_int(record.get("superseded_by")),
            id=_opt_int(record.get("id")),
            created=created,
            ended=ended,
            end_reason=EndReason(record["end_reason"]) if record.get("end_reason") else None,
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise MemchatError(f"{where}{exc}") from exc


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, not {value!r}")
    return value
