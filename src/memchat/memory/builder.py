"""Plans each call's context with a session's memory strategy.

``full``    everything (the lesson's behaviour); a clear error when it no longer fits.
``window``  the newest whole turns that fit; the persona and pinned messages always stay.
``summary`` older turns folded into a running summary (written by the model, stored as its
            own record with the range it covers); the newest turns verbatim.
``recall``  the window, plus older messages found by full-text search for the new message.
``auto``    window + summary + recall.

Building a plan reads the store but never changes it: when a new summary is due the plan
says so (``needs_summary``) and the agent has it written after the turn, in the background
(``memory.upkeep``); meanwhile the turns it will fold are left out (the budget holds exactly).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from memchat.clock import date_line
from memchat.domain import Memory, MemoryKind, Message, Role, SessionInfo
from memchat.errors import ContextTooLong
from memchat.memories.dates import resolve_date
from memchat.memory.budget import Budget
from memchat.memory.plan import (
    STRATEGIES,
    ContextEntry,
    ContextPlan,
    EntryKind,
    Layout,
    RecallItem,
    Section,
    SectionKind,
    Strategy,
)
from memchat.memory.prefix import SentPrefix, extend, make_entry
from memchat.memory.retrieve import memory_item, recall_turns, relevant_memories
from memchat.memory.semantic import SemanticIndex
from memchat.memory.summarize import summary_reply_tokens
from memchat.memory.tail import TailCache
from memchat.memory.turns import SanitizedTail, sanitize, turn_starts, with_new
from memchat.stores.base import Store
from memchat.tokens import RATIO_BOUNDS

log = logging.getLogger(__name__)

#: after an eviction the verbatim part is cut down to this share of its room, so the prefix
#: stays stable for several turns (fewer summaries; KV-cache reuse on a local model)
LOW_WATER = 0.6
#: share of the budget kept for recalled messages when older messages exist
RECALL_SHARE = 0.25
#: per section joined into the system message: a margin for tokenizer effects at the seams
SEAM = 2
#: long-term memory (memories and recalled turns) takes at most this many tokens of a call
MEMORY_CAP = 2_000
#: all served memories go with every call while they take at most this share of the budget
#: (a stable part of the system message); beyond it, instructions always and the rest when relevant
ALWAYS_SHARE = 0.12

#: the calibration ratio a plan uses changes once the measured one moved by this share
RATIO_STEP = 0.01

#: entries of stored messages kept for reuse (beyond it the memo starts again)
ENTRIES_KEPT = 50_000
#: sessions whose last call's messages are kept for the next (beyond it the memo starts again)
PREFIXES_KEPT = 1_000

Counter = Callable[[str], tuple[int, str]]


def _headings(lang_zh: bool) -> dict[str, str]:
    if lang_zh:
        return {
            "summary": "【之前对话的摘要】",
            "pinned": "【置顶消息】",
            "recall": "【可能相关的早先消息（按需检索）】",
            "memories": "【你对用户的长期记忆（跨会话；[m编号] 可用于 remember/forget 工具）】",
            "relevant": "【与这条消息相关的长期记忆】",
        }
    return {
        "summary": "[Summary of the earlier conversation]",
        "pinned": "[Pinned messages]",
        "recall": "[Earlier messages that may be relevant (retrieved for this message)]",
        "memories": "[What you remember about the user from earlier chats ([mN]: an id for the remember/forget tools)]",
        "relevant": "[Long-term memories related to this message]",
    }


@dataclass(frozen=True)
class _MemoryState:
    """The user's long-term memories at one version (see ``MemoryPlanner._memory_state``)."""

    version: int
    memories: list[Memory]  # served, newest first
    retired: frozenset[int | None]


def _is_zh(text: str) -> bool:
    return sum(1 for ch in text[:200] if "\u4e00" <= ch <= "\u9fff") > 3


class MemoryPlanner:
    def __init__(self, store: Store, count: Counter, semantic: SemanticIndex | None = None) -> None:
        self.store = store
        #: nearest past messages by meaning, fused into recall (None: words only)
        self.semantic = semantic
        self._count = count
        self.tails = TailCache(store)
        self._ratios: dict[str, float] = {}
        self._lock = threading.Lock()
        #: (limit, zh) → (memory version, the always-on memories section)
        self._always: dict[tuple[int, bool], tuple[int, Section | None]] = {}
        self._state = _MemoryState(-1, [], frozenset())
        #: per session: its newest messages sanitized, kept between turns (O(new) per turn)
        self._sanitized: dict[int, SanitizedTail] = {}
        #: per stored message id: (the message object the tail cache holds, the calibration
        #: ratio, its entry), made once and reused every turn while both are the same
        self._entries: dict[int, tuple[Message, float, ContextEntry]] = {}
        #: per session: the stored messages its last call sent, with their entries (O(new) per turn)
        self._prefixes: dict[int, SentPrefix] = {}

    # -- token arithmetic -------------------------------------------------------------

    def ratio(self, model: str) -> float:
        """Real tokens per estimated token for ``model`` (1.0 until the provider told us)."""
        with self._lock:
            if model not in self._ratios:
                self._ratios[model] = self.store.calibration(model) or 1.0
            return self._ratios[model]

    def learn(self, model: str, reported_prompt_tokens: int, plan: ContextPlan) -> None:
        """Fold a provider's reported prompt size into the model's calibration."""
        if plan.raw_estimate <= 0 or reported_prompt_tokens <= 0:
            return
        observed = min(max(reported_prompt_tokens / plan.raw_estimate, RATIO_BOUNDS[0]), RATIO_BOUNDS[1])
        with self._lock:
            current = self._ratios.get(model)
        if current is not None and abs(observed - current) <= RATIO_STEP * current:
            return  # it would move the ratio by a fraction of a step: not worth a write every turn
        ratio = self.store.record_calibration(model, observed)
        with self._lock:
            # planned with only once it moved by a step: every entry's tokens depend on it, and
            # a ratio that changed every turn made every entry again every turn (O(history))
            old = self._ratios.get(model)
            if old is None or abs(ratio - old) > RATIO_STEP * old:
                self._ratios[model] = ratio

    # -- the plan ---------------------------------------------------------------------

    def plan(
        self,
        info: SessionInfo,
        new: Message | None,
        *,
        strategy: str,
        budget: Budget,
        model: str,
        exclude: Collection[int] = (),
        recall_all: bool = False,
        summarize: bool = True,
        today: datetime | None = None,
        long_term: bool = False,
        layout: Layout = Layout.SINGLE,
        recall: bool = True,
        summary_until: int | None = None,
    ) -> ContextPlan:
        """``summary_until``: use the newest summary ending at or before that message (0: none)
        rather than the newest of all (the embedded model's cache does not hold a newer one's
        layout yet: ``Agent._summary_until``). ``today``: when given, a line with the date
        follows the persona (models cannot know it).
        ``recall_all``: recall also searches the user's other sessions; ``long_term``: the
        user's long-term memories go with the call (both off in an incognito session).
        ``layout``: where recall goes (the provider's ``system_layout``); without ``recall`` the
        recalled block is left out but its room kept (memory upkeep, which plans ahead only to
        know the window and the summary due, needs no search: they come out the same)."""
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown memory strategy {strategy!r}")
        ratio = self.ratio(model)

        def msg_tokens(m: Message) -> int:
            n = m.tokens if m.tokens is not None else self._count(m.content)[0]
            return math.ceil(n * ratio) if m.token_method in (None, "estimate") else n

        def text_tokens(text: str) -> int:
            n, method = self._count(text)
            return math.ceil(n * ratio) if method == "estimate" else n

        plan = ContextPlan(strategy=Strategy(strategy), budget=budget)
        limit = budget.limit
        ov = budget.overhead  # the chat template's tokens around each message
        zh = _is_zh(info.persona + (new.content if new else ""))
        heads = _headings(zh)

        head: list[Section] = []  # the persona and the date line
        if info.persona:
            head.append(Section(SectionKind.PERSONA, info.persona, text_tokens(info.persona)))
        if today is not None:
            line = date_line(today, "zh" if zh else "en")
            head.append(Section(SectionKind.DATE, line, text_tokens(line)))

        state = self._memory_state() if long_term else None  # one look at the memories per call
        always = self._always_on(limit, text_tokens, zh, state) if state is not None else None
        if always is not None:
            head.append(always)

        tail, complete, entry = self.tails.get(info.id, 2 * limit)
        if exclude:
            history = sanitize([m for m in tail if m.id not in exclude])
        else:
            with self._lock:
                kept = self._sanitized.setdefault(info.id, SanitizedTail())
            history = kept.get(tail)
        new_cost = msg_tokens(new) + ov if new is not None else 0
        persona_cost = sum(h.tokens for h in head) + SEAM * (len(head) - 1) if head else 0
        if new is not None and persona_cost + new_cost + (ov if head else 0) > limit:
            raise ContextTooLong(
                f"your message needs about {new_cost} tokens, but the context window leaves {limit}; "
                "shorten it or raise --context-window",
                needed=new_cost,
                limit=limit,
            )

        if strategy == "full":
            messages = history if new is None else with_new(history, new)
            sent = self._prefixes.get(info.id)  # the last call's messages: only the rest is counted
            cost = sent.tokens_of(messages, ratio, msg_tokens) if sent else sum(msg_tokens(m) for m in messages)
            cost += ov * len(messages)
            system = persona_cost + ov if head else 0
            if not complete or system + cost > limit:
                raise ContextTooLong(
                    f"the whole conversation no longer fits the model's context window ({limit} tokens for "
                    "messages); switch the memory strategy with /memory auto (or --memory window|summary|recall)",
                    limit=limit,
                )
            full_sections = list(head)
            if recall and new is not None and (recall_all or long_term):
                used = system + cost
                # only the other sessions are searched (all of this one is sent): nothing to exclude
                section = self._recall(
                    info, new, None, set(), limit - used - ov, False, recall_all,
                    state, always, heads, text_tokens, zh, today,
                )  # fmt: skip
                if section is not None:
                    full_sections.append(section)
            self._assemble(info.id, plan, full_sections, messages, new, msg_tokens, ratio, layout)
            return plan

        summary = self.store.latest_summary(info.id) if strategy in ("summary", "auto") else None
        if summary is not None and summary_until is not None and summary.last_seq > summary_until:
            earlier = [s for s in self.store.summaries(info.id) if s.last_seq <= summary_until]
            summary = earlier[-1] if earlier else None
        use_recall = strategy in ("recall", "auto") and new is not None
        pins = self.store.pins(info.id)
        pinned_ids = {p.id for p in pins}

        # what is left for verbatim turns once the fixed parts are paid for
        sections: list[Section] = list(head)
        summary_section = None
        if summary is not None:
            text = heads["summary"] + "\n" + summary.content  # no numbers: extended, it stays a prefix
            summary_section = Section(
                SectionKind.SUMMARY, text, text_tokens(text), note=f"messages {summary.first_seq}-{summary.last_seq}"
            )
        candidates = [m for m in history if summary is None or (m.seq or 0) > summary.last_seq]
        costs = [msg_tokens(m) + ov for m in candidates]
        total = sum(costs)
        live_pins = [p for p in pins if p.id not in exclude]
        pins_text = heads["pinned"] + "\n" + "\n".join(f"[#{p.seq} {p.role.value}] {p.content}" for p in live_pins)
        pins_room = text_tokens(pins_text) + SEAM if live_pins else 0  # at most this, if all fall out
        fixed = new_cost + ov + sum(s.tokens + SEAM for s in sections) + pins_room
        if fixed > limit:  # the persona and the new message fit (checked above): the pins do not
            raise ContextTooLong(
                f"the pinned messages need about {pins_room} tokens, more than the context window leaves "
                f"({limit} tokens for messages); unpin some (/unpin N) or raise --context-window",
                needed=pins_room,
                limit=limit,
            )
        uses_summary = strategy in ("summary", "auto")
        # room for a summary: the current one, or the one this call may have to write
        summary_room = summary_section.tokens + SEAM if summary_section is not None else 0
        will_evict = total > limit - fixed - summary_room
        if uses_summary and summarize and will_evict:
            summary_room = max(summary_room, summary_reply_tokens(budget.window) + SEAM + 16)
        older = will_evict or not complete or len(candidates) < len(history) or summary is not None
        recall_room = int(limit * RECALL_SHARE) if use_recall and older else 0
        if budget.recall_cap is not None:  # a slow model: the verbatim turns get the rest
            recall_room = min(recall_room, budget.recall_cap)
        room = limit - fixed - summary_room - recall_room
        if room < 0 and summary_section is not None:
            plan.notes.append("the summary was left out: it does not fit this window")
            summary_section, summary_room = None, 0
            room = limit - fixed - recall_room
        if room < 0:
            recall_room, room = 0, limit - fixed - summary_room

        sticky = strategy in ("window", "recall") or (uses_summary and not summarize)
        start = 0
        if sticky and entry.window_start is not None:
            start = next((i for i, m in enumerate(candidates) if (m.seq or 0) >= entry.window_start), len(candidates))
        if sum(costs[start:]) > room:
            start = self._cut(candidates, costs, room * LOW_WATER)
            if sum(costs[start:]) > room:  # even the newest turn is too big: keep the newest messages that fit
                start = self._cut(candidates, costs, room, whole_turns=False)
        verbatim = candidates[start:]
        evicted = candidates[:start]
        if sticky:
            entry.window_start = verbatim[0].seq if verbatim else None

        if evicted and uses_summary:  # due: written now (summarize) or by memory upkeep, after the turn
            first = summary.first_seq if summary is not None else (evicted[0].seq or 1)
            plan.needs_summary = (first, evicted[-1].seq or first)
        elif evicted:
            plan.notes.append(f"{len(evicted)} older messages are not sent verbatim")

        # what is sent as it is: a cut mid-turn or the new message may drop a few more
        # (an orphan tool result, the unanswered user message before the new one)
        messages = sanitize(verbatim if new is None else [*verbatim, new])
        verbatim_ids = {m.id for m in messages if m is not new}
        older_pins = [p for p in live_pins if p.id not in verbatim_ids]
        if summary_section is not None:
            sections.append(summary_section)
        if older_pins:
            text = heads["pinned"] + "\n" + "\n".join(f"[#{p.seq} {p.role.value}] {p.content}" for p in older_pins)
            sections.append(Section(SectionKind.PINNED, text, text_tokens(text), note=f"{len(older_pins)} pinned"))
        used = sum(s.tokens + SEAM for s in sections) + sum(costs[start:]) + new_cost + ov
        older = bool(evicted) or summary is not None or not complete or len(candidates) < len(history)
        own = use_recall and older
        if recall and new is not None and (own or recall_all or long_term):
            first_verbatim = verbatim[0].seq if verbatim else None
            skip = verbatim_ids | pinned_ids | set(exclude)
            room = limit - used - ov
            if budget.recall_cap is not None and budget.recall_cap < min(room, MEMORY_CAP):
                room = budget.recall_cap  # a slow model: what it evaluates in a couple of seconds
                plan.notes.append(f"recall kept to {room} tokens: the model evaluates prompts slowly")
            section = self._recall(
                info, new, first_verbatim, skip, room, own, recall_all,
                state, always, heads, text_tokens, zh, today,
            )  # fmt: skip
            if section is not None:
                sections.append(section)
        plan.omitted = len(history) - len(verbatim) + (0 if complete else 1)
        self._assemble(info.id, plan, sections, messages, new, msg_tokens, ratio, layout)
        return plan

    @staticmethod
    def _cut(messages: Sequence[Message], costs: Sequence[int], room: float, *, whole_turns: bool = True) -> int:
        """The earliest index from which the messages cost at most ``room`` (at a turn start)."""
        starts = turn_starts(messages) if whole_turns else list(range(len(messages)))
        suffix = 0
        best = len(messages)
        boundary = set(starts)
        for i in range(len(messages) - 1, -1, -1):
            suffix += costs[i]
            if suffix > room:
                break
            if i in boundary:
                best = i
        return best

    def _recall(
        self,
        info: SessionInfo,
        new: Message,
        before_seq: int | None,
        exclude: set[int | None],
        room: int,
        own: bool,
        others: bool,
        state: _MemoryState | None,
        always: Section | None,
        heads: dict[str, str],
        text_tokens: Callable[[str], int],
        zh: bool,
        today: datetime | None,
    ) -> Section | None:
        """Memories relevant to ``new`` (those not already in the system message), then the past
        turns that match it best — of this session before ``before_seq`` (``own``) and of the
        user's other sessions (``others``) — within ``room`` tokens and ``MEMORY_CAP`` (less what
        the memories in the system message, ``always``, took). ``state``: the memories (None: off)."""
        shown = {i.memory_id for i in always.items} if always is not None else set()
        room = min(room, MEMORY_CAP - (always.tokens if always is not None else 0))
        heading = heads["recall"]
        room -= text_tokens(heading) + SEAM
        if room <= 0 or not (own or others or state is not None):
            return None
        items: list[RecallItem] = []
        if state is not None and len(state.memories) > len(shown):  # memories not in the system message yet
            memory_room = min(room // 3, 600)
            items += relevant_memories(
                self.store, new.content, room=memory_room, count=text_tokens, skip=shown, zh=zh
            )  # fmt: skip
        room -= sum(i.tokens for i in items)
        target = resolve_date(new.content[:400], today.date()) if today is not None else None
        if state is not None and state.retired:  # what was forgotten or has changed is not brought back
            exclude = exclude | state.retired
        turns = recall_turns(
            self.store,
            info.id,
            new.content,
            room=room,
            count=text_tokens,
            before_seq=before_seq,
            own=own,
            others=others,
            exclude=exclude,
            target_day=target,
            skip_requests=state is not None,
            nearest=self._nearest if self.semantic is not None else None,
        )
        if not items and not turns:
            return None
        parts: list[str] = []
        if items:
            parts += [heads["relevant"], *(i.text for i in items)]
        if turns:
            parts += [heading, *(i.text for i in turns)]
        text = "\n".join(parts)
        notes = [f"m{i.memory_id}" for i in items] + [
            f"#{i.seq}{' ' + i.session if i.session else ''} (score {i.score:.1f})" for i in turns
        ]
        return Section(
            SectionKind.RECALL, text, text_tokens(text), note="matched " + ", ".join(notes), items=(*items, *turns)
        )

    def _nearest(self, text: str, limit: int) -> list[tuple[int, float]]:
        """The semantic index's nearest messages; [] when it fails (recall goes on by words)."""
        if self.semantic is None:
            return []
        try:
            return self.semantic.nearest(self.store, text, limit)
        except Exception as exc:  # an embedding service down never fails a turn
            log.warning("semantic recall failed (%s: %s); recalling by words", type(exc).__name__, exc)
            return []

    def _memory_state(self) -> _MemoryState:
        """The user's memories as the planner needs them — how many are served, and the messages
        that taught memories no longer served (forgotten or superseded, unless they also taught
        one that is: recall leaves those out) — read again only when the memories change."""
        version = self.store.memory_version()
        if self._state.version != version:
            retired: set[int | None] = set()
            kept: set[int | None] = set()
            everything = self.store.memories(include_ended=True)
            for m in everything:
                (kept if m.active else retired).update(m.source_ids)
            active = [m for m in everything if m.active]
            self._state = _MemoryState(version, active, frozenset(retired - kept))
        return self._state

    def _always_on(
        self, limit: int, text_tokens: Callable[[str], int], zh: bool, state: _MemoryState
    ) -> Section | None:
        """The memories that go with every call: all of them while they fit ``ALWAYS_SHARE`` of
        the budget, else the instructions (newest first) that do. Cached per memory version."""
        version = state.version
        key = (limit, zh)
        cached = self._always.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        memories = state.memories
        room = min(int(limit * ALWAYS_SHARE), MEMORY_CAP // 2)
        heading = _headings(zh)["memories"]
        items = [memory_item(m, text_tokens, 1.0, "always sent (all memories fit)", zh) for m in memories]
        if sum(i.tokens for i in items) + text_tokens(heading) > room:
            items = []
            spent = text_tokens(heading)
            for m in memories:
                if m.kind is not MemoryKind.INSTRUCTION:
                    continue
                item = memory_item(m, text_tokens, 1.0, "an instruction: always sent", zh)
                if spent + item.tokens > room:
                    break
                items.append(item)
                spent += item.tokens
        section = None
        if items:
            text = heading + "\n" + "\n".join(i.text for i in items)
            section = Section(
                SectionKind.MEMORIES, text, text_tokens(text), note=f"{len(items)} memories", items=tuple(items)
            )
        self._always[key] = (version, section)
        return section

    def _assemble(
        self,
        session_id: int,
        plan: ContextPlan,
        sections: list[Section],
        messages: Sequence[Message],
        new: Message | None,
        msg_tokens: Callable[[Message], int],
        ratio: float,
        layout: Layout,
    ) -> None:
        """One system message (persona first, then date, memories, summary and pins, recall
        last: it changes with every message, and everything before it stays a stable prefix),
        then the turns. With ``Layout.RECALL_APART`` the recalled messages are a system message
        of their own right after the new one, so the whole history stays a stable prefix (a
        local model reuses its KV cache for it) — only for templates that render it: many keep
        the first system message alone or reject a later one."""
        plan.sections = sections
        apart = layout is Layout.RECALL_APART
        leading = [s for s in sections if not (apart and s.kind == "recall")]
        recalled = [s for s in sections if apart and s.kind == "recall"]
        system = 0
        if leading:
            text = "\n\n".join(s.text for s in leading)
            system = sum(s.tokens for s in leading) + SEAM * (len(leading) - 1)
            kind = EntryKind.PERSONA if [x.kind for x in leading] == ["persona"] else EntryKind.SYSTEM
            plan.entries.append(ContextEntry(Role.SYSTEM, text, system, kind=kind))

        def make(m: Message) -> ContextEntry:
            if m is new or m.id is None:
                return make_entry(m, msg_tokens(m), EntryKind.NEW if m is new else EntryKind.VERBATIM)
            kept = self._entries.get(m.id)
            if kept is not None and kept[0] is m and kept[1] == ratio:  # the very message (the tail cache's)
                return kept[2]
            if len(self._entries) > ENTRIES_KEPT:
                self._entries.clear()
            entry = make_entry(m, msg_tokens(m), EntryKind.VERBATIM)
            self._entries[m.id] = (m, ratio, entry)
            return entry

        entries, tokens, sent = extend(self._prefixes.get(session_id), messages, new, ratio, make)
        if len(self._prefixes) > PREFIXES_KEPT and session_id not in self._prefixes:
            self._prefixes.clear()
        self._prefixes[session_id] = sent
        plan.entries.extend(entries)
        # after the new message: the next call's history has that message, not this recall, so
        # its cache stays valid up to the new message (before it, each turn would evaluate the
        # previous recall's place again: the whole block and everything after it)
        plan.entries.extend(ContextEntry(Role.SYSTEM, s.text, s.tokens, kind=EntryKind.RECALL) for s in recalled)
        total = system + tokens + sum(s.tokens for s in recalled) + plan.budget.overhead * len(plan.entries)
        plan.raw_estimate = round(total / ratio)  # plan.tokens, without another pass over the entries
