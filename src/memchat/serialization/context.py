"""The context of a call (a ``ContextPlan``) as ``ContextView``: what ``memchat sessions context
--json`` prints and the server's ``/context`` answers, messages named by their numbers."""

from __future__ import annotations

import bisect
import re

from memchat.domain import SessionInfo
from memchat.memory.plan import ContextEntry, ContextPlan
from memchat.serialization.wire import (
    BudgetView,
    ContextEntryView,
    ContextSectionView,
    ContextView,
    OmittedView,
    RecallItemView,
    RecallMatchView,
    covered,
    format_time,
    numbers,
)
from memchat.stores.base import Store

#: the planner's own count of evicted messages; ``omitted`` says it exactly
_EVICTED_NOTE = re.compile(r"^\d+ older messages are not sent verbatim$")


def _shown(entry: ContextEntry) -> str:
    """An entry's text as people read it: a tool-calling message also names its calls."""
    calls = (entry.extra or {}).get("tool_calls") or []
    names = [f"→ {c['function']['name']}({c['function'].get('arguments') or ''})" for c in calls if "function" in c]
    return "\n".join([entry.content, *names]).strip("\n") if names else entry.content


def context_view(store: Store, info: SessionInfo, plan: ContextPlan, *, model: str) -> ContextView:
    """``plan`` described for people and programs, messages named by their numbers in the
    session (as ``/history`` and ``sessions show`` number them). Reads the session's
    messages once (an explicit request, not part of a turn). A draft has none yet."""
    messages = [] if info.draft else store.messages(info.id)
    seqs = numbers(messages)

    def number(seq: int | None) -> int | None:
        if seq is None:
            return None
        i = bisect.bisect_left(seqs, seq)
        return i + 1 if i < len(seqs) and seqs[i] == seq else None

    others: dict[str, list[int]] = {}

    def number_in(session: str, seq: int) -> int | None:
        if session == info.name:
            return number(seq)
        if session not in others:
            found = store.find_session(session)
            others[session] = numbers(store.messages(found.id)) if found is not None else []
        i = bisect.bisect_left(others[session], seq)
        return i + 1 if i < len(others[session]) and others[session][i] == seq else None

    entries = [
        ContextEntryView(
            index=i,
            role=e.role.value,
            kind=e.kind,
            tokens=e.tokens,
            message=number(e.seq) if e.kind == "verbatim" else None,
            content=_shown(e),
        )
        for i, e in enumerate(plan.entries, 1)
    ]
    verbatim = {e["message"] for e in entries if e["message"] is not None}
    pins = [] if info.draft else store.pins(info.id)
    sent_pins = [p for p in pins if number(p.seq) not in verbatim] if plan.sections else []
    sections: list[ContextSectionView] = []
    summarized: set[int] = set()
    pinned: set[int] = set()
    recalled: set[int] = set()
    for section in plan.sections:
        view = ContextSectionView(
            kind=section.kind,
            tokens=section.tokens,
            note=section.note,
            covers=None,
            messages=[],
            matches=[],
            text=section.text,
            items=[
                RecallItemView(
                    kind=item.kind,
                    text=item.text,
                    tokens=item.tokens,
                    score=float(item.score),
                    why=item.why,
                    memory_id=item.memory_id,
                    session=item.session,
                    seq=item.seq,
                    created=format_time(item.created),
                )
                for item in section.items
            ],
        )
        if section.kind == "summary":
            summary = None if info.draft else store.latest_summary(info.id)
            span = covered(seqs, summary.first_seq, summary.last_seq) if summary is not None else None
            if span is not None:
                view["covers"] = [span[0], span[1]]
                summarized.update(range(span[0], span[1] + 1))
        elif section.kind == "pinned":
            view["messages"] = [n for n in (number(p.seq) for p in sent_pins) if n is not None]
            pinned.update(view["messages"])
        elif section.kind == "recall":
            for item in section.items:
                if item.kind != "turn" or item.seq is None:
                    continue
                session = item.session or info.name
                n = number_in(session, item.seq)
                view["matches"].append(RecallMatchView(session=session, message=n, score=float(item.score)))
                if session == info.name and n is not None:
                    recalled.add(n)
        sections.append(view)
    omitted = set(range(1, len(messages) + 1)) - verbatim
    span = covered(seqs, *plan.needs_summary) if plan.needs_summary is not None else None
    budget = plan.budget
    return ContextView(
        session=info.name,
        strategy=plan.strategy,
        model=model,
        tokens=plan.tokens,
        budget=BudgetView(
            window=budget.window,
            reserve=budget.reserve,
            tools=budget.tools,
            primer=budget.primer,
            overhead=budget.overhead,
            limit=budget.limit,
            used=plan.tokens,
        ),
        entries=entries,
        sections=sections,
        omitted=OmittedView(
            total=len(omitted),
            summarized=len(omitted & summarized),
            pinned=len(omitted & pinned),
            recalled=len(omitted & recalled),
            dropped=len(omitted - summarized - pinned - recalled),
        ),
        needs_summary=[span[0], span[1]] if span is not None else None,
        notes=[n for n in plan.notes if not _EVICTED_NOTE.match(n)],
    )
