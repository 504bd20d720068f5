"""Context windows of known models, and the token budget of one call.

Budget = window − tokens reserved for the reply − tokens of the tool schemas sent − the chat
template's tokens once per call (the reply's primer); every message also costs the template's
tokens around it (``overhead``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from memchat.tokens import MESSAGE_OVERHEAD

#: (model id prefix, context window in tokens), most specific first; matched case-insensitively
KNOWN_WINDOWS: tuple[tuple[str, int], ...] = (
    ("smollm2", 8_192),
    ("qwen/qwen3-next-80b-a3b", 262_144),
    ("qwen/qwen3-235b-a22b-instruct-2507", 262_144),
    ("qwen/qwen3-235b-a22b-thinking-2507", 262_144),
    ("qwen/qwen3-coder", 262_144),
    ("qwen/qwen3-", 32_768),
    ("qwen/qwen2.5-", 32_768),
    ("qwen/qwq-32b", 131_072),
    ("deepseek-ai/deepseek-v4", 131_072),
    ("deepseek-ai/deepseek-v3", 131_072),
    ("deepseek-ai/deepseek-r1", 131_072),
    ("zhipuai/glm-", 131_072),
    ("deepseek-chat", 131_072),
    ("deepseek-reasoner", 131_072),
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 400_000),
    ("gpt-4o", 128_000),
    ("o3", 200_000),
    ("o4-mini", 200_000),
    ("gpt-3.5-turbo", 16_385),
)
#: for a model we know nothing about: small enough to be safe almost anywhere
DEFAULT_WINDOW = 8_192


def known_window(model: str) -> int | None:
    name = model.lower()
    bare = name.rsplit("/", 1)[-1]
    for prefix, window in KNOWN_WINDOWS:
        if name.startswith(prefix) or bare.startswith(prefix):
            return window
    return None


def context_window(
    model: str,
    *,
    override: int | None = None,
    provider_default: int | None = None,
    served: Callable[[], int | None] | None = None,
) -> int:
    """The window to plan for: an explicit override (the flag) > what the server says it serves
    (``served``, asked only when needed), capped by the known-models table (a server cannot
    give a model more than it has) > the table > the provider's own figure > ``DEFAULT_WINDOW``."""
    if override:
        return override
    known = known_window(model)
    told = served() if served is not None else None
    if known and told:
        return min(known, told)
    return told or known or provider_default or DEFAULT_WINDOW


#: a recall block (new every turn, so evaluated every turn) may take what the model evaluates in
#: this many seconds: on the embedded model at 7,000 tokens of context, 2 s held every reply's
#: first word back by 2 s once recall began (issue 16's 200-turn run); half a second of it is
#: one or two recalled snippets on a long chat, more on a short one (the rate is faster there)
RECALL_SECONDS = 0.5


def recall_cap(prompt_rate: float | None) -> int | None:
    """The recall tokens a model that evaluates ``prompt_rate`` prompt tokens per second gets
    (``Provider.prompt_rate``; None: unknown, no cap)."""
    return None if prompt_rate is None else max(0, int(prompt_rate * RECALL_SECONDS))


@dataclass(frozen=True, slots=True)
class Budget:
    window: int
    reserve: int
    tools: int = 0
    #: tokens the chat template adds around each message (role markers, separators)
    overhead: int = MESSAGE_OVERHEAD
    #: tokens the template adds once per call (the assistant's reply header)
    primer: int = 0
    #: at most this many tokens of recall (new every turn), for a model that evaluates prompts
    #: slowly (None: no cap beyond the window's share)
    recall_cap: int | None = None

    @property
    def limit(self) -> int:
        """Tokens the messages of one call may use (their template overhead included)."""
        return max(0, self.window - self.reserve - self.tools - self.primer)

    @classmethod
    def for_window(
        cls,
        window: int,
        *,
        max_tokens: int | None = None,
        tools: int = 0,
        overhead: int = MESSAGE_OVERHEAD,
        primer: int = 0,
    ) -> Budget:
        """Reserve the reply's ``max_tokens``, or a quarter of the window (256…4,096)."""
        reserve = max_tokens if max_tokens else min(4_096, max(256, window // 4))
        return cls(window=window, reserve=min(reserve, window // 2), tools=tools, overhead=overhead, primer=primer)

    def shrunk(self, factor: float = 0.7, *, sent: int | None = None) -> Budget:
        """A smaller budget after the provider said the context was too long: ``factor`` of the
        window, and at most ``factor`` of what the refused call ``sent`` (a budget the call did
        not fill would plan the very same call again)."""
        window = int(self.window * factor)
        if sent is not None:
            window = min(window, int(sent * factor) + self.reserve + self.tools)
        return dataclasses.replace(self, window=window)
