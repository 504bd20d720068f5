"""Fold older messages into a running summary, written by the model.

The summarizer's own prompt must fit small windows (the embedded model has a few thousand
tokens), so the messages are fed in chunks: each call gets the summary so far plus as many
new messages as fit in half the window. The summary is extended, not rewritten: each call
writes what the new messages add, appended to the summary so far (whose text, the prefix of
every later prompt, so stays as it was); only a summary grown past twice its usual length is
rewritten whole, shorter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from memchat.domain import Message
from memchat.errors import StreamError
from memchat.providers.base import ChatOptions, Provider
from memchat.tokens import MESSAGE_OVERHEAD

INSTRUCTIONS = {
    "en": (
        "You keep the memory of a long conversation between a user and an assistant. Update the summary "
        "with the new messages. Keep every fact the user stated (names, numbers, dates, places, preferences), "
        "decisions made and questions still open; drop small talk. Be brief. Write in the language the "
        "conversation uses. Reply with the updated summary only."
    ),
    "zh": (
        "你负责记住用户与助手之间的一段长对话。请用新的消息更新摘要：保留用户说过的每个事实（名字、数字、日期、地点、"
        "喜好）、做出的决定和尚未解决的问题，省略寒暄。尽量简短，使用对话所用的语言。只回复更新后的摘要。"
    ),
}


EXTEND = {
    "en": (
        "You keep the memory of a long conversation between a user and an assistant. Summarize the new "
        "messages: every fact the user stated (names, numbers, dates, places, preferences), decisions made "
        "and questions still open; drop small talk and what the summary so far already says. Be brief. "
        "Write in the language the conversation uses. Reply with the summary of the new messages only."
    ),
    "zh": (
        "你负责记住用户与助手之间的一段长对话。请总结新的消息：用户说过的每个事实（名字、数字、日期、地点、喜好）、"
        "做出的决定和尚未解决的问题；省略寒暄和目前摘要里已有的内容。尽量简短，使用对话所用的语言。只回复新消息的摘要。"
    ),
}


def summary_reply_tokens(window: int) -> int:
    """The longest summary the model is asked to write for this window."""
    return max(64, min(512, window // 8))


def _is_zh(messages: Sequence[Message]) -> bool:
    sample = "".join(m.content for m in messages[:6])[:400]
    return sum(1 for ch in sample if "\u4e00" <= ch <= "\u9fff") > 10


def summarize(
    provider: Provider,
    model: str,
    previous: str,
    messages: Sequence[Message],
    *,
    window: int,
    count: Callable[[str], int],
) -> str:
    """The summary of ``previous`` + ``messages``: ``previous`` with what the messages add appended
    (rewritten whole only once it is past twice the usual length); raises ``ProviderError`` if a
    call fails."""
    zh = _is_zh(messages)
    instructions = INSTRUCTIONS["zh" if zh else "en"]
    extend = EXTEND["zh" if zh else "en"]
    reply_tokens = summary_reply_tokens(window)
    fixed = count(instructions) + count(_prompt(zh, "", [])) + 2 * MESSAGE_OVERHEAD
    # prompt and reply within half the window; in a tiny window, at least 64 tokens of messages
    # per call as long as prompt and reply still fit the whole window
    room = min(max(64, window // 2 - reply_tokens - fixed), max(32, window - reply_tokens - fixed))
    # a summary longer than asked for (a model that ignores max_tokens) is cut to leave room
    summary = _clip(previous, room - 16, count)
    lines: list[str] = []
    used = count(summary)
    for m in messages:
        line = _clip(f"{m.role.value}: {m.described}", room // 2, count)  # one huge message: its beginning
        cost = count(line) + 1
        if lines and used + cost > room:
            summary = _fold(provider, model, (instructions, extend), summary, lines, reply_tokens, zh, count)
            summary = _clip(summary, room - 16, count)
            lines, used = [], count(summary)
        if used + cost > room:  # even alone with the summary it does not fit
            line = _clip(line, room - used - 1, count)
            cost = count(line) + 1
        lines.append(line)
        used += cost
    if lines:
        summary = _fold(provider, model, (instructions, extend), summary, lines, reply_tokens, zh, count)
    return summary


def _fold(
    provider: Provider,
    model: str,
    prompts: tuple[str, str],
    summary: str,
    lines: list[str],
    reply_tokens: int,
    zh: bool,
    count: Callable[[str], int],
) -> str:
    """``summary`` extended with what ``lines`` add; rewritten whole when that would be more
    than twice ``reply_tokens`` long (or when there is no summary yet)."""
    rewrite, extend = prompts
    if not summary.strip():
        return _call(provider, model, rewrite, summary, lines, reply_tokens, zh)
    added = _call(provider, model, extend, summary, lines, reply_tokens, zh, ask=_ASK_NEW)
    longer = f"{summary}\n{added}"
    if count(longer) <= 2 * reply_tokens:
        return longer
    return _call(provider, model, rewrite, longer, [], reply_tokens, zh)


def _clip(text: str, tokens: int, count: Callable[[str], int]) -> str:
    """``text``, or as much of its beginning as fits in ``tokens`` (marked with " …")."""
    n = count(text)
    if n <= tokens:
        return text
    cut = len(text) * max(tokens, 0) // max(n, 1)
    while cut > 0 and count(text[:cut] + " …") > tokens:
        cut = cut * 9 // 10
    return text[:cut] + " …"


_ASK_UPDATED = ("请写出更新后的摘要。", "Write the updated summary.")
_ASK_NEW = ("请只写出新消息的摘要。", "Write the summary of the new messages only.")


def _prompt(zh: bool, summary: str, lines: list[str], ask: tuple[str, str] = _ASK_UPDATED) -> str:
    if zh:
        return f"目前的摘要：\n{summary or '（无）'}\n\n新的消息：\n" + "\n".join(lines) + f"\n\n{ask[0]}"
    prompt = f"Summary so far:\n{summary or '(none)'}\n\nNew messages:\n" + "\n".join(lines)
    return prompt + f"\n\n{ask[1]}"


def _call(
    provider: Provider,
    model: str,
    instructions: str,
    summary: str,
    lines: list[str],
    max_tokens: int,
    zh: bool,
    ask: tuple[str, str] = _ASK_UPDATED,
) -> str:
    prompt = _prompt(zh, summary, lines, ask)
    messages = [{"role": "system", "content": instructions}, {"role": "user", "content": prompt}]
    options = ChatOptions(max_tokens=max_tokens, temperature=0.2)
    text = "".join(c.text for c in provider.stream(messages, model=model, options=options)).strip()
    if not text:
        raise StreamError("the model returned an empty summary")
    return text
