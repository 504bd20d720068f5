"""Memory strategies on long sessions: what each call sends, what is written, what is kept.

The provider here (``Exact``) counts tokens with the estimate but calls the count exact, and
reports no completion tokens, so no calibration moves and every count is predictable.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from memchat import Agent, open_store
from memchat.domain import Chunk, Message, Role, Usage
from memchat.errors import ContextTooLong, ServerError
from memchat.memory.budget import Budget
from memchat.memory.plan import ContextPlan
from memchat.memory.retrieve import MAX_ITEMS
from memchat.memory.summarize import EXTEND, INSTRUCTIONS, summary_reply_tokens
from memchat.providers.base import ChatOptions, WireMessage
from memchat.stores.sqlite import SQLiteStore
from memchat.testing import Script, ScriptedProvider
from memchat.tokens import MESSAGE_OVERHEAD, RATIO_BOUNDS, estimate_tokens

PERSONA = "You are a terse assistant."
#: no message numbers: a summary extended keeps its text, so the prompt's beginning stays what the
#: embedded model's cache holds (which messages it covers is /context's note)
SUMMARY_HEAD = "[Summary of the earlier conversation]"
RECALL_HEAD = "[Earlier messages that may be relevant (retrieved for this message)]"


class Exact(ScriptedProvider):
    """A ScriptedProvider whose counts are the estimate, marked exact (so never calibrated),
    that answers the summarizer's calls from ``summaries`` (else ``summary``) and records the
    options of every call."""

    def __init__(self, *args: Any, summary: str = "A summary of the earlier turns.", **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.summary = summary
        self.summaries: deque[Script] = deque()
        self.options: list[ChatOptions | None] = []

    def count_tokens(self, text: str) -> tuple[int, str]:
        return estimate_tokens(text), "exact:test"

    def stream(
        self, messages: Sequence[WireMessage], *, model: str | None = None, options: ChatOptions | None = None
    ) -> Iterator[Chunk]:
        self.options.append(options)
        if is_summarizer(messages):
            self.replies.appendleft(self.summaries.popleft() if self.summaries else self.summary)
        for chunk in super().stream(messages, model=model, options=options):
            if chunk.usage is not None:  # no completion count: the reply is counted like the rest
                chunk = Chunk(finish_reason=chunk.finish_reason, usage=Usage(chunk.usage.prompt_tokens, 0))
            yield chunk

    def main_calls(self) -> list[list[WireMessage]]:
        return [c for c in self.calls if not is_summarizer(c)]

    def summarizer_calls(self) -> list[list[WireMessage]]:
        return [c for c in self.calls if is_summarizer(c)]


def is_summarizer(call: Sequence[WireMessage]) -> bool:
    prompts = (*INSTRUCTIONS.values(), *EXTEND.values())
    return bool(call) and call[0]["role"] == "system" and call[0]["content"] in prompts


def tokens_of(call: Sequence[WireMessage]) -> int:
    return sum(estimate_tokens(str(m["content"])) + MESSAGE_OVERHEAD for m in call)


def setup(
    strategy: str,
    window: int,
    *,
    default: str = "Noted.",
    summary: str = "A summary of the earlier turns.",
    persona: str = PERSONA,
    **kw: Any,
) -> tuple[Agent, Exact, SQLiteStore]:
    store = open_store(":memory:")
    store.create_session("s", persona=persona)
    provider = Exact(default=default, summary=summary)
    return (
        Agent(store=store, provider=provider, memory=strategy, context_window=window, **kw, date_line=False),
        provider,
        store,
    )


def filler(k: int) -> str:
    return f"Turn {k}: let us talk about the weather again, it is mild and grey today, nothing special."


def chat(agent: Agent, texts: Sequence[str]) -> list[ContextPlan]:
    plans = []
    for text in texts:
        turn = agent.stream("s", text)
        for _ in turn:
            pass
        plans.append(turn.plan)
        agent.wait_for_summaries()  # memory upkeep, after the reply: done before the next message
    return plans


def verbatim_seqs(plan: ContextPlan) -> list[int]:
    return [e.seq for e in plan.entries if e.kind == "verbatim" and e.seq is not None]


#: how recall's parts begin (memories related to the message, then past turns; en and zh)
RECALL_STARTS = (
    "[Long-term memories related",
    "[Earlier messages that may be relevant",
    "【与这条消息相关",
    "【可能相关",
)


def _system_parts(call: Sequence[WireMessage]) -> tuple[str, str]:
    """The one system message, split into what comes before recall and recall (the last part)."""
    text = str(call[0]["content"]) if call and call[0]["role"] == "system" else ""
    parts = text.split("\n\n")
    cut = next((i for i, p in enumerate(parts) if p.startswith(RECALL_STARTS)), len(parts))
    return "\n\n".join(parts[:cut]), "\n\n".join(parts[cut:])


def system_text(call: Sequence[WireMessage]) -> str:
    """The system message up to recall: the persona, date, memories, summary and pins."""
    return _system_parts(call)[0]


def recall_text(call: Sequence[WireMessage]) -> str:
    """The recalled messages: the last part of the one system message (every template keeps it)."""
    assert [m["role"] for m in call].count("system") <= 1  # never a second system message
    return _system_parts(call)[1]


def section(plan: ContextPlan, kind: str) -> str | None:
    return next((s.text for s in plan.sections if s.kind == kind), None)


def recalled_line(recall: str, seq: int | None, content: str, session: str = "") -> bool:
    """A recalled message's line: ``[DATE[ SESSION] #SEQ ROLE] TEXT`` (here: a user message)."""
    where = f" {session}" if session else ""
    pattern = re.compile(r"\[\d{4}-\d{2}-\d{2}" + re.escape(f"{where} #{seq} user] {content}") + "$")
    return any(pattern.match(line) for line in recall.splitlines())


# -- window ------------------------------------------------------------------------------------------


def test_window_drops_the_oldest_whole_turns() -> None:
    agent, provider, store = setup("window", 1024)
    limit = agent.budget_for("scripted-model").limit
    plans = chat(agent, [filler(k) for k in range(40)])
    last, call = plans[-1], provider.calls[-1]
    assert tokens_of(call) <= last.tokens <= limit
    assert call[0] == {"role": "system", "content": PERSONA}
    assert call[1]["role"] == "user", "the window starts with a whole turn"
    stored = store.messages("s")
    sent = call[1:-1]
    assert sent == [m.to_wire() for m in stored[len(stored) - len(sent) - 2 : -2]], "not the newest turns, in order"
    assert len(sent) < len(stored) - 1 and "Turn 0:" not in str(call)
    assert any("not sent verbatim" in n for n in last.notes)
    assert provider.summarizer_calls() == []  # the window never calls the model for a summary


def test_window_keeps_pinned_messages_in_the_system_message_once_they_fall_out() -> None:
    agent, provider, store = setup("window", 1024)
    chat(agent, ["My locker code is 4417."])
    fact = store.messages("s")[0]
    store.pin("s", fact.id or 0)
    plans = chat(agent, [filler(k) for k in range(3)])
    assert plans[-1].entries[1].content == fact.content and section(plans[-1], "pinned") is None  # verbatim, once
    plans = chat(agent, [filler(k) for k in range(3, 40)])
    call = provider.calls[-1]
    pinned = f"[Pinned messages]\n[#{fact.seq} user] {fact.content}"
    assert system_text(call) == f"{PERSONA}\n\n{pinned}"
    assert [m for m in call[1:] if m["content"] == fact.content] == []  # not twice
    assert plans[-1].tokens <= agent.budget_for("scripted-model").limit
    # unpinned, it falls out like any other message
    store.unpin("s", fact.id or 0)
    chat(agent, ["and now?"])
    assert "4417" not in str(provider.calls[-1])


def test_window_start_stays_put_while_it_fits() -> None:
    """A stable prefix (KV-cache reuse on a local model): each call starts with exactly what the
    previous one sent plus its reply, until the window has to move — then it moves by several
    turns at once."""
    agent, provider, _ = setup("window", 1024)
    chat(agent, [filler(k) for k in range(60)])
    calls = provider.main_calls()
    stable = moved = 0
    for before, after in zip(calls, calls[1:], strict=False):
        if after[: len(before) + 1] == [*before, {"role": "assistant", "content": "Noted."}]:
            stable += 1
        else:
            moved += 1
            assert after[0] == before[0]  # the persona stays first
    assert moved >= 2, "the window never moved: make the session longer"
    assert stable >= 4 * moved, f"the start moved {moved} times in {len(calls)} turns"


def test_full_fits_or_raises_with_a_hint_naming_another_strategy() -> None:
    agent, provider, store = setup("full", 512)
    with pytest.raises(ContextTooLong) as info:
        chat(agent, [filler(k) for k in range(40)])
    assert re.search(r"/memory auto|--memory (window|summary|recall)", str(info.value))
    sent = len(provider.calls)
    stored = store.messages("s")
    assert 0 < sent < 40 and len(stored) == 2 * sent  # every turn that fitted was kept; the failed one left nothing
    assert provider.calls[-1][1:-1] == [m.to_wire() for m in stored[:-2]]  # everything, in order
    agent.memory = "window"  # switching strategy lets the conversation go on
    chat(agent, ["still there?"])
    assert len(store.messages("s")) == 2 * sent + 2


# -- summary -----------------------------------------------------------------------------------------


def test_summary_is_written_after_the_reply_and_covers_the_evicted_turns() -> None:
    window = 1024
    agent, provider, store = setup("summary", window, summary="Ada lives in Lisbon; then small talk.")
    limit = agent.budget_for("scripted-model").limit
    chat(agent, ["My name is Ada and I live in Lisbon."])
    due = None
    for k in range(1, 60):
        before = store.messages("s")
        calls = len(provider.calls)
        due = chat(agent, [filler(k)])[-1]
        if store.summaries("s"):
            break
    else:
        pytest.fail("no summary was ever written")
    # the turn after which it was written was answered first, without waiting: its own call went
    # out before the summarizer's (memory upkeep plans the next call ahead: when that one would
    # overflow the window, the window moves now and what falls out is folded, in the background)
    assert due is not None and due.tokens <= limit
    assert not is_summarizer(provider.calls[calls]) and is_summarizer(provider.calls[-1])
    assert system_text(provider.calls[calls]) == PERSONA
    (summary,) = store.summaries("s")
    assert set(summary.content.split("\n")) == {"Ada lives in Lisbon; then small talk."}  # a part per chunk
    assert summary.model == "scripted-model"
    # the next call has it in the system message, under its heading, and it covers exactly what
    # is no longer sent: from the first message to just before the verbatim turns
    plan = chat(agent, [filler(100)])[-1]
    call = provider.main_calls()[-1]
    head = SUMMARY_HEAD
    assert system_text(call) == f"{PERSONA}\n\n{head}\n{summary.content}"
    seqs = verbatim_seqs(plan)
    assert summary.first_seq == 1 and seqs[0] == summary.last_seq + 1
    assert plan.tokens <= limit
    # the summarizer's requests: the instructions, then the evicted messages in chunks, each
    # within half the window and starting from the summary so far
    requests = provider.summarizer_calls()
    assert requests[0][1]["content"].startswith("Summary so far:\n(none)\n\nNew messages:\nuser: My name is Ada")
    for k, request in enumerate(requests):
        assert tokens_of(request) <= window // 2
        assert k == 0 or str(request[1]["content"]).startswith("Summary so far:\n")
    options = [o for c, o in zip(provider.calls, provider.options, strict=True) if is_summarizer(c)]
    assert all(o is not None and o.max_tokens == summary_reply_tokens(window) for o in options)
    # the originals are never deleted or rewritten
    assert store.messages("s")[: len(before)] == before
    # reused on the next turns: no summarizer call while the verbatim part fits
    calls = len(provider.summarizer_calls())
    plans = chat(agent, [filler(101)])
    assert len(provider.summarizer_calls()) == calls
    assert all(section(p, "summary") for p in plans)
    # when the window moves again, the summary is extended, not rewritten: what the new
    # messages add is appended to it (its text, the beginning of every later prompt, stays)
    provider.summary = "UPDATED: Ada moved to Porto."
    for k in range(102, 160):
        chat(agent, [filler(k)])
        if len(store.summaries("s")) > 1:
            break
    latest = store.latest_summary("s")
    assert latest is not None and latest.content.startswith(f"{summary.content}\n")
    assert set(latest.content.removeprefix(summary.content + "\n").split("\n")) == {"UPDATED: Ada moved to Porto."}
    assert latest.first_seq == 1 and latest.last_seq > summary.last_seq
    update = provider.summarizer_calls()[calls]
    assert update[0]["content"] == EXTEND["en"]
    assert str(update[1]["content"]).startswith(f"Summary so far:\n{summary.content}\n\nNew messages:\n")
    assert str(update[1]["content"]).endswith("Write the summary of the new messages only.")
    assert f"user: {filler(1)}" not in str(update[1]["content"])  # only what the old summary did not cover
    assert len(store.summaries("s")) == 2  # the old one is kept, as a record
    # and the next call's system message starts with the one before's whole: only what is
    # appended is new to the model's cache
    chat(agent, [filler(200)])
    before_text = f"{PERSONA}\n\n{head}\n{summary.content}"
    assert system_text(provider.main_calls()[-1]).startswith(before_text + "\n")


class Warmed(Exact):
    """An ``Exact`` with a cache to warm, as the embedded model has: ``prefill`` records the
    context's beginning it is given and says whether it got through (``warms``)."""

    def __init__(self, *args: Any, warms: bool, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.warms = warms
        self.prefilled: list[list[WireMessage]] = []
        self.kept: list[bool] = []

    def prefill(self, messages: Sequence[WireMessage], *, keep: bool = False) -> bool:
        self.prefilled.append(list(messages))
        self.kept.append(keep)
        return self.warms


@pytest.mark.parametrize("warms", [True, False])
def test_a_new_summary_is_used_once_the_models_cache_holds_it(warms: bool) -> None:
    """Issue 16: on the embedded model the first turn to use a new summary evaluated it and all
    after it again (16 s at 7,000 tokens). Turns now go on with the summary the model's cache
    holds until warming between turns got the new one in; when the user types faster than that,
    the turn after ``ADOPT_AFTER`` of them uses it anyway. The budget holds meanwhile."""
    from memchat.agent import ADOPT_AFTER

    store = open_store(":memory:")
    store.create_session("s", persona=PERSONA)
    provider = Warmed(default="Noted.", summary="Ada lives in Lisbon.", warms=warms)
    agent = Agent(store=store, provider=provider, memory="summary", context_window=1024, date_line=False)
    limit = agent.budget_for("scripted-model").limit

    def turn(k: int) -> ContextPlan:
        plan = chat(agent, [filler(k)])[-1]
        agent.warming.wait()  # the cache warmed between turns (or not: ``warms``)
        return plan

    for k in range(60):
        turn(k)
        if store.summaries("s"):
            break
    else:
        pytest.fail("no summary was ever written")
    head = SUMMARY_HEAD
    if warms:  # warmed before the next message: that turn uses it
        assert any(head in str(m["content"]) for m in provider.prefilled[-1])
        plan = turn(100)
        assert head in system_text(provider.main_calls()[-1]) and plan.tokens <= limit
        return
    assert provider.kept[-1]  # warmed beside what the turns still send, never over it
    for k in range(ADOPT_AFTER):  # never warmed: the summary the cache holds (none), the budget kept
        plan = turn(100 + k)
        assert head not in system_text(provider.main_calls()[-1]) and plan.tokens <= limit
        assert any("the model's cache holds the newest summary" in note for note in plan.notes), plan.notes
        assert plan.needs_summary is None  # written already: not due again
    plan = turn(200)
    assert head in system_text(provider.main_calls()[-1]) and plan.tokens <= limit


def test_the_summarizers_prompt_is_chunked_to_fit_half_the_window() -> None:
    window = 1024
    agent, provider, store = setup("summary", window, summary="a short summary")
    long = "The expedition log, day {k}: " + "we walked along the ridge and counted the birds. " * 30
    store.append_messages(
        "s", [Message(Role.USER if k % 2 == 0 else Role.ASSISTANT, long.format(k=k)) for k in range(16)]
    )
    chat(agent, ["what did we see?"])
    summarizer = provider.summarizer_calls()
    assert len(summarizer) >= 3, "the long evicted text was not chunked"
    for k, call in enumerate(summarizer):
        assert tokens_of(call) <= window // 2
        if k:  # each chunk starts from the summary so far, and adds to it
            assert str(call[1]["content"]).startswith("Summary so far:\na short summary")
            assert call[0]["content"] == EXTEND["en"]
    summary = store.latest_summary("s")
    assert summary is not None and summary.content.split("\n") == ["a short summary"] * len(summarizer)
    assert summary.last_seq == verbatim_seqs(agent.context("s", "x"))[0] - 1
    # one summary folds at most two windows of the newest messages due; the older ones are
    # left to recall (a local model would spend minutes on a long imported history)
    stored = store.messages("s")
    folded = [m for m in stored if summary.first_seq <= (m.seq or 0) <= summary.last_seq]
    cost = sum(estimate_tokens(m.content) + 4 for m in folded)
    before = next(m for m in reversed(stored) if (m.seq or 0) < summary.first_seq)
    assert cost <= 2 * window < cost + estimate_tokens(before.content) + 4
    shown = "".join(str(c[1]["content"]) for c in summarizer)  # what the summarizer was given
    assert all(m.content[:32] in shown for m in folded) and before.content[:32] not in shown


def test_a_chinese_session_gets_chinese_instructions_and_headings() -> None:
    agent, provider, store = setup("summary", 1024, summary="用户叫小明。", persona="你是简洁的助手。")
    chat(agent, [f"第{k}轮：今天我们继续聊天气，天气温和，有点阴，没有什么特别的事情发生。" for k in range(40)])
    assert provider.summarizer_calls() and provider.summarizer_calls()[0][0]["content"] == INSTRUCTIONS["zh"]
    assert "【之前对话的摘要】" in system_text(provider.main_calls()[-1])


def test_a_failing_summarizer_never_fails_a_turn_and_is_tried_again_later() -> None:
    agent, provider, store = setup("summary", 1024)
    provider.summaries.append(ServerError("the summarizer is down", status=503))
    for k in range(60):
        plan = chat(agent, [filler(k)])[-1]
        if provider.summarizer_calls():
            break
    # the summary was due after this turn, which was answered within the window meanwhile
    assert store.messages("s")[-1].content == "Noted."
    assert store.summaries("s") == [] and plan.tokens <= agent.budget_for("scripted-model").limit
    call = provider.main_calls()[-1]
    assert system_text(call) == PERSONA and call[1]["role"] == "user"  # the window, without a summary
    # the next two turns' upkeep does not try again (each would wait for a failing provider), the third does
    provider.summary = "the summary, at last"
    for k in range(2):
        plan = chat(agent, [f"pause {k}"])[-1]
        assert len(provider.summarizer_calls()) == 1 and store.summaries("s") == []
        assert [n for n in plan.notes if "summaries are paused after 1 failed in a row" in n]
    chat(agent, ["again?"])
    assert store.latest_summary("s") is not None
    chat(agent, ["and now?"])
    assert "the summary, at last" in system_text(provider.main_calls()[-1])


def test_summaries_failing_in_a_row_are_tried_less_and_less_often() -> None:
    agent, provider, store = setup("auto", 1024)
    provider.summaries.extend(ServerError("refused", status=400) for _ in range(100))
    chat(agent, [filler(k) for k in range(150)])
    tries = len(provider.summarizer_calls())
    # a try every turn would be ~140 failed calls; backing off 2, 4, 8, 16, 32, 64 turns: a handful
    assert 3 <= tries <= 8 and store.summaries("s") == []
    assert len(store.messages("s")) == 300  # every turn itself succeeded


def test_forget_summaries_makes_the_summary_rebuild() -> None:
    agent, provider, store = setup("summary", 1024, summary="first version")
    chat(agent, [filler(k) for k in range(40)])
    old = store.summaries("s")
    assert old and "first version" in system_text(provider.main_calls()[-1])
    assert store.forget_summaries("s") == len(old)
    plan = agent.context("s", "next")  # /context reports the summary that is due, and writes nothing
    assert plan.needs_summary is not None and plan.needs_summary[0] == 1
    assert store.summaries("s") == []
    provider.summary = "second version"
    chat(agent, ["next"])  # answered without it; memory upkeep writes it after the reply
    new = store.summaries("s")
    assert len(new) == 1 and new[0].first_seq == 1 and set(new[0].content.split("\n")) == {"second version"}
    assert new[0].last_seq >= plan.needs_summary[1]
    chat(agent, ["and then"])
    assert "second version" in system_text(provider.main_calls()[-1])


def test_undo_and_truncate_never_leave_a_stale_summary() -> None:
    agent, provider, store = setup("summary", 1024, summary="they talked about the weather")
    chat(agent, [filler(k) for k in range(40)])
    assert store.summaries("s")
    store.truncate("s", 2)  # the summarized turns are gone: so is their summary
    chat(agent, ["hello again"])
    call = provider.calls[-1]
    assert call == [
        {"role": "system", "content": PERSONA},
        *[m.to_wire() for m in store.messages("s")[:2]],
        {"role": "user", "content": "hello again"},
    ]


# -- recall ------------------------------------------------------------------------------------------


def test_recall_finds_an_early_english_fact() -> None:
    agent, provider, store = setup("recall", 1024)
    chat(agent, ["My sister Alexandra moved to Reykjavik last spring."])
    chat(agent, [filler(k) for k in range(40)])
    plan = chat(agent, ["Which city did Alexandra move to?"])[-1]
    call = provider.calls[-1]
    fact = store.messages("s")[0]
    recall = section(plan, "recall")
    assert recall is not None and recall.startswith(RECALL_HEAD + "\n")
    assert recalled_line(recall, fact.seq, fact.content)
    assert system_text(call) == PERSONA  # what comes before recall stays a stable prefix
    assert recall_text(call) == recall  # delimited, last in the one system message
    assert call[0]["content"] == PERSONA + "\n\n" + recall
    assert call[-1] == {"role": "user", "content": "Which city did Alexandra move to?"}
    assert fact.seq not in verbatim_seqs(plan) and plan.tokens <= agent.budget_for("scripted-model").limit
    items = next(s for s in plan.sections if s.kind == "recall").items
    assert items[0].seq == fact.seq and items[0].kind == "turn" and "this chat" in items[0].why


@pytest.mark.parametrize(
    "fact, question",
    [
        ("我最喜欢的水果是葡萄。", "你还记得葡萄吗？"),  # a two-character word: the LIKE fallback
        ("我的猫叫小花，今年三岁。", "我的猫叫什么名字？"),  # three characters and more: the trigram index
        ("我最喜欢的水果是葡萄。", "葡萄是什么颜色的？"),  # a two-character word inside a short phrase
    ],
)
def test_recall_finds_an_early_chinese_fact(fact: str, question: str) -> None:
    agent, provider, store = setup("recall", 1024, persona="你是简洁的助手。")
    chat(agent, [fact])
    chat(agent, [f"第{k}轮：今天我们继续聊天气，温和，有点阴，没有特别的事情发生。" for k in range(40)])
    plan = chat(agent, [question])[-1]
    recall = section(plan, "recall")
    assert recall is not None and recall.startswith("【可能相关的早先消息（按需检索）】\n")
    assert recalled_line(recall, 1, fact)
    assert plan.tokens <= agent.budget_for("scripted-model").limit


def test_recall_respects_the_budget_and_skips_what_is_verbatim() -> None:
    window = 1024
    agent, provider, store = setup("recall", window)
    limit = agent.budget_for("scripted-model").limit
    chat(agent, [f"Note {k} about the lighthouse: " + "the lamp, the keeper and the stairs. " * 8 for k in range(30)])
    chat(agent, ["Tell me about the lighthouse keeper once more."])
    plan = agent.context("s", "And the lighthouse keeper?")
    recall = section(plan, "recall")
    assert recall is not None
    items = next(s for s in plan.sections if s.kind == "recall").items
    assert 1 <= len(items) <= MAX_ITEMS
    seqs = [i.seq for i in items if i.seq is not None]
    assert not set(seqs) & set(verbatim_seqs(plan)), "a recalled message is also verbatim"
    assert all(s < min(verbatim_seqs(plan)) for s in seqs)
    assert plan.tokens <= limit


def test_recall_searches_the_other_sessions_unless_told_not_to() -> None:
    agent, provider, store = setup("recall", 1024)
    store.create_session("travel")
    store.append_messages("travel", [Message(Role.USER, "My passport number is X1234567, expires 2031.")])
    chat(agent, [filler(k) for k in range(3)])
    agent.recall_all = False  # --recall session
    plan = agent.context("s", "What is my passport number?")
    assert section(plan, "recall") is None  # this session alone has nothing older
    agent.recall_all = True  # the default
    plan = chat(agent, ["What is my passport number?"])[-1]
    recall = section(plan, "recall")
    assert recall is not None and recalled_line(recall, 1, "My passport number is X1234567, expires 2031.", "travel")
    assert "X1234567" in recall_text(provider.calls[-1])


# -- auto ----------------------------------------------------------------------------------------------


def test_auto_combines_window_summary_recall_and_pins() -> None:
    agent, provider, store = setup("auto", 1024, summary="Summary: small talk about the weather.")
    chat(agent, ["My dog is called Biscuit.", "My favourite colour is teal."])
    store.pin("s", store.messages("s")[2].id or 0)  # the colour
    chat(agent, [filler(k) for k in range(40)])
    plan = chat(agent, ["What is my dog called?"])[-1]
    kinds = [s.kind for s in plan.sections]
    assert kinds == ["persona", "summary", "pinned", "recall"]
    system = system_text(provider.calls[-1])
    assert system.startswith(PERSONA + "\n\n[Summary of the earlier conversation]\n")
    assert "[Pinned messages]\n[#3 user] My favourite colour is teal." in system
    assert "My dog is called Biscuit." not in system
    assert recalled_line(recall_text(provider.calls[-1]), 1, "My dog is called Biscuit.")
    assert plan.tokens <= agent.budget_for("scripted-model").limit
    assert provider.calls[-1][1]["role"] == "user" and plan.entries[-1].kind == "new"
    assert [e.kind for e in plan.entries] == ["system", *["verbatim"] * (len(plan.entries) - 2), "new"]


def test_planning_ahead_without_recall_decides_the_same_window_and_summary() -> None:
    """Memory upkeep plans the next call only to move the window and know the summary due: it
    plans without searching (no CPU taken from the turns), and decides exactly what the turn's
    own plan, recall and all, decides."""
    agent, provider, store = setup("auto", 1024)
    chat(agent, ["My dog is called Biscuit.", "My favourite colour is teal."])
    chat(agent, [filler(k) for k in range(40)])
    more = [Message(Role.USER if k % 2 == 0 else Role.ASSISTANT, filler(100 + k)) for k in range(30)]
    store.append_messages("s", more)  # stored elsewhere (another process): no upkeep ran for them
    info = store.get_session("s")
    budget = agent.budget_for("scripted-model")
    question = Message(Role.USER, "What is my dog called?", tokens=estimate_tokens("What is my dog called?"))
    with_recall = agent._plan(info, question, "auto", budget, "scripted-model", exclude=[], summarize=False)
    ahead = agent._plan(info, question, "auto", budget, "scripted-model", exclude=[], summarize=False, recall=False)
    assert section(with_recall, "recall") is not None and section(ahead, "recall") is None
    assert ahead.needs_summary == with_recall.needs_summary is not None
    assert verbatim_seqs(ahead) == verbatim_seqs(with_recall)


def test_recall_goes_apart_only_where_the_provider_says_its_template_renders_it() -> None:
    """A provider whose chat template renders a later system message (the embedded model's
    does) gets recall as a system message of its own right after the question: the history
    and the question then stay the KV cache's prefix while recall changes (the next call's
    history holds the question, not this recall)."""
    agent, provider, store = setup("recall", 1024)
    provider.system_layout = lambda: "recall_apart"  # type: ignore[method-assign]
    chat(agent, ["My sister Alexandra moved to Reykjavik last spring."])
    chat(agent, [filler(k) for k in range(40)])
    plan = chat(agent, ["Which city did Alexandra move to?"])[-1]
    call = provider.calls[-1]
    recall = section(plan, "recall")
    assert recall is not None and call[0] == {"role": "system", "content": PERSONA}
    assert call[-1] == {"role": "system", "content": recall} and call[-2]["role"] == "user"
    assert [e.kind for e in plan.entries[-2:]] == ["new", "recall"]
    provider.system_layout = lambda: "something else"  # type: ignore[method-assign]
    chat(agent, ["And which city did Alexandra move to?"])
    assert [m["role"] for m in provider.calls[-1]].count("system") == 1  # unknown: the one system message


def test_a_model_that_evaluates_prompts_slowly_gets_a_short_recall() -> None:
    """Recall is new in every call: on a model that says it evaluates ~40 prompt tokens a second
    (the embedded model on a small CPU, deep into a long chat) it is kept to what two seconds
    evaluate, and the verbatim turns keep the room it does not take; a remote model is not capped."""
    agent, provider, store = setup("recall", 4096)
    chat(agent, ["Note 0 about the lighthouse: the keeper is called Tobias Lindqvist."])
    chat(
        agent, [f"Note {k} about the lighthouse: " + "the lamp, the keeper and the stairs. " * 8 for k in range(1, 60)]
    )
    question = "What is the lighthouse keeper called?"
    free = agent.context("s", question)
    assert agent.budget_for("scripted-model").recall_cap is None  # it says nothing of its speed
    provider.prompt_rate = lambda: 160.0  # type: ignore[method-assign]
    assert agent.budget_for("scripted-model").recall_cap == 80
    slow = agent.context("s", question)
    recall = next(s for s in slow.sections if s.kind == "recall")
    assert recall.tokens <= 80 < next(s for s in free.sections if s.kind == "recall").tokens
    assert any("recall kept to 80 tokens" in note for note in slow.notes)
    assert len(verbatim_seqs(slow)) >= len(verbatim_seqs(free))  # the room recall leaves goes to the turns
    assert slow.tokens <= agent.budget_for("scripted-model").limit


def test_context_shows_what_the_next_call_sends_and_writes_nothing() -> None:
    agent, provider, store = setup("auto", 1024)
    chat(agent, [filler(k) for k in range(40)])
    store.settle_search()  # the turns' index changes (a search, as /context's recall, applies them first)
    before = "\n".join(store._dialect.connection.iterdump())
    plan = agent.context("s", "What did I say first?")
    assert "\n".join(store._dialect.connection.iterdump()) == before
    chat(agent, ["What did I say first?"])
    assert provider.calls[-1] == plan.wire()


def test_a_retry_plans_without_the_replaced_turn() -> None:
    agent, provider, store = setup("window", 1024)
    chat(agent, [filler(k) for k in range(30)])
    provider.default = "a better answer"
    turn = agent.retry("s")
    for _ in turn:
        pass
    call = provider.calls[-1]
    assert call[-1] == {"role": "user", "content": filler(29)}
    assert [m for m in call if m["content"] == filler(29)] == [call[-1]]
    assert store.messages("s")[-1].content == "a better answer" and len(store.messages("s")) == 60


def test_a_shrunk_budget_is_smaller_than_what_was_refused() -> None:
    budget = Budget.for_window(32_768)
    assert budget.shrunk().window == int(32_768 * 0.7)
    # a refused call that used far less than the budget: the retry must plan for less than it sent
    small = budget.shrunk(sent=2_000)
    assert small.limit == 1_400 and small.reserve == budget.reserve
    assert budget.shrunk(sent=10**6).limit == budget.shrunk().limit


# -- calibration ---------------------------------------------------------------------------------------


class Doubling(ScriptedProvider):
    """A model whose tokenizer spends twice the estimate on text (template overhead as estimated)."""

    def stream(
        self, messages: Sequence[WireMessage], *, model: str | None = None, options: ChatOptions | None = None
    ) -> Iterator[Chunk]:
        real = sum(2 * estimate_tokens(str(m["content"])) + MESSAGE_OVERHEAD for m in messages)
        self.reported.append(real)
        for chunk in super().stream(messages, model=model, options=options):
            if chunk.usage is not None:
                chunk = Chunk(finish_reason=chunk.finish_reason, usage=Usage(real, 0))
            yield chunk

    reported: list[int]


def test_calibration_learns_the_real_ratio_and_later_plans_shrink() -> None:
    store = open_store(":memory:")
    store.create_session("s", persona=PERSONA)
    provider = Doubling(default="Noted, and here is a little more text to answer with.")
    provider.reported = []
    agent = Agent(store=store, provider=provider, memory="window", context_window=2048, date_line=False)
    limit = agent.budget_for("scripted-model").limit
    store.append_messages("s", [Message(Role.USER if k % 2 == 0 else Role.ASSISTANT, filler(k)) for k in range(80)])

    def fresh_plan() -> ContextPlan:  # what an agent with nothing cached would plan
        return Agent(store=store, provider=Doubling(), memory="window", context_window=2048, date_line=False).context(
            "s", "hello"
        )

    first = fresh_plan()
    assert store.calibration("scripted-model") is None
    chat(agent, ["hello"])
    assert provider.reported[-1] > limit  # the estimate was off by half: the real prompt overflowed
    ratios = []
    for k in range(8):
        plan = chat(agent, [filler(100 + k)])[-1]
        ratios.append(store.calibration("scripted-model") or 0.0)
    assert ratios[0] > 1.5 and abs(ratios[-1] - 2.0) < 0.1, ratios
    # the plan now counts what the model counts, and the real prompts fit
    assert abs(plan.tokens - provider.reported[-1]) <= 0.02 * plan.tokens
    assert all(r <= limit for r in provider.reported[1:])
    later = fresh_plan()
    assert later.tokens <= limit
    assert len(verbatim_seqs(later)) < 0.75 * len(verbatim_seqs(first)), "the plan did not shrink"
    same = [e for e in later.entries if e.kind == "verbatim" and e.seq in set(verbatim_seqs(first))]
    assert same and all(e.tokens >= 1.9 * estimate_tokens(e.content) for e in same)


def test_exact_counts_are_never_calibrated() -> None:
    agent, provider, store = setup("window", 2048)
    chat(agent, [filler(k) for k in range(5)])
    assert store.calibration("scripted-model") is None


class Tenfold(ScriptedProvider):
    """A server whose reported prompt size is far beyond any real tokenizer's (10× the estimate)."""

    def stream(
        self, messages: Sequence[WireMessage], *, model: str | None = None, options: ChatOptions | None = None
    ) -> Iterator[Chunk]:
        real = sum(10 * estimate_tokens(str(m["content"])) for m in messages)
        for chunk in super().stream(messages, model=model, options=options):
            if chunk.usage is not None:
                chunk = Chunk(finish_reason=chunk.finish_reason, usage=Usage(real, 0))
            yield chunk


def test_a_report_beyond_the_bounds_is_not_written_again_every_turn() -> None:
    store = open_store(":memory:")
    store.create_session("s", persona=PERSONA)
    agent = Agent(store=store, provider=Tenfold(default="Noted."), memory="window", context_window=8192)
    chat(agent, [filler(k) for k in range(12)])  # the ratio settles at the upper bound
    assert store.calibration("scripted-model") == pytest.approx(RATIO_BOUNDS[1], rel=0.02)
    samples = lambda: store._read("SELECT samples FROM calibration")[0][0]  # noqa: E731
    before = samples()
    chat(agent, [filler(100 + k) for k in range(5)])
    assert samples() == before, "a report clamped to the bound was written again every turn"


# -- the tail cache and other writers ------------------------------------------------------------------


def test_the_tail_cache_stays_exact_when_another_store_changes_the_session(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    pa, pb = Exact(default="from A"), Exact(default="from B")
    a = Agent(store=open_store(path), provider=pa, memory="window", context_window=8192, date_line=False)
    b = Agent(store=open_store(path), provider=pb, memory="window", context_window=8192, date_line=False)
    a.session("s", persona=PERSONA)
    # more than one page of history (the cache reads 256 messages at a time)
    b.store.append_messages("s", [Message(Role.USER if k % 2 == 0 else Role.ASSISTANT, f"m{k}") for k in range(300)])

    def check(text: str) -> None:
        fresh = Agent(store=open_store(path), provider=Exact(), memory="window", context_window=8192, date_line=False)
        expected = fresh.context("s", text).wire()
        fresh.store.close()
        chat(a, [text])
        assert pa.calls[-1] == expected, f"stale context after: {text}"

    check("a1")
    chat(b, ["b1"])
    check("a2")  # appended by another store
    b.store.remove_last_turn("s")
    check("a3")  # undone
    b.store.truncate("s", 100)
    check("a4")  # truncated
    b.store.append_messages("s", [Message(Role.USER, "lost question")])
    check("a5")  # an orphan user message, then ours
    # an older reply finishes after newer messages (turns are serialized per session, but rows
    # still arrive this way when a script appends while a reply streams)
    turn = b.stream("s", "slow question")
    it = iter(turn)
    next(it)  # its reply is streaming now
    a.store.append_messages("s", [Message(Role.USER, "a6"), Message(Role.ASSISTANT, "from A")])
    for _ in it:
        pass
    check("a7")
    assert [m["content"] for m in pa.calls[-1][-5:]] == ["slow question", "from B", "a6", "from A", "a7"]
    with b.store._write() as db:  # an edit in place
        db.execute("UPDATE messages SET content = 'edited' WHERE seq = 3 AND session_id = 1")
    check("a8")
    b.store.pin("s", b.store.messages("s")[0].id or 0)
    check("a9")
