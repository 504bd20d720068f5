"""The ``Store`` port: sessions and their messages, written one turn at a time.

``Store`` is a runtime-checkable Protocol for outside implementations; memchat's own
adapters live beside it (``sqlite``, ``postgres``: one SQL store, ``sql.py``, over two
dialects). Sessions are addressed by name (unique per owner) or by id; messages are returned in
``seq`` order.

A turn is written in three steps so that a crash never leaves half a turn:
``begin_turn`` stores the user message and an empty assistant row marked ``streaming``
in one transaction, ``checkpoint_turn`` saves streamed text now and then, and
``finish_turn`` (one transaction) or ``abort_turn`` (deletes both rows) ends it.
A store that opens and finds a ``streaming`` row whose writer is gone marks it
``interrupted``.

A regenerated reply or an edited message is a new *version* of that point of the session
(``begin_turn(replace=…)``): what it replaces is set aside, whole, not deleted; ``messages``
returns the versions shown, ``versions``/``version_marks`` say which points have others, and
``choose_version`` shows another (see ``sql_versions.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from memchat.domain import (
    EndReason,
    ImageRecord,
    Memory,
    MemoryKind,
    Message,
    Role,
    SearchHit,
    SessionInfo,
    Status,
    Summary,
    Usage,
    Version,
    Versions,
)
from memchat.errors import StoreError


@dataclass(frozen=True, slots=True)
class TurnHandle:
    session_id: int
    #: the turn's user message (None: a reply that continues the session's last turn, e.g.
    #: after a client ran the tools the model called)
    user_id: int | None
    assistant_id: int
    #: the first message of the version this turn set aside (a retry, an edit), shown again
    #: if the turn is dropped
    shelved: int | None = None


@dataclass(frozen=True, slots=True)
class ShelvedVersion:
    """A version set aside, whole (the export's ``version`` lines): its first message's id, the
    message it follows (None: the session's start), its messages in order, the pinned ones."""

    head: int
    after: int | None
    messages: tuple[Message, ...]
    pinned: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class ImportedVersion:
    """A version set aside, as an import gives it: it comes after the first ``position``
    messages of the import (which keeps the versions' order: versions are numbered by when
    they began), and follows message ``after`` — a number from 1 over the imported messages,
    then over the messages of the versions before it; 0: the session's start. ``pins`` are
    indexes (from 0) into ``messages``."""

    position: int
    after: int
    messages: tuple[Message, ...]
    pins: tuple[int, ...] = ()


@runtime_checkable
class Store(Protocol):
    # sessions
    def create_session(
        self,
        name: str | None = None,
        *,
        persona: str = "",
        model: str | None = None,
        provider: str | None = None,
        memory: str = "auto",
        settings: dict[str, Any] | None = None,
    ) -> SessionInfo: ...
    def get_session(self, name: str | int) -> SessionInfo: ...
    def find_session(self, name: str | int) -> SessionInfo | None: ...
    def list_sessions(self) -> list[SessionInfo]: ...
    def update_session(
        self,
        session: str | int,
        *,
        name: str | None = None,
        persona: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        settings: dict[str, Any] | None = None,
        memory: str | None = None,
    ) -> SessionInfo: ...
    def update_settings(self, session: str | int, changes: Mapping[str, Any]) -> SessionInfo:
        """Merge ``changes`` into the session's settings in one write (None removes a key)."""
        ...

    def fork_session(
        self, session: str | int, new_name: str | None = None, *, at: int | None = None
    ) -> SessionInfo: ...
    def delete_session(self, session: str | int) -> None: ...

    # messages
    def messages(
        self, session: str | int, *, include_streaming: bool = False, after: int | None = None
    ) -> list[Message]: ...

    # memory: change counters, paging, summaries, pins, search, calibration
    def session_state(self, session: str | int) -> tuple[int, int]: ...
    def messages_before(self, session: str | int, before_seq: int | None, limit: int) -> list[Message]: ...
    def messages_between(self, session: str | int, first_seq: int, last_seq: int) -> list[Message]: ...
    def summaries(self, session: str | int) -> list[Summary]: ...
    def latest_summary(self, session: str | int) -> Summary | None: ...
    def add_summary(self, session: str | int, summary: Summary) -> Summary: ...
    def forget_summaries(self, session: str | int) -> int: ...
    def pins(self, session: str | int) -> list[Message]: ...
    def pin(self, session: str | int, message_id: int) -> None: ...
    def unpin(self, session: str | int, message_id: int) -> bool: ...
    def search(
        self,
        terms: Sequence[str],
        *,
        session: str | int | None = None,
        before_seq: int | None = None,
        exclude_session: str | int | None = None,
        limit: int = 20,
    ) -> list[SearchHit]: ...
    def search_words(
        self,
        words: Sequence[str],
        *,
        session: str | int | None = None,
        before_seq: int | None = None,
        exclude_session: str | int | None = None,
        limit: int = 50,
    ) -> list[SearchHit]:
        """Settled messages ranked by BM25 over the word index (stemmed English words, Chinese
        bigrams; see ``memory/terms.py``) for any of ``words``, best first, ``score`` higher is
        better: in ``session`` before ``before_seq``, or with ``session=None`` in all of the
        owner's sessions but ``exclude_session`` and incognito ones."""
        ...

    def has_other_sessions(self, session: str | int | None) -> bool:
        """Whether the owner has a non-incognito session with settled messages besides ``session``."""
        ...

    def messages_at(self, session: str | int, seqs: Sequence[int]) -> list[Message]:
        """The settled messages of ``session`` with these sequence numbers, in order."""
        ...

    # message vectors for semantic recall (written in the background, remade rather than copied)
    @property
    def cache_key(self) -> str:
        """This database as seen by this owner: the key of caches kept outside the store."""
        ...

    def vectors_missing(self, model: str, limit: int = 32) -> list[tuple[int, str]]:
        """(id, text) of the owner's settled user/assistant messages with no vector made by
        ``model``, newest first, incognito sessions left out."""
        ...

    def add_vectors(self, model: str, vectors: Sequence[tuple[int, bytes]]) -> int:
        """Keep (message id, bytes) vectors made by ``model``; returns how many were kept."""
        ...

    def vectors_after(self, model: str, after_id: int = 0, limit: int = 20_000) -> list[tuple[int, bytes]]:
        """The owner's vectors made by ``model`` for messages after ``after_id``, oldest first."""
        ...

    def messages_by_id(
        self,
        ids: Sequence[int],
        *,
        session: str | int | None = None,
        before_seq: int | None = None,
        exclude_session: str | int | None = None,
    ) -> list[SearchHit]:
        """The settled messages among ``ids`` in the scope ``search_words`` takes, score 0,
        in the order of ``ids``."""
        ...

    def add_images(self, session: str | int, images: Sequence[ImageRecord]) -> list[ImageRecord]: ...
    def images(self, session: str | int) -> list[ImageRecord]: ...

    # attached files: a message names them (``Message.attachments``), their bytes are kept apart
    def attachment_data(self, sha256: str) -> bytes | None:
        """The bytes of the owner's attached file with that hash (None: no such file of theirs)."""
        ...

    def attachment_type(self, sha256: str) -> str | None:
        """The media type of the owner's attached file with that hash (None: none of theirs)."""
        ...

    def calibration(self, model: str) -> float | None: ...
    def record_calibration(self, model: str, observed: float) -> float: ...
    def append_messages(self, session: str | int, messages: Sequence[Message]) -> list[Message]: ...

    # versions of a point (a regenerated reply, an edited message)
    def versions(self, session: str | int, message_id: int) -> list[Version]:
        """The versions of the point where the shown message ``message_id`` is, oldest first."""
        ...

    def version_marks(self, session: str | int) -> dict[int, Versions]:
        """Each shown message whose point has more than one version: which one it is, and all."""
        ...

    def choose_version(self, session: str | int, head_id: int) -> bool:
        """Show the version whose first message is ``head_id``; what it replaces is set aside."""
        ...

    def shelved_versions(self, session: str | int) -> list[ShelvedVersion]:
        """Every version set aside in the session, whole, in the order they began."""
        ...

    def truncate(self, session: str | int, keep: int) -> int: ...
    def remove_last_turn(self, session: str | int) -> list[Message]: ...
    def import_session(
        self,
        info: SessionInfo,
        messages: Sequence[Message],
        *,
        summaries: Sequence[Summary] = (),
        pins: Sequence[int] = (),
        images: Sequence[ImageRecord] = (),
        versions: Sequence[ImportedVersion] = (),
    ) -> SessionInfo: ...

    # long-term memories: the owner's, across sessions (see ``memchat/memories``)
    def add_memory(self, memory: Memory, *, supersedes: int | None = None) -> Memory:
        """Store a new memory (``content``, ``kind``, ``origin``, ``event_date``, ``session_id``,
        ``source_ids``, ``tokens``; ``created`` defaults to now). With ``supersedes``, the same
        transaction ends that (active) memory: ``ended`` now, ``end_reason`` superseded,
        ``superseded_by`` the new one, whose ``supersedes`` points back."""
        ...

    def get_memory(self, memory_id: int) -> Memory:
        """One of the owner's memories, active or not (``MemoryNotFound``)."""
        ...

    def memories(
        self, *, include_ended: bool = False, kinds: Sequence[MemoryKind] | None = None, limit: int | None = None
    ) -> list[Memory]:
        """The owner's memories, newest first (active only unless ``include_ended``)."""
        ...

    def end_memory(self, memory_id: int, reason: EndReason) -> Memory:
        """Stop serving an active memory (forgotten); it is kept. ``MemoryNotFound`` when not active."""
        ...

    def restore_memory(self, memory_id: int) -> Memory:
        """Serve an ended memory again: a forgotten one comes back; a superseded one replaces the
        active version of its line (which ends as ``reverted``). Returns it."""
        ...

    def memory_history(self, memory_id: int) -> list[Memory]:
        """Every version of the memory's line (following ``supersedes`` both ways), oldest first."""
        ...

    def search_memories(self, words: Sequence[str], *, limit: int = 20) -> list[tuple[Memory, float]]:
        """Active memories ranked by BM25 for any of ``words``, best first (higher is better)."""
        ...

    def memory_version(self) -> int:
        """A counter that moves with every change to the owner's memories (for caches)."""
        ...

    def import_memories(self, memories: Sequence[Memory]) -> list[Memory]:
        """Store memories as they are (ended ones and their links included, ids remapped within
        the batch: ``supersedes``/``superseded_by`` refer to ids of the batch); one transaction."""
        ...

    # one turn
    def begin_turn(
        self, session: str | int, user: Message | None, *, model: str | None = None, replace: int | None = None
    ) -> TurnHandle: ...
    def checkpoint_turn(self, turn: TurnHandle, content: str) -> None: ...
    def finish_turn(
        self,
        turn: TurnHandle,
        content: str,
        *,
        status: Status = Status.COMPLETE,
        tokens: int | None = None,
        token_method: str | None = None,
        usage: Usage | None = None,
        model: str | None = None,
        steps: Sequence[Message] = (),
        tool_calls: Sequence[dict[str, Any]] = (),
    ) -> Message: ...
    def abort_turn(self, turn: TurnHandle, *, keep_question: bool = False) -> None: ...

    def for_owner(self, user_id: int) -> Store:
        """The same storage seen as another user (the server's accounts): lookups are scoped."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Accounts(Protocol):
    """The server's user accounts, kept by a store that serves several users (both of memchat's
    stores do). A user is addressed by name (unique) or id; their token is shown once, at
    creation, and only its hash is kept. ``for_owner(user_id)`` then scopes every lookup of the
    ``Store`` to that user. The local user (id 1, the CLI's) is not an account: ``users()`` and
    ``user_records()`` leave it out and ``remove_user`` cannot remove it."""

    def add_user(self, name: str) -> tuple[int, str]:
        """A new user: their id and their token (``StoreError`` for a name taken or not 1 to 100
        characters)."""
        ...

    def user_for_token(self, token: str) -> int | None:
        """The id of the user this token belongs to, or None."""
        ...

    def users(self) -> list[tuple[int, str]]:
        """Every account as (id, name), in id order."""
        ...

    def remove_user(self, name: str) -> bool:
        """Remove a user with all their sessions and memories; False when there is no such user."""
        ...

    def user_records(self) -> list[tuple[int, str, str | None, str]]:
        """Every account as (id, name, token hash, created), for copying a database."""
        ...

    def restore_user(self, name: str, token_hash: str | None, created: str) -> int:
        """An account copied from another database (its token keeps working); its new id."""
        ...


@runtime_checkable
class Migrating(Protocol):
    """A store whose schema is versioned by named migrations (``memchat db``)."""

    def pending_migrations(self) -> list[str]:
        """The migrations this memchat knows that the database has not had yet, in order."""
        ...

    def migrate(self) -> list[str]:
        """Apply the pending migrations (once, even when processes race); the names applied now."""
        ...


@runtime_checkable
class SearchBacklog(Protocol):
    """A store whose search indexes follow the messages after the turn rather than within it
    (SQLite: ``search_backlog``); every search brings them up to date first."""

    def settle_search(self, limit: int | None = None) -> int:
        """Apply the queued index changes, ``limit`` at most (None: all); how many were applied."""
        ...


class SessionRef:
    """A session bound to its store: read and edit one conversation's messages.

    ``store.session(name)`` returns one (creating the session if it does not exist yet).
    """

    def __init__(self, store: Store, name: str | int) -> None:
        self._store = store
        self._key = name

    @property
    def info(self) -> SessionInfo:
        return self._store.get_session(self._key)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def id(self) -> int:
        return self.info.id

    @property
    def persona(self) -> str:
        return self.info.persona

    def messages(self) -> list[Message]:
        return self._store.messages(self.id)

    def add_messages(self, messages: Sequence[Message | Mapping[str, Any]]) -> list[Message]:
        """Append messages (one transaction) and return them as stored. Each is a ``Message`` or
        an OpenAI chat-completions dict, as the Agents SDK's ``add_items`` takes them (see
        ``message_from_dict``); a dict that cannot be taken is a ``StoreError`` naming its index,
        and nothing is stored."""
        return self._store.append_messages(self.id, messages_from_items(messages))

    def truncate(self, keep: int) -> int:
        return self._store.truncate(self.id, keep)

    def clear(self) -> int:
        return self._store.truncate(self.id, 0)

    def __repr__(self) -> str:
        return f"SessionRef({self._key!r})"


_ROLES = ", ".join(r.value for r in Role)
#: keys of an OpenAI message that memchat does not keep, taken only when empty (a dumped
#: ``ChatCompletionMessage`` has them as None or [])
_EMPTY_ONLY = ("refusal", "audio", "function_call", "annotations", "reasoning_content")
#: text parts of a content list: chat completions' ``text``, the Responses API's (Agents SDK) others
_TEXT_PARTS = ("text", "input_text", "output_text")


def messages_from_items(items: Sequence[Message | Mapping[str, Any]]) -> list[Message]:
    """``Message`` objects as they are, dicts through ``message_from_dict`` (``messages[i]`` names
    a bad one)."""
    if isinstance(items, (str, bytes, Mapping)):
        raise StoreError("messages must be a list of messages or dicts, not one")
    return [item if isinstance(item, Message) else message_from_dict(item, index) for index, item in enumerate(items)]


def message_from_dict(item: Mapping[str, Any], index: int = 0) -> Message:
    """One OpenAI chat-completions message → a ``Message``.

    ``role`` is system, user, assistant or tool; ``content`` a string, or a list of text parts
    (``{"type": "text", "text": …}``, joined by newlines), or None/absent for an assistant
    message that only calls tools; an assistant's ``tool_calls`` are
    ``[{"id", "type": "function", "function": {"name", "arguments"}}]`` (``arguments`` JSON text;
    a dict is written as JSON); a tool result needs its ``tool_call_id`` (its ``name`` is not
    kept). Anything else (an unknown role, an image part, a key memchat would drop with its
    value in it) is a ``StoreError`` that names ``messages[index]``."""
    where = f"messages[{index}]"
    if not isinstance(item, Mapping):
        raise StoreError(f"{where}: a message is a Message or a dict, not {type(item).__name__}")
    role_value = item.get("role")
    if not isinstance(role_value, str) or role_value not in {r.value for r in Role}:
        raise StoreError(f"{where}: unknown role {role_value!r} (one of {_ROLES})")
    role = Role(role_value)
    known = {"role", "content", "tool_calls", "tool_call_id"} | ({"name"} if role is Role.TOOL else set())
    for key, value in item.items():
        if key not in known and not (key in _EMPTY_ONLY and not value):
            raise StoreError(f"{where}: {key!r} is not kept by memchat ({role.value} messages take {sorted(known)})")
    tool_calls = _tool_calls(item.get("tool_calls"), role, where)
    content = _content(item.get("content"), where, may_be_empty=bool(tool_calls))
    tool_call_id = item.get("tool_call_id")
    if role is Role.TOOL:
        if not isinstance(tool_call_id, str) or not tool_call_id:
            raise StoreError(f"{where}: a tool message needs its tool_call_id (a string)")
    elif tool_call_id is not None:
        raise StoreError(f"{where}: only a tool message has a tool_call_id")
    return Message(role, content, tool_calls=tool_calls, tool_call_id=tool_call_id)


def _content(content: Any, where: str, *, may_be_empty: bool) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        if may_be_empty:
            return ""
        raise StoreError(f"{where}: content is missing (a string, or a list of text parts)")
    if isinstance(content, list):
        texts: list[str] = []
        for k, part in enumerate(content):
            kind = part.get("type") if isinstance(part, Mapping) else None
            text = part.get("text") if isinstance(part, Mapping) else None
            if kind not in _TEXT_PARTS or not isinstance(text, str):
                shown = kind if kind is not None else type(part).__name__
                raise StoreError(f"{where}: content[{k}] is not a text part ({shown!r}); memchat keeps text only")
            texts.append(text)
        return "\n".join(texts)
    raise StoreError(f"{where}: content must be a string or a list of text parts, not {type(content).__name__}")


def _tool_calls(calls: Any, role: Role, where: str) -> tuple[dict[str, Any], ...] | None:
    if calls is None or (isinstance(calls, list) and not calls):
        return None
    if role is not Role.ASSISTANT:
        raise StoreError(f"{where}: only an assistant message has tool_calls")
    if not isinstance(calls, list):
        raise StoreError(f"{where}: tool_calls must be a list, not {type(calls).__name__}")
    out: list[dict[str, Any]] = []
    for k, call in enumerate(calls):
        at = f"{where}.tool_calls[{k}]"
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(call, Mapping) or not isinstance(function, Mapping):
            raise StoreError(f"{at}: a tool call is {{'id', 'type': 'function', 'function': {{'name', 'arguments'}}}}")
        call_id, name, arguments = call.get("id"), function.get("name"), function.get("arguments", "")
        if call.get("type", "function") != "function":
            raise StoreError(f"{at}: type {call.get('type')!r} is not a function call")
        if not isinstance(call_id, str) or not call_id:
            raise StoreError(f"{at}: the call needs its id (a string)")
        if not isinstance(name, str) or not name:
            raise StoreError(f"{at}: the function needs its name (a string)")
        if isinstance(arguments, Mapping):
            arguments = json.dumps(arguments, ensure_ascii=False)
        if not isinstance(arguments, str):
            raise StoreError(f"{at}: arguments must be JSON text, not {type(arguments).__name__}")
        out.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
    return tuple(out)
