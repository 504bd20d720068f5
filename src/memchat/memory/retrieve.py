"""Recall: the past turns and long-term memories most relevant to a new message, within a
token budget, each with why it was chosen.

Past turns are ranked by BM25 over the word index (``Store.search_words``: stemmed English
words, Chinese bigrams), fused with the session's own turns first and recency (a newer
statement of the same thing ranks above an older one), and a day the message names ("last
Friday", "上周五") brings the turns of that day closer. A hit brings its neighbour: the reply
after a user message (the answer is often there) or the question before a reply. Long
messages are cut to the sentences that hold the matched words, so more hits fit; the budget
is filled best-first with whole units (a hit and its neighbour), then shown in time order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime

from memchat.domain import Memory, MemoryKind, Message, Role, SearchHit
from memchat.memories.learner import detect_explicit
from memchat.memory.bm25 import term_frequency
from memchat.memory.plan import ItemKind, RecallItem
from memchat.memory.terms import query_words
from memchat.stores.base import Store

TextTokens = Callable[[str], int]
#: the semantic index's search: (text, limit) → (message id, similarity), nearest first
Nearest = Callable[[str, int], list[tuple[int, float]]]

#: hits read per search (this session, the other sessions)
CANDIDATES = 40
#: messages nearest in meaning read per search (both scopes together)
SEMANTIC_CANDIDATES = 40
#: how much the nearest in meaning counts beside the best BM25 hit (which counts 1)
SEMANTIC = 1.0
#: a hit of this session's own history counts this much more than one of another session
OWN_SESSION = 0.25
#: the newest candidate counts this much more than the oldest (rank-based, scale-free)
RECENCY = 0.2
#: a turn of the day the message names counts this much more (it decays over ±7 days)
DATE_MATCH = 0.5
#: a single item takes at most this share of the room (longer ones are cut to an excerpt)
ITEM_SHARE = 0.6
#: a neighbour takes at most this many tokens (cut to an excerpt)
NEIGHBOUR_TOKENS = 90
#: items per call at most
MAX_ITEMS = 24
#: the best hits that bring their neighbour (further down, the budget goes to more hits)
NEIGHBOURS_FOR = 3
#: what the user said counts this much more than the assistant's replies (facts about the user
#: come from the user), unless the message asks what the assistant said
USER_ROLE = 0.25
_ABOUT_REPLIES = re.compile(
    r"\byou\s+(said|say|told|tell|suggest|suggested|recommend|recommended|mention|mentioned|gave|give|wrote|"
    r"write|listed|list|explain|explained|answer|answered|propose|proposed)\b|\byour\s+(answer|reply|suggestion|"
    r"recommendation|advice|list)|你(说|讲|提到|推荐|建议|回答|列出|给出|告诉)",
    re.I,
)

_SENTENCE = re.compile(r"(?<=[.!?。！？\n])\s*")


def excerpt(text: str, words: Sequence[str], max_tokens: int, count: TextTokens) -> str:
    """``text`` if it fits ``max_tokens``, else its sentences that hold the most of ``words``
    (in their order, joined by …), within ``max_tokens``."""
    text = text.strip()
    if count(text) <= max_tokens:
        return text  # as it was written
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    if len(sentences) <= 1:
        sentences = [text[k : k + 200] for k in range(0, len(text), 200)]
    lowered = [s.lower() for s in sentences]

    def hits(i: int) -> int:
        return sum(1 for w in words if term_frequency(w, lowered[i]))

    order = sorted(range(len(sentences)), key=lambda i: (-hits(i), i))
    chosen: list[int] = []
    spent = 0
    for i in order:
        cost = count(sentences[i]) + 1
        if spent + cost > max_tokens:
            if not chosen and hits(i):  # one long sentence: keep its start
                return _clip(sentences[i], max_tokens, count)
            continue
        chosen.append(i)
        spent += cost
        if hits(i) == 0 and len(chosen) >= 2:
            break
    if not chosen:
        return _clip(text, max_tokens, count)
    chosen.sort()
    parts: list[str] = []
    last = -2
    for i in chosen:
        if i != last + 1 and (parts or i > 0):
            parts.append("…")
        parts.append(sentences[i])
        last = i
    if last < len(sentences) - 1:
        parts.append("…")
    return " ".join(parts)


def _clip(text: str, max_tokens: int, count: TextTokens) -> str:
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[:mid]) + 1 <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + " …"


def _day(moment: datetime | None) -> date | None:
    return moment.date() if moment is not None else None


def rank_hits(
    own: Sequence[SearchHit],
    others: Sequence[SearchHit],
    *,
    target_day: date | None = None,
    prefer_user: bool = False,
    similar: dict[int, float] | None = None,
) -> list[tuple[SearchHit, float, bool, str]]:
    """Hits of this session (``own``) and of others, fused: BM25 relative to the best hit plus
    the meaning's similarity relative to the nearest (``similar``: message id → cosine, from the
    semantic index, when there is one), the session's own turns first, newer before older,
    turns of ``target_day`` closer. Returns (hit, score, own, why) best first."""
    everything = [(h, True) for h in own] + [(h, False) for h in others]
    if not everything:
        return []
    best = max(h.score for h, _ in everything) or 1.0
    closeness = _closeness(similar or {})
    by_age = sorted({h.message.id or 0 for h, _ in everything})
    newest = {mid: k / max(1, len(by_age) - 1) for k, mid in enumerate(by_age)}
    out: list[tuple[SearchHit, float, bool, str]] = []
    seen: set[int] = set()
    for h, mine in everything:
        mid = h.message.id or 0
        if mid in seen:
            continue
        seen.add(mid)
        score = h.score / best
        why = [f"bm25 {h.score:.1f}"] if h.score > 0 else []
        if mid in closeness:
            score += SEMANTIC * closeness[mid]
            why.append(f"meaning {similar[mid]:.2f}" if similar else "meaning")
        if mine:
            score *= 1 + OWN_SESSION
            why.append("this chat")
        if prefer_user and h.message.role is Role.USER:
            score *= 1 + USER_ROLE
        score *= 1 + RECENCY * newest.get(mid, 0.0)
        day = _day(h.message.created)
        if target_day is not None and day is not None:
            gap = abs((day - target_day).days)
            if gap <= 7:
                score *= 1 + DATE_MATCH * (1 - gap / 8)
                why.append(f"{gap} days from {target_day.isoformat()}" if gap else f"on {target_day.isoformat()}")
        out.append((h, score, mine, ", ".join(why)))
    out.sort(key=lambda t: (-t[1], -(t[0].message.id or 0)))
    return out


def _closeness(similar: dict[int, float]) -> dict[int, float]:
    """Similarities scaled to 0…1 between the farthest and the nearest candidate (cosines of
    one model crowd into a narrow band; their order is what carries)."""
    if not similar:
        return {}
    top, floor = max(similar.values()), min(similar.values())
    span = top - floor
    if span <= 1e-9:
        return dict.fromkeys(similar, 1.0)
    return {mid: (s - floor) / span for mid, s in similar.items()}


def recall_turns(
    store: Store,
    session_id: int,
    text: str,
    *,
    room: int,
    count: TextTokens,
    before_seq: int | None,
    own: bool,
    others: bool,
    exclude: set[int | None],
    target_day: date | None = None,
    skip_requests: bool = False,
    nearest: Nearest | None = None,
) -> list[RecallItem]:
    """The past turns for ``text`` that fit ``room`` tokens (items' own tokens, one line
    each), in time order: this session's messages before ``before_seq`` (``own``) and the
    user's other sessions' (``others``), never those in ``exclude`` (ids sent anyway).
    ``nearest(text, limit)``: the semantic index's closest messages, when there is one."""
    if room <= 0 or not (own or others):
        return []
    others = others and store.has_other_sessions(session_id)  # else nothing there to find (or embed for)
    if not (own or others):
        return []
    words = query_words(text)
    similar = dict(nearest(text, SEMANTIC_CANDIDATES)) if nearest is not None else {}
    if not words and not similar:
        return []
    mine = (
        store.search_words(words, session=session_id, before_seq=before_seq, limit=CANDIDATES) if own and words else []
    )
    theirs = (
        store.search_words(words, session=None, exclude_session=session_id, limit=CANDIDATES)
        if others and words
        else []
    )
    if similar:  # the nearest by meaning that the words did not find, in the same scope
        known = {h.message.id for h in (*mine, *theirs)}
        ids = [mid for mid in similar if mid not in known]
        if own:
            mine = [*mine, *store.messages_by_id(ids, session=session_id, before_seq=before_seq)]
        if others:
            theirs = [*theirs, *store.messages_by_id(ids, exclude_session=session_id)]
    prefer_user = _ABOUT_REPLIES.search(text) is None
    ranked = rank_hits(mine, theirs, target_day=target_day, prefer_user=prefer_user, similar=similar)
    ranked = [r for r in ranked if r[0].message.id not in exclude]
    if skip_requests:  # "remember …" / "forget …": what they said lives in the memories (or was forgotten)
        ranked = [
            r for r in ranked if r[0].message.role is not Role.USER or detect_explicit(r[0].message.content) is None
        ]
    if not ranked:
        return []
    neighbours = _neighbours(store, [r[0] for r in ranked[:NEIGHBOURS_FOR]], session_id)
    item_cap = max(48, int(room * ITEM_SHARE))
    units: list[list[RecallItem]] = []  # a hit and its neighbour, sent together
    for rank, (hit, score, is_own, why) in enumerate(ranked):
        where = None if is_own else hit.session
        unit = [_item(hit.message, where, words, item_cap, count, score, why)]
        partner = neighbours.get(hit.message.id or 0) if rank < NEIGHBOURS_FOR else None
        if partner is not None and partner.id not in exclude:
            cap = min(NEIGHBOUR_TOKENS, item_cap)
            unit.append(_item(partner, where, words, cap, count, score / 2, f"next to #{hit.message.seq}"))
        units.append(unit)
    chosen: dict[int, RecallItem] = {}
    spent = 0
    for unit in units:
        fresh = [i for i in unit if (i.message_id or 0) not in chosen]
        cost = sum(i.tokens for i in fresh)
        if fresh and spent + cost > room and len(fresh) > 1:  # no room for the neighbour: the hit alone
            fresh = fresh[:1]
            cost = fresh[0].tokens
        if not fresh or spent + cost > room:
            continue
        for i in fresh:
            chosen[i.message_id or 0] = i
        spent += cost
        if len(chosen) >= MAX_ITEMS:
            break
    return sorted(chosen.values(), key=_time_order)


def _time_order(item: RecallItem) -> tuple[str, int]:
    return (item.created.isoformat() if item.created else "", item.message_id or 0)


def _item(
    m: Message, session: str | None, words: Sequence[str], cap: int, count: TextTokens, score: float, why: str
) -> RecallItem:
    body = excerpt(m.described, words, cap, count)
    line = turn_line(m, session, body)
    return RecallItem(
        kind=ItemKind.TURN,
        text=line,
        tokens=count(line) + 1,
        score=round(score, 3),
        why=why,
        session=session,
        seq=m.seq,
        message_id=m.id,
        created=m.created,
    )


def turn_line(m: Message, session: str | None, body: str) -> str:
    """One recalled message as the model reads it: date, where, who, what."""
    when = m.created.strftime("%Y-%m-%d") if m.created else ""
    where = f" {session}" if session else ""
    return f"[{when}{where} #{m.seq} {m.role.value}] {body}"


def _neighbours(store: Store, hits: Sequence[SearchHit], session_id: int) -> dict[int, Message]:
    """For each hit the message it goes with: a user message's reply, a reply's question."""
    wanted: dict[tuple[str, int], list[int]] = {}
    for h in hits[:CANDIDATES]:
        seq = h.message.seq or 0
        key = (h.session, h.message.id or 0)
        wanted[key] = [seq + 1] if h.message.role is Role.USER else [seq - 1]
    by_session: dict[str, set[int]] = {}
    for (sess, _), seqs in wanted.items():
        by_session.setdefault(sess, set()).update(seqs)
    found: dict[tuple[str, int], Message] = {}
    for sess, wanted_seqs in by_session.items():
        info = store.find_session(sess)
        if info is None:
            continue
        for m in store.messages_at(info.id, sorted(wanted_seqs)):
            found[(sess, m.seq or 0)] = m
    out: dict[int, Message] = {}
    for h in hits[:CANDIDATES]:
        seq = h.message.seq or 0
        want = seq + 1 if h.message.role is Role.USER else seq - 1
        partner = found.get((h.session, want))
        if partner is None or partner.role not in (Role.USER, Role.ASSISTANT) or not partner.content.strip():
            continue
        if h.message.role is Role.USER and partner.role is not Role.ASSISTANT:
            continue
        if h.message.role is Role.ASSISTANT and partner.role is not Role.USER:
            continue
        out[h.message.id or 0] = partner
    return out


# -- long-term memories -------------------------------------------------------------------


def memory_line(m: Memory, zh: bool = False) -> str:
    """One memory as the model reads it: its id (for the remember/forget tools), date, text."""
    parts = [f"[m{m.id}"]
    if m.kind is MemoryKind.EVENT and m.event_date is not None:
        parts.append(("事件日期 " if zh else "on ") + m.event_date.isoformat())
    elif m.created is not None:
        parts.append(("记于 " if zh else "since ") + m.created.strftime("%Y-%m-%d"))
    if m.kind is MemoryKind.INSTRUCTION:
        parts.append("指示" if zh else "instruction")
    return ", ".join(parts) + "] " + m.content


def memory_item(m: Memory, count: TextTokens, score: float, why: str, zh: bool = False) -> RecallItem:
    line = memory_line(m, zh)
    return RecallItem(
        kind=ItemKind.MEMORY,
        text=line,
        tokens=count(line) + 1,
        score=round(score, 3),
        why=why,
        memory_id=m.id,
        session=m.session_name,
        created=m.created,
    )


def relevant_memories(
    store: Store, text: str, *, room: int, count: TextTokens, skip: set[int | None], zh: bool = False
) -> list[RecallItem]:
    """Served memories matching ``text`` best-first within ``room`` tokens (not those in ``skip``)."""
    words = query_words(text)
    if not words or room <= 0:
        return []
    found = [(m, s) for m, s in store.search_memories(words, limit=20) if m.id not in skip]
    if not found:
        return []
    best = max(s for _, s in found) or 1.0
    items: list[RecallItem] = []
    spent = 0
    for m, s in found:
        if s < best * 0.2:  # far weaker than the best match: noise
            break
        item = memory_item(m, count, s / best, f"matched your message (bm25 {s:.1f})", zh)
        if spent + item.tokens > room:
            continue
        items.append(item)
        spent += item.tokens
    return items
