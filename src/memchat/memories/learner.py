"""Learning memories after a turn, off the reply's path.

Two ways in:

* ``detect_explicit(text)``: the user's own imperative at the start of a message ("remember
  that …", "请记住…", "forget that …", "忘掉…"), read synchronously by the agent after the
  turn (a database write, no model call);
* ``MemoryLearner``: in ``auto`` mode, ``submit`` queues the exchange and returns at once; one
  daemon worker thread asks the chat model for new or changed memories (``extract.py``),
  validates the answer and stores it. A failed call or an unreadable answer never reaches the
  caller: it is recorded (``last_error``, ``stats``) and the next 2, 4, 8 … (at most 64)
  submissions are skipped, like the summary's backoff in ``agent.py``.

``flush(timeout)`` waits for the queued jobs (``memchat ask`` before it exits); ``close()``
stops the worker (the job in flight is abandoned between two chunks of its reply).
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from memchat.config import LEARN_MODES
from memchat.domain import Memory
from memchat.errors import MemchatError, ProviderError, StreamError
from memchat.memories.extract import apply, build_messages, parse_operations, related_memories
from memchat.memories.service import MemoryService
from memchat.providers.base import ChatOptions, Provider

__all__ = ["BACKOFF_MAX", "LEARN_MODES", "LearnJob", "LearnStats", "MemoryLearner", "detect_explicit"]

LearnMode = Literal["auto", "explicit", "off"]
#: the most submissions skipped after failures in a row (2, 4, 8 … up to this)
BACKOFF_MAX = 64
#: jobs waiting at most; a submission beyond that is dropped (counted), never waited for
QUEUE_SIZE = 32
#: the longest answer the model may write (a handful of short JSON entries)
MAX_TOKENS = 512


@dataclass(frozen=True, slots=True)
class LearnJob:
    """One exchange to learn from. ``service`` is the memories of the user it belongs to (the
    server has one per account; the learner is shared)."""

    service: MemoryService
    session_id: int | None
    user: str
    reply: str
    model: str | None = None
    today: date = field(default_factory=date.today)
    #: the messages the memories are learned from (the user's message and the reply)
    source_ids: tuple[int, ...] = ()


@dataclass(slots=True)
class LearnStats:
    """What the learner did since it was made."""

    submitted: int = 0  # jobs queued
    skipped: int = 0  # submissions skipped by the backoff
    dropped: int = 0  # submissions dropped: the queue was full, or the learner closed
    calls: int = 0  # model calls made
    failures: int = 0  # calls that failed or answered something unreadable
    learned: int = 0  # memories stored
    rejected: int = 0  # entries of readable answers that were skipped (unknown op, bad text …)


class MemoryLearner:
    """Runs automatic extraction in one background thread per learner (started on first use)."""

    def __init__(
        self,
        provider: Provider,
        *,
        mode: str = "auto",
        on_learned: Callable[[list[Memory]], None] | None = None,
        max_tokens: int = MAX_TOKENS,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        if mode not in LEARN_MODES:
            raise MemchatError(f"learning must be one of {', '.join(LEARN_MODES)}, not {mode!r}")
        self.provider = provider
        #: auto: extraction runs; explicit and off: ``submit`` does nothing
        self.mode = mode
        #: called (in the worker thread) with the memories each job stored, when it stored any
        self.on_learned = on_learned
        self.max_tokens = max_tokens
        self.stats = LearnStats()
        #: the last failure, one line ("server_error: …", "unreadable answer: no JSON …"); None after a success
        self.last_error: str | None = None
        #: why entries of the last readable answer were skipped
        self.last_skipped: list[str] = []
        self._queue: queue.Queue[LearnJob | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Condition()
        self._pending = 0  # queued + in progress
        self._failures = 0  # in a row
        self._skip = 0  # submissions still to skip
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the caller's side (never blocks) -------------------------------------------------------

    def submit(self, job: LearnJob) -> bool:
        """Queue ``job`` for extraction and return at once: True when queued, False when the mode
        is not auto, the backoff skips it, the queue is full or the learner is closed."""
        if self.mode != "auto":
            return False
        with self._lock:
            if self._stop.is_set():
                self.stats.dropped += 1
                return False
            if self._skip > 0:
                self._skip -= 1
                self.stats.skipped += 1
                return False
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self.stats.dropped += 1
                return False
            self._pending += 1
            self.stats.submitted += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="memchat-learner", daemon=True)
                self._thread.start()
        return True

    @property
    def pending(self) -> int:
        """Jobs queued or in progress."""
        with self._lock:
            return self._pending

    @property
    def backoff(self) -> tuple[int, int]:
        """(failures in a row, submissions still to skip)."""
        with self._lock:
            return self._failures, self._skip

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued job is done (at most ``timeout`` seconds); whether they are."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 1.0) -> None:
        """Stop the worker: queued jobs are dropped, the one in flight is abandoned."""
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
            thread = self._thread
            while True:
                try:
                    if self._queue.get_nowait() is not None:
                        self._pending -= 1
                        self.stats.dropped += 1
                except queue.Empty:
                    break
            self._lock.notify_all()
        self._queue.put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- the worker -----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None or self._stop.is_set():
                if job is not None:
                    self._done()
                return
            try:
                self._learn(job)
            finally:
                self._done()

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1
            self._lock.notify_all()

    def _learn(self, job: LearnJob) -> None:
        try:
            related = related_memories(job.service, job.user, job.reply)
            messages = build_messages(job.user, job.reply, related, job.today)
            options = ChatOptions(max_tokens=self.max_tokens, temperature=0)
            self.stats.calls += 1
            parts: list[str] = []
            for chunk in self.provider.stream(messages, model=job.model, options=options):
                if self._stop.is_set():
                    return
                parts.append(chunk.text)
            ops = parse_operations("".join(parts), [m.id for m in related if m.id is not None])
            if not ops.ok:
                raise StreamError(f"unreadable answer: {ops.reason}")
            stored = apply(job.service, ops, job.session_id, job.source_ids, job.today)
        except ProviderError as exc:
            self._failed(f"{exc.kind}: {exc.detail or exc}")
            return
        except Exception as exc:  # a store error, a bug: never in the caller's way
            self._failed(f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            self._failures = 0
            self.last_error = None
            self.last_skipped = list(ops.skipped)
            self.stats.rejected += len(ops.skipped)
            self.stats.learned += len(stored)
        if stored and self.on_learned is not None:
            try:
                self.on_learned(stored)
            except Exception as exc:  # a listener's failure is not the learner's
                with self._lock:
                    self.last_error = f"on_learned: {type(exc).__name__}: {exc}"

    def _failed(self, error: str) -> None:
        with self._lock:
            self._failures += 1
            self._skip = min(2**self._failures, BACKOFF_MAX)
            self.stats.failures += 1
            self.last_error = " ".join(error.split())[:500]


# -- explicit requests ---------------------------------------------------------------------------

_LEAD_EN = r"^\s*(?:(?:please|pls|plz|also|and|oh|ok|okay|hey|btw|so|now)[\s,]+)*"
_REMEMBER_EN = re.compile(
    _LEAD_EN + r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?|i\s+want\s+you\s+to\s+|i'?d\s+like\s+you\s+to\s+)?"
    r"(?P<neg>(?:don'?t|do\s+not|never)\s+forget|remember|memori[sz]e|make\s+a\s+note(?:\s+of)?|note)\b"
    r"(?:\s+(?:this|that|the\s+following|it))?\s*(?:[:,\-–—]\s*|\s+)(?P<rest>.+)$",
    re.I | re.S,
)
_FORGET_EN = re.compile(
    _LEAD_EN + r"(?:(?:can|could|would)\s+you\s+(?:please\s+)?)?forget\b"
    r"(?:\s+(?:that|about|what\s+i\s+said\s+about|what\s+i\s+told\s+you\s+about))?\s*(?:[:,\-–—]\s*|\s+)(?P<rest>.+)$",
    re.I | re.S,
)
#: what follows "remember" in a question or a reminiscence, not a request
_NOT_A_FACT_EN = re.compile(
    r"^(?:when|what|how|where|who|whom|whose|which|why|if|whether|me|us|anything|everything|"
    r"it|that|this|them|him|her|the\s+time|earlier)\b[\s?.!]*",
    re.I,
)
_LEAD_ZH = r"^\s*(?:(?:请你|请|麻烦你?|你|也|还有|还要|另外|好的?|嗯)[，,\s]*)*"
_REMEMBER_ZH = re.compile(
    _LEAD_ZH + r"(?:帮我|给我|替我)?(?:记住|记下|记一下|记着|记好|牢记|不要忘记|别忘了|别忘记|不要忘了)"
    r"(?:一下|这个|这件事|这点)?[：:，,。\s]*(?P<rest>.+)$",
    re.S,
)
_FORGET_ZH = re.compile(
    _LEAD_ZH
    + r"(?:帮我)?(?P<verb>忘记|忘掉|忘了|别记住?|不要记住?|删掉|删除)(?:这个|这件事|这条|这点)?(?:关于)?[：:，,\s]*"
    r"(?P<rest>.+)$",
    re.S,
)
#: 了/吗 after 记住 ("记住了吗"): a question about remembering, not a request
_NOT_A_FACT_ZH = re.compile(r"^(?:了|吗|没|吧|啦|么|不|什么|哪|我说的吗)")
_QUESTION_ZH = re.compile(r"[?？]|吗|怎么|怎样|为什么|如何")
_TRAILING = " \t\r\n.。!！~～"


def detect_explicit(text: str) -> tuple[str, str] | None:
    """The user's own request at the start of ``text`` to remember or forget something:
    ``("remember", what)`` or ``("forget", what)``; None for anything else — a question
    ("do you remember …?", "记得吗"), a statement ("I can't remember", "我忘记带钥匙了")."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text or len(text) > 4_000:
        return None
    m = _REMEMBER_EN.match(text)
    if m is not None:
        rest = _tidy(m.group("rest"))
        asked_politely = re.match(_LEAD_EN + r"(?:can|could|would|will)\s+you\b", text, re.I) is not None
        if m.group("neg").lower().startswith("note") and not re.match(r"(?:that|:|down)", text[m.end("neg") :].strip()):
            return None  # "note" needs "note that" / "note:" to be a request
        rest = re.sub(r"^(?:that|down|to)\s+", "", rest, flags=re.I)
        if rest and not _NOT_A_FACT_EN.match(rest) and (asked_politely or not text.endswith("?")):
            return ("remember", rest.rstrip("?").strip())
        return None
    m = _FORGET_EN.match(text)
    if m is not None:
        rest = _tidy(m.group("rest"))
        if rest and not _NOT_A_FACT_EN.fullmatch(rest) and not text.endswith("?"):
            return ("forget", rest)
        return None
    m = _REMEMBER_ZH.match(text)
    if m is not None:
        rest = _tidy(m.group("rest"))
        if rest and not _NOT_A_FACT_ZH.match(rest):
            return ("remember", rest)
        return None
    m = _FORGET_ZH.match(text)
    if m is not None:
        rest = _tidy(m.group("rest"))
        verb = m.group("verb")
        if not rest or _QUESTION_ZH.search(text):
            return None
        if verb in ("忘记", "忘了") and text.rstrip(_TRAILING).endswith(("了", "啦")):
            return None  # "我忘记带钥匙了": it happened, nobody asked
        if verb in ("删掉", "删除") and not re.search(r"记忆|记住|记录", rest):
            return None  # "删除这个文件" is not about memories
        rest = re.sub(r"^(?:这条|这个|关于)?(?:记忆|记录)[：:，,\s]*|的?(?:这条)?(?:记忆|记录)$", "", rest) or rest
        return ("forget", rest)
    return None


def _tidy(text: str) -> str:
    return " ".join(text.split()).strip(_TRAILING).strip()
