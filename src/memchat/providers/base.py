"""The ``Provider`` port: one abstract method that streams the chunks of a reply.

Adapters (``openai_compat``, ``local_llama``) subclass ``Provider``. Anything else that
streams ``Chunk`` objects for a list of OpenAI-shaped messages can too (see
``memchat.testing.ScriptedProvider``).
"""

from __future__ import annotations

import abc
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from memchat.domain import Chunk
from memchat.tokens import MESSAGE_OVERHEAD, estimate_tokens

WireMessage = dict[str, Any]


class StoredWire(dict[str, Any]):
    """A wire message that is made once and sent unchanged call after call (a stored message's,
    ``ContextEntry.to_wire``): a provider may keep its encoding by the object's identity. Nobody
    changes one once made; a caller's own dicts are plain ``dict`` and are encoded every call."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """Per-call generation options, passed through to the provider."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    #: up to 4 strings that end the reply where they appear (not included)
    stop: tuple[str, ...] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    #: OpenAI's ``response_format`` (``{"type": "json_object"}`` …), passed as it is
    response_format: dict[str, Any] | None = None
    #: token id (as a string) → bias, passed as it is
    logit_bias: dict[str, float] | None = None
    #: OpenAI ``tools`` entries the model may call (providers without tool calling ignore them):
    #: the caller's own, run by the caller (memchat's own tools are added by the turn)
    tools: tuple[dict[str, Any], ...] | None = None
    #: OpenAI's ``tool_choice`` (``"auto"``, ``"none"``, ``"required"`` or a named function)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None


class Provider(abc.ABC):
    """Streams a reply for a conversation. Subclasses implement ``stream``.

    ``name`` identifies the provider (``local``, ``modelscope``, …) and ``model`` is the
    default model id used when a call names none.
    """

    name: str = "provider"
    #: the provider has exactly the models ``list_models`` names (the embedded model: one file),
    #: so any other model is refused when chosen, not at the next turn
    fixed_models: bool = False
    model: str = ""
    #: the model's context window in tokens, when known
    context_window: int | None = None
    #: whether ``ChatOptions.tools`` is sent to the model (function calling)
    supports_tools: bool = False
    #: whether the model takes images (``image_url`` content parts): False for a provider that
    #: takes text only (the embedded model), None to go by the model (``attachments.vision``)
    accepts_images: bool | None = None

    @abc.abstractmethod
    def stream(
        self,
        messages: Sequence[WireMessage],
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
    ) -> Iterator[Chunk]:
        """Yield the reply's chunks as they arrive; raise ``ProviderError`` on failure."""

    async def astream(
        self,
        messages: Sequence[WireMessage],
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
    ) -> AsyncIterator[Chunk]:
        """Async twin of ``stream``. The default runs ``stream`` in a worker thread."""
        import asyncio  # lazily: the sync path (``memchat ask``) never pays for it

        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def post(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop closed after the consumer left: nobody is listening
                stop.set()

        def work() -> None:
            try:
                for chunk in self.stream(messages, model=model, options=options):
                    if stop.is_set():
                        break
                    post(("chunk", chunk))
            except BaseException as exc:  # handed to the event loop, re-raised there
                post(("error", exc))
            else:
                post(("end", None))

        thread = threading.Thread(target=work, name="memchat-provider", daemon=True)
        thread.start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "chunk":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            stop.set()

    @property
    def has_key(self) -> bool:
        """Whether an API key is configured (never the key itself: for pages and status lines)."""
        return False

    def template_overhead(self) -> tuple[int, int]:
        """Tokens the chat template adds around each message, and once per call (the reply's
        header). Remote APIs do not say: an estimate that holds for ChatML-style templates."""
        return MESSAGE_OVERHEAD, 0

    def for_upkeep(self) -> Provider:
        """The provider memory upkeep (summaries, memory extraction) calls, in the background:
        this one, unless calls compete with turns for one model (the embedded model gives upkeep
        a context of its own, used only while no turn runs)."""
        return self

    async def aprepare(self) -> None:
        """Get ready to stream on the running event loop (its connections, what they import), so
        that the first turn does not pay for it; a server calls it as it starts. Nothing here."""
        return None

    def prefill(self, messages: Sequence[WireMessage], *, keep: bool = False) -> bool:
        """Prepare the model for a next call that starts with ``messages`` (a local model
        evaluates them into its cache ahead of time; remote APIs need nothing). Whether it did.
        ``keep``: what the cache holds now is what the next turns still send (``messages`` is a
        layout they will use later): never overwrite it, only add beside it."""
        return False

    def prompt_rate(self) -> float | None:
        """Prompt tokens per second this provider evaluated lately, when it knows (a local model
        measures its turns; None: unknown, a remote API). The planner keeps the part of a call
        that is new every turn (recall) to what a couple of seconds evaluate."""
        return None

    def served_window(self, model: str | None = None) -> int | None:
        """The context window the server says it serves ``model`` with (None: it does not say;
        the known-models table and the provider's own figure decide)."""
        return None

    def system_layout(self) -> str:
        """Where memchat's recalled messages may go (``memchat.memory.plan.Layout``): ``single``,
        the one system message every chat template accepts, unless the provider knows that its
        template renders a second system message, after the new one (``recall_apart``)."""
        return "single"

    def count_tokens(self, text: str) -> tuple[int, str]:
        """Tokens in ``text`` and how they were counted (``exact:…`` or ``estimate``)."""
        return estimate_tokens(text), "estimate"

    def list_models(self) -> list[str]:
        """Model ids this provider offers."""
        return [self.model] if self.model else []

    def close(self) -> None:  # noqa: B027  (optional hook, deliberately not abstract)
        """Release connections or memory held by the provider."""
