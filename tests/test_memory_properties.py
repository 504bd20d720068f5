"""Issue 4's invariants, property-tested over random histories.

Whatever the history (user and assistant turns, tool calls followed by some, all or none of
their results, interrupted and empty replies, orphan user messages, a reply still streaming,
Chinese, English and emoji text of any length, pins, an existing summary, a calibrated
model), persona, window and strategy, the planned context:

- sends the persona first (one system message, at the start, beginning with the persona);
- never sends an assistant message with tool calls without all its results, nor a tool
  result without its call right before it;
- never sends two user messages in a row;
- always sends the newest user message, last;
- never exceeds the budget (``plan.tokens <= plan.budget.limit``);
- keeps the newest turns verbatim, in order and unaltered, and every pin (verbatim or in the
  pinned section);
- leaves the stored history byte-identical;

and ``full`` either sends everything in order or raises ``ContextTooLong``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from memchat import Agent, open_store
from memchat.domain import Chunk, Message, Role, Status, Summary, Usage
from memchat.errors import ContextTooLong, TurnInProgress
from memchat.memory.budget import Budget
from memchat.memory.builder import SEAM, MemoryPlanner, _headings, _is_zh
from memchat.memory.plan import STRATEGIES, ContextEntry, ContextPlan
from memchat.memory.summarize import EXTEND, INSTRUCTIONS, summary_reply_tokens
from memchat.memory.turns import sanitize
from memchat.providers.base import ChatOptions, Provider
from memchat.stores.base import TurnHandle
from memchat.stores.sqlite import SQLiteStore
from memchat.tokens import MESSAGE_OVERHEAD, estimate_tokens

MODEL = "prop-model"
#: examples per property (raise it for a deeper search: PROPERTY_EXAMPLES=5000 pytest …)
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "250"))
ALPHABET = (
    "abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789 .,?!'\"%_-\n葡萄苹果北京上海你我他的是了在有天气很好记得名字😀🎉🚀👍"
)

short_text = st.text(alphabet=ALPHABET, min_size=1, max_size=60)
any_text = st.one_of(short_text, short_text, st.text(alphabet=ALPHABET, min_size=1, max_size=1500))

turn_event = st.tuples(
    st.just("turn"), any_text, any_text, st.sampled_from([Status.COMPLETE, Status.INTERRUPTED]), st.booleans()
)
orphan_event = st.tuples(st.just("orphan"), any_text)
tools_event = st.tuples(
    st.just("tools"),
    short_text,
    st.integers(1, 3),
    st.sampled_from(["all", "some", "none", "reversed", "extra"]),
    any_text,
    st.one_of(st.none(), short_text),  # the assistant's text next to its calls
    st.one_of(st.none(), any_text),  # the answer after the results
)
stray_event = st.tuples(st.just("stray_tool"), short_text)
assistant_event = st.tuples(st.just("assistant"), any_text)
events_strategy = st.lists(
    st.one_of(turn_event, turn_event, turn_event, orphan_event, tools_event, stray_event, assistant_event),
    max_size=40,
)


def build_history(events: Sequence[tuple[Any, ...]]) -> list[Message]:
    out: list[Message] = []
    for k, ev in enumerate(events):
        kind = ev[0]
        if kind == "turn":
            _, user, reply, status, empty = ev
            out.append(Message(Role.USER, user))
            out.append(Message(Role.ASSISTANT, "" if empty and status is Status.INTERRUPTED else reply, status=status))
        elif kind == "orphan":
            out.append(Message(Role.USER, ev[1]))
        elif kind == "tools":
            _, user, n, mode, result, says, answer = ev
            ids = [f"call_{k}_{j}" for j in range(n)]
            calls = tuple(
                {"id": i, "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}} for i in ids
            )
            out.append(Message(Role.USER, user))
            out.append(Message(Role.ASSISTANT, says or "", tool_calls=calls))
            chosen = {
                "all": ids,
                "some": ids[:-1],
                "none": [],
                "reversed": ids[::-1],
                "extra": [*ids, f"call_{k}_x"],
            }[mode]
            out.extend(Message(Role.TOOL, f"{result} ({i})", tool_call_id=i) for i in chosen)
            if answer is not None:
                out.append(Message(Role.ASSISTANT, answer))
        elif kind == "stray_tool":
            out.append(Message(Role.TOOL, ev[1], tool_call_id=f"call_{k}_stray"))
        else:
            out.append(Message(Role.ASSISTANT, ev[1]))
    return out


def snapshot(store: SQLiteStore) -> str:
    """Every byte the store holds (tables, FTS index, counters)."""
    return "\n".join(store._dialect.connection.iterdump())


def cost(n: int, ratio: float) -> int:
    return math.ceil(n * ratio)


# -- the shape checks ------------------------------------------------------------------------


def check_shape(entries: Sequence[ContextEntry], persona: str, new_text: str | None) -> None:
    wire = [e.to_wire() for e in entries]
    roles = [w["role"] for w in wire]
    # one system message, first (the default layout: recall goes last in it)
    assert "system" not in roles[1:], "a system message after the first"
    if persona:
        assert roles[0] == "system" and wire[0]["content"].startswith(persona), "the persona is not first"
    if new_text is not None:
        assert wire[-1] == {"role": "user", "content": new_text}, "the new user message is not last"
        assert entries[-1].kind == "new"
        assert sum(1 for e in entries if e.kind == "new") == 1
    for a, b in zip(roles, roles[1:], strict=False):
        assert not (a == b == "user"), "two user messages in a row"
    i = 0
    while i < len(wire):
        w = wire[i]
        if w["role"] == "assistant" and w.get("tool_calls"):
            ids = {c["id"] for c in w["tool_calls"]}
            j, got = i + 1, set()
            while j < len(wire) and wire[j]["role"] == "tool":
                got.add(wire[j]["tool_call_id"])
                j += 1
            assert ids == got, f"tool calls {ids} sent with results {got}"
            i = j
            continue
        assert w["role"] != "tool", "a tool result without its call right before it"
        i += 1


def check_wire(messages: Sequence[dict[str, Any]], persona: str, new_text: str) -> None:
    """The same checks on what a provider received."""
    entries = [
        ContextEntry(
            Role(m["role"]),
            m["content"],
            0,
            kind="new"
            if k == len(messages) - 1
            else "recall"
            if k == len(messages) - 2 and k and m["role"] == "system"
            else "verbatim",
            extra={k2: v for k2, v in m.items() if k2 in ("tool_calls", "tool_call_id")} or None,
        )
        for k, m in enumerate(messages)
    ]
    check_shape(entries, persona, new_text)


def verbatim_seqs(plan: ContextPlan) -> list[int]:
    return [e.seq for e in plan.entries if e.kind == "verbatim" and e.seq is not None]


# -- planning directly ---------------------------------------------------------------------------


@dataclass
class World:
    store: SQLiteStore
    persona: str
    sid: int
    stored: list[Message]
    pins: list[Message]
    summary: Summary | None
    ratio: float


def make_world(
    events: Sequence[tuple[Any, ...]],
    persona: str,
    pin_picks: Sequence[int],
    summary: tuple[float, str] | None,
    ratio: float | None,
    in_flight: str | None,
    other: Sequence[tuple[Any, ...]],
) -> World:
    store = open_store(":memory:")
    info = store.create_session("s", persona=persona)
    history = build_history(events)
    if history:
        store.append_messages("s", history)
    if in_flight is not None:  # another writer's turn: its user message stored, its reply streaming
        store.begin_turn("s", Message(Role.USER, in_flight), model=MODEL)
    if other:
        store.create_session("other")
        store.append_messages("other", build_history(other))
    stored = store.messages("s")
    pins: list[Message] = []
    if stored:
        for p in sorted({stored[k % len(stored)].id or 0 for k in pin_picks}):
            store.pin("s", p)
        pins = store.pins("s")
    made = None
    if summary is not None and stored:
        last = stored[min(len(stored) - 1, int(summary[0] * len(stored)))].seq or 1
        made = store.add_summary("s", Summary(1, last, summary[1], estimate_tokens(summary[1]), model=MODEL))
    if ratio is not None:
        store.record_calibration(MODEL, ratio)
    return World(store, persona, info.id, stored, pins, made, store.calibration(MODEL) or 1.0)


def fixed_cost(world: World, new_text: str | None) -> int:
    """What a plan must send whatever the strategy: the persona, the new message, the pins."""
    r = world.ratio
    total = MESSAGE_OVERHEAD  # the system message
    if world.persona:
        total += cost(estimate_tokens(world.persona), r) + SEAM
    if new_text is not None:
        total += cost(estimate_tokens(new_text), r) + MESSAGE_OVERHEAD
    if world.pins:
        heading = _headings(_is_zh(world.persona + (new_text or "")))["pinned"]
        text = heading + "\n" + "\n".join(f"[#{p.seq} {p.role.value}] {p.content}" for p in world.pins)
        total += cost(estimate_tokens(text), r) + SEAM
    return total


def full_cost(world: World, new_text: str | None) -> tuple[list[Message], int]:
    r = world.ratio
    messages = sanitize([*world.stored, *([Message(Role.USER, new_text)] if new_text is not None else [])])
    total = sum(cost(m.tokens if m.tokens is not None else estimate_tokens(m.content), r) for m in messages)
    total += MESSAGE_OVERHEAD * len(messages)
    if world.persona:
        total += cost(estimate_tokens(world.persona), r) + MESSAGE_OVERHEAD
    return messages, total


world_args = {
    "events": events_strategy,
    "persona": st.one_of(st.just(""), short_text, st.text(alphabet=ALPHABET, min_size=1, max_size=300)),
    "pin_picks": st.lists(st.integers(0, 10_000), max_size=3),
    "summary": st.one_of(st.none(), st.tuples(st.floats(0, 1), any_text)),
    "ratio": st.one_of(st.none(), st.floats(0.5, 3.0)),
    "in_flight": st.one_of(st.none(), short_text),
    "other": st.one_of(st.just([]), events_strategy),
}


@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    **world_args,
    new_text=st.one_of(st.none(), short_text, any_text),
    strategy=st.sampled_from(STRATEGIES),
    window=st.integers(256, 8192),
    summarize=st.booleans(),
    recall_all=st.booleans(),
    retry=st.booleans(),
)
def test_every_plan_keeps_the_invariants(
    events: list[tuple[Any, ...]],
    persona: str,
    pin_picks: list[int],
    summary: tuple[float, str] | None,
    ratio: float | None,
    in_flight: str | None,
    other: list[tuple[Any, ...]],
    new_text: str | None,
    strategy: str,
    window: int,
    summarize: bool,
    recall_all: bool,
    retry: bool,
) -> None:
    world = make_world(events, persona, pin_picks, summary, ratio, in_flight, other)
    store = world.store
    store.settle_search()  # the index changes queued by the writes (a search applies them first)
    before = snapshot(store)
    # a retry plans without the turn it replaces (the last user message and what follows it)
    users = [k for k, m in enumerate(world.stored) if m.role is Role.USER]
    exclude = {m.id or 0 for m in world.stored[users[-1] :]} if retry and users else set()
    everything = world.stored
    world.stored = [m for m in world.stored if m.id not in exclude]
    world.pins = [p for p in world.pins if p.id not in exclude]
    planner = MemoryPlanner(store, lambda text: (estimate_tokens(text), "estimate"))
    info = store.get_session("s")
    new = Message(Role.USER, new_text) if new_text is not None else None
    if new is not None:
        new = Message(Role.USER, new.content, tokens=estimate_tokens(new.content), token_method="estimate")
    budget = Budget.for_window(window)
    try:
        plan = planner.plan(
            info,
            new,
            strategy=strategy,
            budget=budget,
            model=MODEL,
            summarize=summarize,
            recall_all=recall_all,
            exclude=exclude,
        )
    except ContextTooLong:
        assert snapshot(store) == before
        if strategy == "full":
            assert full_cost(world, new_text)[1] > budget.limit, "full refused a conversation that fits"
        else:
            assert fixed_cost(world, new_text) > budget.limit, "refused although persona, message and pins fit"
        return
    assert snapshot(store) == before, "planning changed the store"
    assert plan.tokens <= plan.budget.limit == budget.limit
    check_shape(plan.entries, persona, new_text)

    by_seq = {m.seq: m for m in world.stored}
    excluded_seqs = {m.seq for m in everything if m.id in exclude}
    seqs = verbatim_seqs(plan)
    assert not excluded_seqs & set(seqs), "a replaced message was sent"
    for sec in plan.sections:
        if sec.kind == "pinned":
            pinned_seqs = {int(x) for x in re.findall(r"^\[#(\d+) ", sec.text, re.MULTILINE)}
            assert not pinned_seqs & excluded_seqs, "a replaced message was sent as a pin"
    for e in plan.entries:
        if e.kind == "verbatim":
            m = by_seq[e.seq]
            assert (e.role, e.content) == (m.role, m.content), "a verbatim message differs from the stored one"

    if strategy == "full":
        expected, _ = full_cost(world, new_text)
        sent = [(e.role, e.content) for e in plan.entries if e.kind not in ("persona", "system", "recall")]
        assert sent == [(m.role, m.content) for m in expected], "full did not send everything in order"
        return

    # the verbatim part is the newest run of the (sendable) history
    order = [m.seq for m in sanitize(world.stored)]
    if seqs:
        first = order.index(seqs[0])
        assert order[first : first + len(seqs)] == seqs, "the verbatim turns are not contiguous"
        tail = order[first + len(seqs) :]
        # only an orphan user message, replaced by the new one, may follow them
        assert tail == [] or (new is not None and len(tail) == 1 and by_seq[tail[0]].role is Role.USER)
    system = plan.entries[0].content if plan.entries and plan.entries[0].role is Role.SYSTEM else ""
    # every pin stays: verbatim, or in the pinned section
    for p in world.pins:
        assert p.seq in seqs or f"[#{p.seq} {p.role.value}] {p.content}" in system, f"pin #{p.seq} was lost"
    kinds = [s.kind for s in plan.sections]
    if "summary" in kinds:
        assert strategy in ("summary", "auto") and world.summary is not None
        assert world.summary.content in system
        assert all(s > world.summary.last_seq for s in seqs), "a summarized message is also sent verbatim"
    if "recall" in kinds:
        assert (strategy in ("recall", "auto") or recall_all) and new is not None
        recall = next(s for s in plan.sections if s.kind == "recall")
        for item in recall.items:
            assert item.text in recall.text and item.kind == "turn"
            if item.session is None:  # one of this session's messages
                assert strategy in ("recall", "auto"), "this session's turns recalled by a strategy without recall"
                assert item.seq not in seqs, "a recalled message is also sent verbatim"
                assert item.seq not in excluded_seqs, "a replaced message was recalled"
            else:
                assert recall_all and item.session != "s", "another session recalled without recall_all"
    if plan.needs_summary is not None:  # due: written now (summarize) or by upkeep after the turn
        assert strategy in ("summary", "auto")
        first_seq, last_seq = plan.needs_summary
        assert first_seq <= last_seq
        assert not seqs or last_seq < seqs[0], "the summary would cover a message sent verbatim"


# -- whole turns through the agent -----------------------------------------------------------------


class ChattyProvider(Provider):
    """Replies with the next scripted text; answers summarizer calls with a short summary;
    records every call. Its usage figures follow the estimate (like a calibrated model)."""

    name = "chatty"
    model = MODEL

    def __init__(self, replies: Sequence[str], summaries: Sequence[str]) -> None:
        self.replies = list(replies)
        self.summaries = list(summaries)
        self.calls: list[tuple[list[dict[str, Any]], ChatOptions | None]] = []

    def stream(self, messages: Any, *, model: str | None = None, options: ChatOptions | None = None) -> Any:
        wire = [dict(m) for m in messages]
        self.calls.append((wire, options))
        if wire[0]["content"] in INSTRUCTIONS.values():
            n = len(self.calls)
            yield Chunk(text=self.summaries[n % len(self.summaries)])
            return
        text = self.replies[len(self.calls) % len(self.replies)]
        yield Chunk(text=text)
        prompt = sum(estimate_tokens(str(m["content"])) + MESSAGE_OVERHEAD for m in wire)
        yield Chunk(finish_reason="stop", usage=Usage(prompt, estimate_tokens(text)))


def wire_tokens(wire: Sequence[dict[str, Any]]) -> int:
    return sum(estimate_tokens(str(m["content"])) + MESSAGE_OVERHEAD for m in wire)


@settings(
    max_examples=max(30, EXAMPLES // 8),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    strategy=st.sampled_from([s for s in STRATEGIES if s != "full"]),
    window=st.integers(256, 4096),
    persona=st.one_of(st.just(""), short_text),
    messages=st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=200).filter(str.strip), min_size=4, max_size=14),
    replies=st.lists(any_text, min_size=1, max_size=5),
    summaries=st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=120).filter(str.strip), min_size=1, max_size=3),
)
def test_turns_through_the_agent_keep_the_invariants(
    strategy: str,
    window: int,
    persona: str,
    messages: list[str],
    replies: list[str],
    summaries: list[str],
) -> None:
    store = open_store(":memory:")
    store.create_session("s", persona=persona)
    provider = ChattyProvider(replies, summaries)
    agent = Agent(store=store, provider=provider, memory=strategy, context_window=window, date_line=False)
    limit = agent.budget_for(MODEL).limit
    for text in messages:
        before = [m for m in store.messages("s")]
        summaries_before = store.summaries("s")
        calls = len(provider.calls)
        try:
            turn = agent.stream("s", text)
        except ContextTooLong:  # only when the persona and this message alone do not fit
            assert estimate_tokens(persona) + estimate_tokens(text) + 2 * MESSAGE_OVERHEAD > limit
            assert store.messages("s") == before
            continue
        for _ in turn:
            pass
        agent.wait_for_summaries()  # memory upkeep runs after the reply, in the background
        assert turn.reply is not None
        assert turn.plan.tokens <= limit
        new_calls = provider.calls[calls:]
        (wire, _), *summarizer_calls = new_calls  # the turn's call first: summaries come after it
        check_wire(wire, persona, text)
        # what was sent is what the plan counted (the estimate is exact here)
        assert wire_tokens(wire) <= limit + 2 * len(turn.plan.sections)
        for sw, options in summarizer_calls:
            assert sw[0]["content"] in (*INSTRUCTIONS.values(), *EXTEND.values())
            assert options is not None and options.max_tokens == summary_reply_tokens(window)
            assert wire_tokens(sw) + options.max_tokens <= window, "the summarizer's call overflows the window"
            if window >= 512:
                assert wire_tokens(sw) <= window // 2, "the summarizer's prompt is over half the window"
        after = store.messages("s")
        assert after[: len(before)] == before, "a turn changed older messages"
        assert [(m.role, m.content) for m in after[len(before) :]] == [
            (Role.USER, text),
            (Role.ASSISTANT, turn.reply.text),
        ]
        # summaries are only ever added, each covering a range that ends before the verbatim turns
        now = store.summaries("s")
        assert now[: len(summaries_before)] == summaries_before
        seqs = verbatim_seqs(turn.plan)
        if any(s.kind == "summary" for s in turn.plan.sections) and seqs:
            assert summaries_before[-1].last_seq < seqs[0]


# -- the tail cache against other writers ----------------------------------------------------------


class OtherWriters(RuleBasedStateMachine):
    """Two stores on one database file, as two processes: ``b`` appends, undoes, truncates,
    edits, streams and finishes replies late, pins and summarizes; after every step the
    planner on ``a`` (whose tail cache follows the change counters) holds exactly the
    session's newest messages and plans exactly what a fresh planner plans."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="memchat-tail-")
        path = Path(self.dir) / "shared.db"
        self.a = open_store(path)
        self.b = open_store(path)
        self.sid = self.a.create_session("s", persona="You are terse.").id
        self.planner = MemoryPlanner(self.a, lambda text: (estimate_tokens(text), "estimate"))
        self.open: list[TurnHandle] = []

    def teardown(self) -> None:
        self.a.close()
        self.b.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _settled(self) -> list[Message]:
        return self.b.messages("s")

    @rule(writer=st.booleans(), user=short_text, reply=any_text)
    def append_turn(self, writer: bool, user: str, reply: str) -> None:
        (self.a if writer else self.b).append_messages("s", [Message(Role.USER, user), Message(Role.ASSISTANT, reply)])

    @rule(events=st.lists(st.one_of(turn_event, tools_event, orphan_event), min_size=1, max_size=6))
    def append_events(self, events: list[tuple[Any, ...]]) -> None:
        self.b.append_messages("s", build_history(events))

    @rule(n=st.integers(100, 300))
    def append_many(self, n: int) -> None:
        self.b.append_messages(
            "s", [Message(Role.USER if k % 2 == 0 else Role.ASSISTANT, f"m{k} ok") for k in range(n)]
        )

    @rule(user=short_text)
    def begin_reply(self, user: str) -> None:
        if self.open:  # turns of one session are serialized: a second one is refused, nothing written
            before = self.b.messages("s", include_streaming=True)
            try:
                self.b.begin_turn("s", Message(Role.USER, user), model=MODEL)
            except TurnInProgress:
                pass
            else:
                raise AssertionError("a second reply began while one streams")
            assert self.b.messages("s", include_streaming=True) == before
            return
        self.open.append(self.b.begin_turn("s", Message(Role.USER, user), model=MODEL))

    @precondition(lambda self: bool(self.open))
    @rule(pick=st.integers(0, 5), text=short_text, finish=st.booleans())
    def end_reply(self, pick: int, text: str, finish: bool) -> None:
        turn = self.open.pop(pick % len(self.open))
        if finish:
            self.b.finish_turn(turn, text)
        else:
            self.b.abort_turn(turn)

    @rule()
    def undo(self) -> None:
        self.b.remove_last_turn("s")

    @rule(keep=st.integers(0, 400))
    def truncate(self, keep: int) -> None:
        self.b.truncate("s", keep)

    @rule(pick=st.integers(0, 10_000), text=short_text)
    def edit_in_place(self, pick: int, text: str) -> None:
        settled = self._settled()
        if settled:
            with self.b._write() as db:
                db.execute("UPDATE messages SET content = ? WHERE id = ?", (text, settled[pick % len(settled)].id))

    @rule(pick=st.integers(0, 10_000), on=st.booleans())
    def pin(self, pick: int, on: bool) -> None:
        settled = self._settled()
        if settled:
            mid = settled[pick % len(settled)].id or 0
            self.b.pin("s", mid) if on else self.b.unpin("s", mid)

    @rule(share=st.floats(0, 1), text=short_text, forget=st.booleans())
    def summary(self, share: float, text: str, forget: bool) -> None:
        settled = self._settled()
        if forget:
            self.b.forget_summaries("s")
        elif settled:
            last = settled[min(len(settled) - 1, int(share * len(settled)))].seq or 1
            self.b.add_summary("s", Summary(settled[0].seq or 1, last, text, estimate_tokens(text)))

    @invariant()
    def the_cache_is_exact(self) -> None:
        settled = self._settled()
        for window in (512, 4096):
            budget = Budget.for_window(window)
            held, complete, _ = self.planner.tails.get(self.sid, 2 * budget.limit)
            assert held == settled[len(settled) - len(held) :], "the cached tail differs from the store"
            assert not complete or len(held) == len(settled)
            info = self.a.get_session("s")
            new = Message(Role.USER, "what did we say about ok?", tokens=8, token_method="estimate")
            fresh = MemoryPlanner(self.b, lambda text: (estimate_tokens(text), "estimate"))
            for strategy in ("full", "auto", "summary"):
                plans = []
                for planner in (self.planner, fresh):
                    try:
                        plan = planner.plan(info, new, strategy=strategy, budget=budget, model=MODEL)
                        # what it sends, and what it counts (the cached planner reuses its sums)
                        plans.append((plan.wire(), [(e.kind, e.tokens) for e in plan.entries], plan.raw_estimate))
                        assert plan.raw_estimate == round(plan.tokens / planner.ratio(MODEL))
                    except ContextTooLong:
                        plans.append(None)  # type: ignore[arg-type]
                assert plans[0] == plans[1], f"{strategy}: the cached planner sends something else"


TestOtherWriters = OtherWriters.TestCase
TestOtherWriters.settings = settings(
    max_examples=max(10, EXAMPLES // 25), stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)
)


# -- sanitize, kept between turns ------------------------------------------------------------------

_KINDS = st.sampled_from(["user", "assistant", "empty", "calls", "result", "orphan", "streaming"])


def _message(kind: str, k: int) -> Message:
    if kind == "user":
        return Message(Role.USER, f"u{k}")
    if kind == "assistant":
        return Message(Role.ASSISTANT, f"a{k}")
    if kind == "empty":
        return Message(Role.ASSISTANT, "")
    if kind == "calls":
        return Message(Role.ASSISTANT, "", tool_calls=({"id": f"c{k}", "type": "function"},))
    if kind == "result":
        return Message(Role.TOOL, "r", tool_call_id=f"c{k - 1}")
    if kind == "orphan":
        return Message(Role.TOOL, "r", tool_call_id="nobody")
    return Message(Role.ASSISTANT, "partial", status=Status.STREAMING)


@settings(max_examples=EXAMPLES, deadline=None)
@given(kinds=st.lists(_KINDS, max_size=60), steps=st.lists(st.integers(1, 8), min_size=1, max_size=20))
def test_sanitize_kept_between_turns_equals_sanitize_from_scratch(kinds: list[str], steps: list[int]) -> None:
    """The planner keeps a session's sanitized messages and re-sanitizes only what follows the
    last clean cut: after every growth it must give exactly what sanitizing everything gives."""
    from memchat.memory.turns import SanitizedTail, sanitize

    messages = [_message(kind, k) for k, kind in enumerate(kinds)]
    kept = SanitizedTail()
    end = 0
    for step in [*steps, len(messages)]:
        end = min(len(messages), end + step)
        shown = messages[:end]
        assert kept.get(shown) == sanitize(shown)
        assert all(a is b for a, b in zip(kept.get(shown), sanitize(shown), strict=True))
