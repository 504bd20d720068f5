"""Session titles: a short label written from a session's first exchange.

A session the user did not name (its name is the generated ``chat-YYYYMMDD-HHMMSS``) gets a
title after its first reply: at once the first words of the question (``first_words``), then —
when the agent's ``titles`` is ``model`` — one the chat model writes in memory upkeep's
background lane (``model_title``), which replaces the first words if the session still has them
(a rename in between wins). The title is a display label (``SessionInfo.label``) kept in the
session's settings; the name stays the key of ``-s`` and ``/switch``.
"""

from __future__ import annotations

import re

from memchat.errors import StreamError
from memchat.providers.base import ChatOptions, Provider

#: the names the store generates for a session created without one (``-2``… when taken)
GENERATED_NAME = re.compile(r"chat-\d{8}-\d{6}(-\d+)?")
#: a title is at most this many words (or characters of a text written without spaces)
TITLE_WORDS = 6
TITLE_CHARS = 48

INSTRUCTIONS = {
    "en": (
        "Write a title for the conversation below: at most six words that say what it is about, in the "
        "language the user writes. No quotes, no full stop, no emoji. Reply with the title only."
    ),
    "zh": (
        "请为下面的对话写一个标题：不超过十二个字，说明对话的主题，使用用户所用的语言。"
        "不要引号、句号或表情。只回复标题。"
    ),
}


def is_generated_name(name: str) -> bool:
    """Whether ``name`` is one the store made up (the user did not name the session)."""
    return GENERATED_NAME.fullmatch(name) is not None


def _is_cjk(ch: str) -> bool:
    return "\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af"


def _clean(text: str) -> str:
    """One line, without Markdown marks and the quotes a model wraps a title in."""
    line = " ".join(text.split())
    line = re.sub(r"[*_`#>\[\]]+", "", line)
    return line.strip(" \"'“”‘’「」《》.。:：-–—")


def first_words(text: str) -> str:
    """The beginning of ``text`` as a title: its first words (characters, for Chinese or
    Japanese), ending in "…" when cut."""
    line = _clean(text)
    if not line:
        return ""
    words = line.split(" ")
    cut = " ".join(words[:TITLE_WORDS])
    if len(cut) > TITLE_CHARS:
        cut = cut[:TITLE_CHARS]
        if " " in cut and not _is_cjk(cut[-1]):
            cut = cut.rsplit(" ", 1)[0]
        cut = cut.rstrip()
    if sum(1 for ch in cut if _is_cjk(ch)) > 16:
        cut = cut[:16]
    return cut if cut == line else cut.rstrip(" ,;，；、") + "…"


def _is_zh(text: str) -> bool:
    return sum(1 for ch in text[:200] if "\u4e00" <= ch <= "\u9fff") > 2


def model_title(provider: Provider, model: str, question: str, reply: str) -> str:
    """The title the model writes for an exchange (raises ``ProviderError`` when the call fails,
    ``StreamError`` when it answers nothing usable)."""
    zh = _is_zh(question)
    exchange = f"User: {question[:1500]}\n\nAssistant: {reply[:1500]}"
    messages = [
        {"role": "system", "content": INSTRUCTIONS["zh" if zh else "en"]},
        {"role": "user", "content": exchange},
    ]
    options = ChatOptions(max_tokens=24, temperature=0.2)
    text = "".join(c.text for c in provider.stream(messages, model=model, options=options))
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.S)  # a reasoning model's thoughts
    lines = [_clean(line) for line in text.splitlines() if _clean(line)]
    if not lines:
        raise StreamError("the model wrote no title")
    title = re.sub(r"^(title|标题)\s*[:：]\s*", "", lines[0], flags=re.I)
    title = first_words(title).rstrip("…") if len(title) > TITLE_CHARS else title
    if not title:
        raise StreamError("the model wrote no title")
    return title
