"""A call's context (``serialization.ContextView``) in words: the budget gauge, what each part of
the system message is, what was left out — shared by ``memchat sessions context`` (plain text,
here) and the REPL's ``/context`` (a rich table, ``render``). Imports no terminal UI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memchat.cli.cli_strings import t

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from memchat.domain import Memory
    from memchat.serialization import (
        ContextEntryView,
        ContextSectionView,
        ContextView,
        OmittedView,
        RecallItemView,
    )

#: cells of the budget gauge
GAUGE_WIDTH = 20


def percent(used: int, limit: int) -> int:
    return round(100 * used / limit) if limit > 0 else 100


def gauge(used: int, limit: int, width: int = GAUGE_WIDTH) -> str:
    """``[██████░░░░…]``: how much of the budget the call uses."""
    filled = min(width, round(width * used / limit)) if limit > 0 else width
    return "[" + "█" * filled + "░" * (width - filled) + "]"


def budget_lines(view: ContextView) -> tuple[str, str]:
    """The gauge with used/limit tokens, and how the limit follows from the window."""
    b = view["budget"]
    used = t("ctx.gauge", used=f"{b['used']:,}", limit=f"{b['limit']:,}", percent=percent(b["used"], b["limit"]))
    tools = t("ctx.window_tools", tools=f"{b['tools']:,}") if b["tools"] else ""
    if b.get("primer"):
        tools += t("ctx.window_primer", primer=f"{b['primer']:,}")
    window = t(
        "ctx.window", window=f"{b['window']:,}", reserve=f"{b['reserve']:,}", tools=tools, limit=f"{b['limit']:,}"
    )
    return f"{gauge(b['used'], b['limit'])} {used}", window


def kind(name: str) -> str:
    """An entry's or a section's kind in the user's language (a kind not known here as it is)."""
    key = f"ctx.kind.{name}"
    text = t(key)
    return name if text == key else text


def tokens(n: int) -> str:
    return t("ctx.tokens", count=f"{n:,}")


def items(section: ContextSectionView) -> list[RecallItemView]:
    """The memories and past turns a section brought (none in a persona, summary or pinned one)."""
    return list(section.get("items") or [])


def _day(stamp: str | None) -> str:
    """A stored time (``…Z``) as the local day."""
    if not stamp:
        return ""
    from datetime import datetime

    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d")
    except ValueError:
        return stamp[:10]


def item_line(item: RecallItemView, session: str, *, with_tokens: bool = True) -> str:
    """What one memory or past turn is and why it was chosen: ``memory #3 · 9 tokens · score
    4.2 · matched name`` or ``trip · 2026-11-30 · 40 tokens · score 3.1 · matched Lyon``."""
    if item["kind"] == "memory":
        parts = [t("ctx.item_memory", id="?" if item["memory_id"] is None else item["memory_id"])]
    else:
        where = item["session"]
        parts = [t("ctx.item_turn_here") if not where or where == session else t("ctx.item_turn", session=where)]
        if item["created"]:
            parts.append(_day(item["created"]))
    if with_tokens:
        parts.append(tokens(item["tokens"]))
    if item["score"]:
        parts.append(t("ctx.item_score", score=f"{item['score']:.1f}"))
    if item["why"]:
        parts.append(item["why"])
    return " · ".join(parts)


def section_note(section: ContextSectionView, session: str) -> str:
    """Why a section is there: the messages a summary covers, the pinned messages, what
    recall matched (in ``session`` or another one) and with which score, how many memories
    and past turns it holds (each item says why: ``item_line``)."""
    found = items(section)
    if found:
        memories = sum(1 for i in found if i["kind"] == "memory")
        counts = [("memory", "memories", memories), ("turn", "turns", len(found) - memories)]
        return t("mark.and").join(t(f"ctx.items_{one if n == 1 else many}", count=n) for one, many, n in counts if n)
    if section["kind"] == "summary" and section["covers"]:
        first, last = section["covers"]
        return t("ctx.covers", first=first, last=last)
    if section["kind"] == "pinned" and section["messages"]:
        return t("ctx.pinned", numbers=", ".join(map(str, section["messages"])))
    if section["kind"] == "recall" and section["matches"]:
        parts = []
        for m in section["matches"]:
            number = "?" if m["message"] is None else str(m["message"])
            key = "ctx.match" if m["session"] == session else "ctx.match_other"
            parts.append(t(key, number=number, session=m["session"], score=f"{m['score']:.1f}"))
        return t("ctx.matched", matches=", ".join(parts))
    return section["note"]


def entry_sections(view: ContextView, entry: ContextEntryView) -> list[ContextSectionView]:
    """The parts a system message is made of, to show instead of its text: the leading one's
    persona, summary, pins (and recall, unless it goes apart); the recalled messages before the
    new one when they do."""
    if entry["kind"] == "system":
        apart = any(e["kind"] == "recall" for e in view["entries"])
        return [s for s in view["sections"] if not (apart and s["kind"] == "recall")]
    if entry["kind"] == "recall":
        return [s for s in view["sections"] if s["kind"] == "recall"]
    return []


def omitted_line(omitted: OmittedView) -> str:
    if not omitted["total"]:
        return t("ctx.omitted_none")
    return t("ctx.omitted", **{k: f"{v:,}" for k, v in omitted.items()})


def footer(view: ContextView) -> list[str]:
    """What was left out, the summary that is due, the planner's notes."""
    lines = [omitted_line(view["omitted"])]
    if view["needs_summary"]:
        first, last = view["needs_summary"]
        lines.append(t("ctx.needs_summary", first=first, last=last))
    lines.extend(t("ctx.note", note=note) for note in view["notes"])
    return lines


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


def format_context(view: ContextView) -> str:
    """The whole view as plain text (``memchat sessions context NAME``)."""
    gauge_line, window_line = budget_lines(view)
    head = [
        (t("ctx.label.session"), view["session"]),
        (t("ctx.label.memory"), view["strategy"]),
        (t("ctx.label.model"), view["model"] or "-"),
        (t("ctx.label.budget"), gauge_line),
        ("", window_line),
    ]
    width = max(_width(label) for label, _ in head) + 2
    out = [label + " " * (width - _width(label)) + value for label, value in head]
    out.append("")
    if not view["entries"]:
        out.append(t("ctx.empty"))
    for e in view["entries"]:
        parts = [e["role"], kind(e["kind"])]
        if e["message"] is not None:
            parts.append(t("ctx.message", number=e["message"]))
        parts.append(tokens(e["tokens"]))
        out.append(f"[{e['index']}] " + " · ".join(parts))
        sections = entry_sections(view, e)
        if sections:
            for s in sections:
                note = section_note(s, view["session"])
                out.append("    · " + " · ".join(p for p in (kind(s["kind"]), tokens(s["tokens"]), note) if p))
                found = items(s)
                for item in found:  # each memory and past turn, why it was chosen, then its text
                    out.append("      - " + item_line(item, view["session"]))
                    out.append(_indent(item["text"], "        "))
                if not found:
                    out.append(_indent(s["text"], "      "))
        else:
            out.append(_indent(e["content"], "    "))
    out.append("")
    out.extend(footer(view))
    return "\n".join(out) + "\n"


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# -- what a reply used and learned (the REPL after a reply, ``memchat ask`` on stderr) ---------


def used_line(memory_ids: Sequence[int], recalled: int) -> str | None:
    """``· used 2 memories (#3, #7), 1 turn from another chat``; None when it used neither."""
    parts = []
    if memory_ids:
        ids = ", ".join(f"#{i}" for i in memory_ids)
        parts.append(t("mark.memory" if len(memory_ids) == 1 else "mark.memories", count=len(memory_ids), ids=ids))
    if recalled:
        parts.append(t("mark.turn" if recalled == 1 else "mark.turns", count=recalled))
    return t("mark.used", parts=t("mark.and").join(parts)) if parts else None


def learned_lines(memories: Iterable[Memory]) -> list[str]:
    """``✓ remembered: …`` / ``✓ forgot: …`` for what the user asked to remember or forget in a turn."""
    return [t("mark.remembered" if m.active else "mark.forgot", text=m.content) for m in memories]
