"""The conversation service: every use case of a chat, in one place that each interface calls.

The REPL's slash commands, the CLI's subcommands and the HTTP routes parse their input, call
one method here and render what it returns; none of them touches the store or changes the
agent. Settings chosen for a session (``/model``, ``/memory``, ``/tools``) are stored with the
session, and from then on the session's choice wins over the flags the agent was made with:
the service moves to an agent configured that way (``Agent.configured``) instead of changing
the one it was given.

Long-term memories are ``conversations.memories`` (``memchat.memories.MemoryService``).

No empty sessions: a new chat is a *draft* (``Conversations.draft``, a ``SessionInfo`` with id 0)
until its first message. Its settings (name, persona, model, memory, tools, incognito) are kept
on the draft by the same methods that change a stored session; reading it gives an empty
history; its first turn (``stream``/``astream``) stores it, and a turn that fails removes it
again. Every interface opens a new chat this way, so none leaves an empty session behind.

Titles and search: ``SessionInfo.label`` is what a session is shown as (the title written from
its first exchange, else its name; a rename drops the title); ``search`` finds sessions by the
words of their messages (the store's full-text index), with snippets.
"""

from __future__ import annotations

import builtins
import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from memchat.agent import Agent, AsyncTurn, Turn
from memchat.config import data_dir
from memchat.domain import ImageRecord, Message, Role, SessionInfo, SessionKey, Summary, Version, Versions
from memchat.errors import MemchatError, SessionExists, StoreError, UnknownModel
from memchat.images.base import GeneratedImage, Progress
from memchat.images.keep import generate_and_keep, to_record
from memchat.memories.service import MemoryService
from memchat.memory.plan import STRATEGIES, ContextPlan
from memchat.providers.base import ChatOptions
from memchat.search import Found, search_sessions
from memchat.serialization import ContextView, Parsed, context_view, export_jsonl, export_markdown, import_jsonl
from memchat.stores.base import Store

#: the setting that marks a session made for a stateless client (``continue_conversation``)
STATELESS = "stateless"
#: the newest such sessions compared with a request's conversation
STATELESS_CANDIDATES = 200


@dataclass(frozen=True)
class History:
    """What ``/history`` shows: the messages, which are pinned, summaries and images, and which
    messages have versions (``‹ 2/3 ›``)."""

    session: SessionInfo
    messages: list[Message]
    pinned: set[int]
    summaries: list[Summary]
    images: list[ImageRecord]
    versions: dict[int, Versions] = field(default_factory=dict)


@dataclass(frozen=True)
class Branches:
    """A session's family: the session it was forked from (else itself) and that root's forks."""

    root: int
    #: the root first, then its forks oldest first (each with its ``fork_at``)
    sessions: list[SessionInfo]


@dataclass(frozen=True)
class Pinned:
    """The outcome of a pin or unpin: the message, its number in the history, whether it changed."""

    message: Message
    number: int
    changed: bool


class Sessions:
    """The use cases of stored sessions that need no model: list, read, rename, fork, delete,
    pins, undo, export and import (``memchat sessions …`` uses these alone)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, session: SessionKey) -> SessionInfo:
        """The session as stored now (a draft as it is)."""
        if isinstance(session, SessionInfo):
            return session if session.draft else self._store.get_session(session.id)
        return self._store.get_session(session)

    def find(self, session: SessionKey) -> SessionInfo | None:
        if isinstance(session, SessionInfo):
            return session if session.draft else self._store.find_session(session.id)
        return self._store.find_session(session)

    def list(self, query: str | None = None) -> builtins.list[SessionInfo]:
        """The sessions, the most recently used first; with ``query``, those whose name, title or
        persona contains it (any case). ``search`` also looks in their messages."""
        found = self._store.list_sessions()
        if query:
            needle = query.lower()
            found = [
                s for s in found if needle in s.name.lower() or needle in s.label.lower() or needle in s.persona.lower()
            ]
        return found

    def latest(self) -> SessionInfo | None:
        """The most recently used session (``-c``/``--continue``), None when there is none."""
        found = self._store.list_sessions()
        return found[0] if found else None

    def search(self, query: str, *, limit: int = 20, offset: int = 0) -> Found:
        """Sessions whose messages (or name, title, persona) contain the words of ``query``, best
        first, each with snippets of its matching messages (their ids, to open the session at
        one); ``limit``/``offset`` page the sessions, ``total`` counts them all."""
        return search_sessions(self._store, query, limit=limit, offset=offset)

    def rename(self, session: SessionKey, name: str) -> SessionInfo:
        """A new name (a draft's is checked free); the title goes: the name the user chose is
        what the session is shown as from now on."""
        if isinstance(session, SessionInfo) and session.draft:
            return dataclasses.replace(session, name=self._free_for_draft(name))
        info = self._store.update_session(_key(session), name=name)
        if info.title is not None:
            info = self._store.update_settings(info.id, {"title": None})
        return info

    def fork(self, session: SessionKey, name: str | None = None, *, at: int | None = None) -> SessionInfo:
        """A copy of the session (its first ``at`` messages) under ``name``, else ``<name>-fork``.
        A titled session's copy is shown as "<title> · fork" (with a name given: as that name)."""
        info = self._store.fork_session(self._stored(session, "fork"), name, at=at)
        if info.title is not None:
            info = self._store.update_settings(info.id, {"title": None if name else f"{info.title} · fork"})
        return info

    def delete(self, session: SessionKey) -> None:
        if isinstance(session, SessionInfo) and session.draft:
            return
        self._store.delete_session(_key(session))

    def _stored(self, session: SessionKey, what: str) -> str | int:
        """The key of a stored session; a draft has nothing to ``what`` yet."""
        if isinstance(session, SessionInfo) and session.draft:
            raise StoreError(f"there is nothing to {what} yet: a new chat is stored with its first message")
        return _key(session)

    def _free_for_draft(self, name: str) -> str:
        name = name.strip()
        if not name:
            raise StoreError("a session name cannot be empty")
        if self._store.find_session(name) is not None:
            raise SessionExists(f"a session named {name!r} already exists", name=name)
        return name

    def branches(self, session: str | int) -> Branches:
        """Where ``session`` was forked from (if that session still exists), and the forks of it."""
        info = self.get(session)
        parent = info.parent_id
        root = parent if parent is not None and self.find(parent) is not None else info.id
        family = [s for s in self.list() if s.id == root or s.parent_id == root]
        family.sort(key=lambda s: (s.id != root, s.id))
        return Branches(root, family)

    def export(self, session: SessionKey, fmt: Literal["jsonl", "md"] = "jsonl") -> str:
        """The session as JSONL (re-importable) or a Markdown transcript (for people)."""
        store, key = self._store, self._stored(session, "export")
        return export_jsonl(store, key) if fmt == "jsonl" else export_markdown(store, key)

    def import_(self, text: str, name: str | None = None) -> SessionInfo:
        """A new session from a JSONL export, all or nothing (``name`` overrides the file's);
        ``ImportFormatError`` for a text that is not one, ``SessionExists`` for a name taken."""
        return import_jsonl(self._store, text, name)

    def set_persona(self, session: SessionKey, persona: str) -> SessionInfo:
        if isinstance(session, SessionInfo) and session.draft:
            return dataclasses.replace(session, persona=persona)
        return self._store.update_session(_key(session), persona=persona)

    def messages(self, session: SessionKey) -> builtins.list[Message]:
        if isinstance(session, SessionInfo) and session.draft:
            return []
        return self._store.messages(_key(session))

    def history(self, session: SessionKey) -> History:
        if isinstance(session, SessionInfo) and session.draft:
            return History(session, [], set(), [], [])
        store = self._store
        info = store.get_session(_key(session))
        return History(
            info,
            store.messages(info.id),
            {p.id for p in store.pins(info.id) if p.id is not None},
            store.summaries(info.id),
            store.images(info.id),
            store.version_marks(info.id),
        )

    def versions(self, session: SessionKey, message_id: int) -> builtins.list[Version]:
        """The versions of the point where the shown message ``message_id`` is (a regenerated
        reply, an edited message), oldest first; the shown one has ``shown``."""
        return self._store.versions(self.get(session).id, message_id)

    def latest_versions(self, session: SessionKey) -> builtins.list[Version]:
        """The versions of the newest point of the session that has more than one (``/versions``);
        empty when none has."""
        info = self.get(session)
        marks = self._store.version_marks(info.id)
        newest = next((m.id for m in reversed(self.messages(info.id)) if m.id in marks), None) if marks else None
        return self._store.versions(info.id, newest) if newest is not None else []

    def choose_version(self, session: SessionKey, head_id: int) -> bool:
        """Show the version whose first message is ``head_id`` (one ``versions`` lists): the next
        turn continues from it, and memory sees it; what it replaces is kept as a version.
        ``TurnInProgress`` while a reply is generated in the session; False if it was shown."""
        return self._store.choose_version(self.get(session).id, head_id)

    def undo(self, session: SessionKey) -> builtins.list[Message]:
        """Remove the last turn (and the summaries covering it); what was removed."""
        if isinstance(session, SessionInfo) and session.draft:
            return []
        return self._store.remove_last_turn(_key(session))

    def clear(self, session: SessionKey) -> int:
        """Empty the session (its persona and settings stay); how many messages went."""
        if isinstance(session, SessionInfo) and session.draft:
            return 0
        return self._store.truncate(_key(session), 0)

    def pin(self, session: SessionKey, number: int | None = None) -> Pinned:
        """Pin message ``number`` of the history (1-based; None: the last user message)."""
        messages = self.messages(session)
        message = _numbered(messages, number) if number is not None else _last_user(messages)
        key = _key(session)
        if any(p.id == message.id for p in self._store.pins(key)):
            return Pinned(message, messages.index(message) + 1, changed=False)
        assert message.id is not None
        self._store.pin(key, message.id)
        return Pinned(message, messages.index(message) + 1, changed=True)

    def unpin(self, session: SessionKey, number: int) -> Pinned:
        messages = self.messages(session)
        message = _numbered(messages, number)
        assert message.id is not None
        changed = self._store.unpin(_key(session), message.id)
        return Pinned(message, number, changed=changed)

    def set_pinned(self, session: str | int, message_id: int, pinned: bool = True) -> builtins.list[Message]:
        """Pin (or unpin) the message ``message_id`` of the session; its pinned messages now."""
        store = self._store
        if pinned:
            store.pin(session, message_id)
        else:
            store.unpin(session, message_id)
        return store.pins(session)

    def forget_summaries(self, session: SessionKey) -> int:
        if isinstance(session, SessionInfo) and session.draft:
            return 0
        return self._store.forget_summaries(_key(session))

    def import_prepared(self, parsed: Parsed) -> SessionInfo:
        """A new session from an export already parsed and checked (``prepare_import``)."""
        return self._store.import_session(
            parsed.info,
            parsed.messages,
            summaries=parsed.summaries,
            pins=parsed.pins,
            images=parsed.images,
            versions=parsed.versions,
        )

    def summaries(self, session: SessionKey) -> builtins.list[Summary]:
        if isinstance(session, SessionInfo) and session.draft:
            return []
        return self._store.summaries(_key(session))

    def ensure(self, name: str) -> SessionInfo:
        """The session named ``name``, created (empty) if there is none."""
        return self._store.find_session(name) or self._store.create_session(name)

    def attachment(self, sha256: str) -> tuple[bytes, str] | None:
        """The bytes and media type of the owner's attached file with that hash (None: none of theirs)."""
        kind = self._store.attachment_type(sha256)
        data = self._store.attachment_data(sha256) if kind is not None else None
        return (data, kind) if data is not None and kind is not None else None

    def images(self, session: SessionKey) -> builtins.list[ImageRecord]:
        """The images kept with ``session``, in the order they were made."""
        if isinstance(session, SessionInfo) and session.draft:
            return []
        return self._store.images(_key(session))

    def keep_images(self, session: str | int, images: Sequence[GeneratedImage]) -> builtins.list[ImageRecord]:
        """Record images made for ``session`` (after its last message) — ``memchat image -s``,
        which saves the files itself, with its own progress and output path."""
        return self._store.add_images(self.get(session).id, [to_record(im) for im in images])

    def close(self) -> None:
        self._store.close()

    def truncate(self, session: SessionKey, keep: int) -> int:
        """Keep the first ``keep`` messages; how many went (summaries of removed ones go too)."""
        if isinstance(session, SessionInfo) and session.draft:
            return 0
        return self._store.truncate(_key(session), keep)


class Conversations(Sessions):
    """The use cases over one agent (one user's view of the store)."""

    def __init__(self, agent: Agent) -> None:
        super().__init__(agent.store)
        self._agent = agent

    @property
    def agent(self) -> Agent:
        """The agent as currently configured (read it; change it only through this service)."""
        return self._agent

    @property
    def memories(self) -> MemoryService:
        return self._agent.memories

    # -- sessions ---------------------------------------------------------------------

    def open(self, session: SessionKey | None = None, *, persona: str | None = None) -> SessionInfo:
        """The session, created (with ``persona``, else the agent's) if it does not exist yet."""
        return self._agent.session(session, persona=persona)

    def draft(self, name: str | None = None, *, persona: str | None = None, incognito: bool = False) -> SessionInfo:
        """A new chat, not stored until its first message (``SessionInfo.draft``): its first turn
        stores it. ``name``: its name (``SessionExists`` when taken), else one is generated then;
        ``persona``: else the agent's."""
        if name is not None:
            name = self._free_for_draft(name)
        return self._agent.draft(name, persona=persona, settings={"incognito": True} if incognito else None)

    def save(self, draft: SessionInfo) -> SessionInfo:
        """Store a draft now (for what is not a message, e.g. its first image); a stored session
        is returned as it is."""
        if not draft.draft:
            return draft
        info, _ = self._agent.save_draft(draft)
        return info

    def continue_conversation(
        self,
        prior: Sequence[tuple[Role, str]],
        persona: str | None = None,
        *,
        waiting: Sequence[dict[str, Any]] = (),
        waiting_text: str = "",
    ) -> SessionInfo:
        """The session a stateless client's request continues (``llm chat``, LangChain, an SDK
        loop: each call carries the whole conversation and names no session).

        ``prior`` is the request's conversation before its new user message (user and assistant
        turns, in order) and ``persona`` its system message. The session is one this method made
        earlier, with the same persona, whose user and assistant messages are exactly ``prior``
        (the newest ``STATELESS_CANDIDATES`` such sessions are compared); a conversation seen for
        the first time — or whose history the client edited — becomes a new session with
        ``prior`` imported, so the new message finds its history in memchat either way.

        ``waiting``: the request answers tool calls (the client ran its own tools): the model's
        message with those calls follows ``prior``, and the session must end with it (the same
        call ids), else it is imported too."""
        want = [(role, content.strip()) for role, content in prior]
        ids = [str(c.get("id")) for c in waiting]
        persona = self._agent.persona if persona is None else persona
        if want:
            checked = 0
            for info in self._store.list_sessions():
                if not (isinstance(info.settings, dict) and info.settings.get(STATELESS)):
                    continue
                checked += 1
                if checked > STATELESS_CANDIDATES:
                    break
                if info.persona != persona or info.message_count < len(want):
                    continue
                stored = self._store.messages(info.id)
                if ids:
                    if not stored or [str(c.get("id")) for c in stored[-1].tool_calls or ()] != ids:
                        continue
                    stored = stored[:-1]
                said = [
                    (m.role, m.content.strip())
                    for m in stored
                    if m.role in (Role.USER, Role.ASSISTANT) and (m.content.strip() or not m.tool_calls)
                ]
                if said == want:
                    return info
        info = self._store.create_session(
            None, persona=persona, model=self._agent.model, provider=self._agent.provider.name,
            settings={STATELESS: True},
        )  # fmt: skip
        imported = [Message(role, content) for role, content in want]
        if waiting:
            imported.append(Message(Role.ASSISTANT, waiting_text, tool_calls=tuple(dict(c) for c in waiting)))
        if imported:
            self._store.append_messages(info.id, imported)
        return self.get(info.id)

    def discard_if_empty(self, session: str | int) -> bool:
        """Delete ``session`` if it holds no message (a session made for a turn that failed:
        failed turns leave nothing behind). Whether it was deleted."""
        info = self.find(session)
        if info is None or self._store.messages(info.id, include_streaming=True):
            return False
        self._store.delete_session(info.id)
        return True

    def create(self, name: str | None = None, *, persona: str | None = None) -> SessionInfo:
        """A new session stored now, empty (an API client that wants an id before it talks);
        interfaces open a new chat with ``draft``. ``SessionExists`` when ``name`` is taken."""
        if name is not None and self.find(name) is not None:
            raise SessionExists(f"a session named {name!r} already exists", name=name)
        return self._store.create_session(
            name, persona=self._agent.persona if persona is None else persona, model=self._agent.model,
            provider=self._agent.provider.name,
        )  # fmt: skip

    def change(
        self,
        session: SessionKey,
        *,
        name: str | None = None,
        persona: str | None = None,
        model: str | None = None,
        memory: str | None = None,
        incognito: bool | None = None,
    ) -> SessionInfo:
        """Several of a session's settings in one write (None leaves one as it is): as
        ``rename``, ``set_persona``, ``set_model``, ``set_memory`` and ``set_incognito`` do."""
        info = self.get(session)
        if memory is not None:
            memory = _strategy(memory)
        if model is not None:
            self._check_model(model)
        if info.draft:
            changed = info
            if name is not None:
                changed = self.rename(changed, name)
            if persona is not None:
                changed = dataclasses.replace(changed, persona=persona)
            if model is not None:
                changed = dataclasses.replace(changed, model=model, provider=self._agent.provider.name)
            if memory is not None:
                changed = dataclasses.replace(changed, memory=memory)
            if incognito is not None:
                changed = _with_incognito(changed, incognito)
            return changed
        settings = None
        if incognito is not None:
            settings = dict(info.settings or {})
            if incognito:
                settings["incognito"] = True
            else:
                settings.pop("incognito", None)
        provider = self._agent.provider.name if model is not None else None
        if name is not None and name.strip() != info.name and info.title is not None:
            settings = dict(settings if settings is not None else info.settings or {})
            settings.pop("title", None)  # the name the user chose is shown from now on
        updated = self._store.update_session(
            info.id, name=name, persona=persona, model=model, provider=provider, memory=memory, settings=settings
        )
        chosen = {key: None for key, value in (("model", model), ("memory", memory)) if value is not None}
        if chosen:
            self._agent = self._agent.configured(**chosen)
        return updated

    def set_model(self, session: SessionKey, model: str) -> SessionInfo:
        """This session's model, chosen on the current provider; it wins over ``--model`` from now on.
        A provider with a fixed set of models (the embedded one) refuses any other, naming them."""
        self._check_model(model)
        provider = self._agent.provider.name
        if isinstance(session, SessionInfo) and session.draft:
            info = dataclasses.replace(session, model=model, provider=provider)
        else:
            info = self._store.update_session(_key(session), model=model, provider=provider)
        self._agent = self._agent.configured(model=None)
        return info

    def _check_model(self, model: str) -> None:
        provider = self._agent.provider
        if not provider.fixed_models:
            return
        offered = provider.list_models()
        if model not in offered:
            raise UnknownModel(
                f"the {provider.name} provider has only {', '.join(offered)}, not {model!r}; for another model "
                "use another provider (--provider …, see: memchat models)",
                model=model,
                provider=provider.name,
                offered=", ".join(offered),
            )

    def set_memory(self, session: SessionKey, strategy: str) -> SessionInfo:
        """This session's memory strategy; it wins over ``--memory`` from now on."""
        if isinstance(session, SessionInfo) and session.draft:
            info = dataclasses.replace(session, memory=_strategy(strategy))
        else:
            info = self._store.update_session(_key(session), memory=_strategy(strategy))
        self._agent = self._agent.configured(memory=None)
        return info

    def set_tools(self, session: SessionKey, names: Sequence[str]) -> SessionInfo:
        """The tools switched on in this session; they win over ``--tools`` from now on."""
        known = self._agent.tools.names()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise MemchatError(f"unknown tool {unknown[0]!r}; choose from: {', '.join(known)}")
        info = self.get(session)
        settings = dict(info.settings or {})
        settings["tools"] = [n for n in names if n]
        if info.draft:
            info = dataclasses.replace(info, settings=settings)
        else:
            info = self._store.update_settings(info.id, {"tools": settings["tools"]})
        self._agent = self._agent.configured(enabled_tools=None)
        return info

    def set_incognito(self, session: SessionKey, on: bool) -> SessionInfo:
        if isinstance(session, SessionInfo) and session.draft:
            return _with_incognito(session, on)
        return self._store.update_settings(_key(session), {"incognito": True if on else None})

    # -- history ----------------------------------------------------------------------

    # -- turns ------------------------------------------------------------------------

    def _seeded(self, seed: int | None, kw: dict[str, Any]) -> dict[str, Any]:
        """``kw`` with ``options`` sampling with ``seed`` (None: as configured)."""
        if seed is None:
            return kw
        base = kw.get("options") or self._agent.options or ChatOptions()
        return {**kw, "options": dataclasses.replace(base, seed=seed)}

    def stream(self, session: SessionKey | None, text: str, *, seed: int | None = None, **kw: Any) -> Turn:
        return self._agent.stream(session, text, **self._seeded(seed, kw))

    def astream(self, session: SessionKey | None, text: str, *, seed: int | None = None, **kw: Any) -> AsyncTurn:
        return self._agent.astream(session, text, **self._seeded(seed, kw))

    def astream_results(self, session: SessionKey | None, results: Sequence[tuple[str, str]], **kw: Any) -> AsyncTurn:
        """The turn goes on with the results of the caller's tools the model called
        (``Agent.astream_results``)."""
        return self._agent.astream_results(session, results, **kw)

    def retry(self, session: SessionKey | None, *, seed: int | None = None, **kw: Any) -> Turn:
        """Regenerate the last reply as a new version of it (the old one is kept). Unless a seed
        is set (``seed``, or the configured one) the model samples anew: another reply."""
        return self._agent.retry(session, **self._seeded(seed, kw))

    def aretry(self, session: SessionKey | None, *, seed: int | None = None, **kw: Any) -> AsyncTurn:
        return self._agent.aretry(session, **self._seeded(seed, kw))

    def edit(self, session: SessionKey, number: int, text: str, *, seed: int | None = None, **kw: Any) -> Turn:
        """``/edit N TEXT``: message ``number`` of the history (a user message) gets ``text``, in
        place: a new version of that point, answered by the turn returned (to stream); the
        message as it was, its reply and what followed are kept as another version."""
        message = _numbered(self.messages(session), number)
        if message.role is not Role.USER or message.id is None:
            raise StoreError("that is not a user message of this session")
        return self._agent.edit(self.get(session).id, message.id, text, **self._seeded(seed, kw))

    def aedit(
        self, session: SessionKey, message_id: int, text: str, *, seed: int | None = None, **kw: Any
    ) -> AsyncTurn:
        """``edit`` by the message's id, async (the HTTP API); the message is checked now."""
        return self._agent.aedit(self.get(session).id, message_id, text, **self._seeded(seed, kw))

    def context(self, session: SessionKey | None, text: str | None = None) -> ContextPlan:
        return self._agent.context(session, text)

    def context_view(self, session: SessionInfo, plan: ContextPlan) -> ContextView:
        """A plan explained for display (``/context``, ``sessions context``, the HTTP API)."""
        return context_view(self._store, session, plan, model=self._agent.model_for(session))

    # -- images -----------------------------------------------------------------------

    def generate_image(
        self,
        session: str | int,
        request: Any,
        *,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> builtins.list[ImageRecord]:
        """Make images from ``request`` (an ``ImageRequest``) with the configured generator, save
        them under the images directory (one folder per session id) and keep them with the
        session; the records as stored."""
        agent = self._agent
        if agent.images is None:
            raise MemchatError("no image provider is configured (MEMCHAT_IMAGE_PROVIDER)")
        info = self.get(session)
        return generate_and_keep(
            agent.images, request, agent.store, info, self._images_dir(), progress=progress, cancel=cancel
        )

    def image_file(self, image_id: int) -> tuple[ImageRecord, Path] | None:
        """An image of this user's sessions and its file; None when there is no such image, or
        its file is missing or outside the images directory (a record never serves any other)."""
        store = self._store
        for info in self.list():
            for image in store.images(info.id):
                if image.id == image_id:
                    path = Path(image.path).resolve()
                    inside = path.is_relative_to(self._images_dir().resolve())
                    return (image, path) if inside and path.is_file() else None
        return None

    def _images_dir(self) -> Path:
        """Where images are saved: the agent's directory, else ``images`` in the data directory."""
        where = self._agent.images_dir
        return Path(where) if where is not None else data_dir() / "images"


def _key(session: SessionKey) -> str | int:
    """What the store looks a session up by."""
    return session.id if isinstance(session, SessionInfo) else session


def _with_incognito(info: SessionInfo, on: bool) -> SessionInfo:
    settings = dict(info.settings or {})
    if on:
        settings["incognito"] = True
    else:
        settings.pop("incognito", None)
    return dataclasses.replace(info, settings=settings)


def _strategy(strategy: str) -> str:
    name = strategy.strip().lower()
    if name not in STRATEGIES:
        raise MemchatError(f"unknown memory strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
    return name


def _numbered(messages: Sequence[Message], number: int) -> Message:
    if not messages:
        raise StoreError("there are no messages yet")
    if not 1 <= number <= len(messages):
        raise StoreError(f"there is no message {number}; the history numbers them 1–{len(messages)}")
    return messages[number - 1]


def _last_user(messages: Sequence[Message]) -> Message:
    users = [m for m in messages if m.role is Role.USER]
    if not users:
        raise StoreError("there is no message of yours to pin yet")
    return users[-1]
