"""The semantic index: a vector per past message, made in the background, searched in memory.

``VectorIndex`` implements ``memory/semantic.SemanticIndex`` over any ``Embedder``:

* **Indexing** runs in one daemon thread per index. ``notice(store)`` (after a turn) queues
  the store's owner; once no turn has been noticed for ``QUIET`` seconds (turns in quick
  succession, a script's, are not slowed by it; a person reading the reply leaves time), the
  worker asks the store for messages with no vector from this model (newest first), embeds a
  small batch, stores it as float16 bytes, and goes on until none is left — one batch at a
  time, so another user's turn or ``close()`` waits at most one batch; a turn that starts
  (``hold``) pauses it until it ends; the worker runs at the lowest CPU priority. ``wait`` (someone is
  waiting for the index: ``memchat memory index``) skips the quiet period. A failure (a
  remote embedder down) is recorded, the job dropped, and notices are ignored for a while that
  doubles with each failure in a row (2 s … 5 min).
* **Search** keeps each owner's vectors in one float32 matrix (read once, then only the rows
  added since); a query costs one embedding (~10 ms on the offline model, in the caller's
  thread: handed to a thread of its own to overlap the word search, it took twice as long on
  2 cores, the engine's OpenMP team fighting the caller) and one matrix-vector product, in
  this thread too (100,000 messages × 384 dimensions: ~5 ms). Messages deleted since stay in the matrix; the store
  drops them when recall reads the hits (``Store.messages_by_id``).

Made by an adapter when an embedder is available (``providers/embed_local.py``); needs numpy,
imported on first use: a one-shot ``memchat ask`` with nothing to search by meaning (one
session, or no vectors yet) does not pay its ~60 ms import.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from memchat.memory.semantic import Embedder
from memchat.stores.base import Store

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

#: how a vector is stored: little-endian float16 (half the bytes; the ranking does not move)
ENCODING = "<f2"
#: the start of a message that is embedded (an answer's first paragraphs carry its topic)
PASSAGE_CHARS = 1000
#: messages embedded per step of the worker
BATCH = 4
#: the longest pause after failures in a row, in seconds
BACKOFF_MAX = 300.0
#: vectors read from the store per query when catching up
PAGE = 20_000
#: query vectors kept (``/context`` then the turn, a retry, ask for the same one)
QUERIES_KEPT = 8
#: seconds without a new turn before the worker embeds (it leaves the cores to the turns)
QUIET = 1.0
#: the longest pause a turn's ``hold`` makes (a turn that fails never says it ended)
HOLD_MAX = 60.0


def _lowest_priority() -> None:
    """Run this thread (and the engine threads it starts, which inherit it) at the lowest CPU
    priority, so that indexing takes only the time the turns leave (Linux: nice is per thread;
    elsewhere nothing changes)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


@cache
def _numpy() -> Any:
    import numpy  # on first use (see the module's docstring)

    return numpy


@dataclass(slots=True)
class _Matrix:
    """One owner's vectors: ``rows`` of ``vectors`` are in use, for message ``ids``."""

    ids: Any = None  # np.ndarray (int64), made with the first vectors
    vectors: Any = None  # np.ndarray (float32, rows × dimensions)
    rows: int = 0
    last: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def extend(self, found: Sequence[tuple[int, bytes]]) -> None:
        np = _numpy()
        new = np.stack([np.frombuffer(blob, dtype=ENCODING) for _, blob in found]).astype(np.float32)
        if self.ids is None or self.rows + len(found) > len(self.ids) or new.shape[1] != self.vectors.shape[1]:
            size = max(1024, 2 * (self.rows + len(found)))
            ids = np.zeros(size, dtype=np.int64)
            vectors = np.zeros((size, new.shape[1]), dtype=np.float32)
            if self.rows and self.vectors is not None and self.vectors.shape[1] == new.shape[1]:
                ids[: self.rows] = self.ids[: self.rows]
                vectors[: self.rows] = self.vectors[: self.rows]
            else:
                self.rows = 0
            self.ids, self.vectors = ids, vectors
        end = self.rows + len(found)
        self.ids[self.rows : end] = [mid for mid, _ in found]
        self.vectors[self.rows : end] = new
        self.rows = end
        self.last = int(found[-1][0])


@dataclass(slots=True)
class IndexStats:
    """What the worker did since the index was made."""

    embedded: int = 0  # messages given a vector
    failures: int = 0  # batches that failed
    last_error: str | None = None


class VectorIndex:
    """Message vectors per owner: background indexing, in-memory nearest-neighbour search."""

    def __init__(self, embedder: Embedder, *, batch: int = BATCH, passage_chars: int = PASSAGE_CHARS) -> None:
        self.embedder = embedder
        self.batch = batch
        self.passage_chars = passage_chars
        self.stats = IndexStats()
        self._matrices: dict[str, _Matrix] = {}
        self._matrices_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: dict[str, Store] = {}  # owners waiting, in order of notice
        self._current: str | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._resume_at = 0.0
        self._last_notice = 0.0
        self._held_until = 0.0
        self._waiters = 0  # callers of wait(): the quiet period is skipped for them
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queries_lock = threading.Lock()

    @property
    def embedded(self) -> int:
        return self.stats.embedded

    # -- search -------------------------------------------------------------------------

    def _query(self, text: str) -> np.ndarray:
        with self._queries_lock:
            found = self._queries.get(text)
            if found is not None:
                self._queries.move_to_end(text)
                return found
        numpy = _numpy()
        vector: np.ndarray = numpy.asarray(self.embedder.query(text), dtype=numpy.float32)  # a failure is not kept
        with self._queries_lock:
            self._queries[text] = vector
            while len(self._queries) > QUERIES_KEPT:
                self._queries.popitem(last=False)
        return vector

    def forget_queries(self) -> None:
        """Drop the query vectors kept (a benchmark that times a cold turn)."""
        with self._queries_lock:
            self._queries.clear()

    def nearest(self, store: Store, text: str, limit: int) -> list[tuple[int, float]]:
        if limit <= 0 or not text.strip():
            return []
        matrix = self._matrix(store)
        with matrix.lock:
            self._catch_up(store, matrix)
            if matrix.rows == 0:
                return []
            query = self._query(text)
            np = _numpy()
            if query.shape[0] != matrix.vectors.shape[1]:
                return []  # vectors of another size: remade as the worker goes on
            # einsum, not ``@``: OpenBLAS answers a matrix-vector product with threads that then
            # spin for a while and starve the embedding engine's OpenMP team (the next query took
            # 12-100 ms instead of 8); einsum stays in this thread, 5 ms at 100,000 rows
            sims = np.einsum("ij,j->i", matrix.vectors[: matrix.rows], query)
            k = min(limit, matrix.rows)
            top = np.argpartition(-sims, k - 1)[:k]
            top = top[np.argsort(-sims[top], kind="stable")]
            return [(int(matrix.ids[i]), float(sims[i])) for i in top]

    def _matrix(self, store: Store) -> _Matrix:
        key = f"{store.cache_key}|{self.embedder.name}"
        with self._matrices_lock:
            found = self._matrices.get(key)
            if found is None:
                found = self._matrices[key] = _Matrix()
            return found

    def _catch_up(self, store: Store, matrix: _Matrix) -> None:
        while True:
            found = store.vectors_after(self.embedder.name, matrix.last, PAGE)
            if found:
                matrix.extend(found)
            if len(found) < PAGE:
                return

    # -- indexing -----------------------------------------------------------------------

    def notice(self, store: Store) -> None:
        with self._cond:
            if self._closed or time.monotonic() < self._resume_at:
                return
            self._queue.setdefault(store.cache_key, store)
            self._last_notice = time.monotonic()
            self._held_until = 0.0
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="memchat-vectors", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def hold(self) -> None:
        with self._cond:
            self._held_until = time.monotonic() + HOLD_MAX

    def pending(self, store: Store) -> bool:
        with self._cond:
            return store.cache_key in self._queue

    def cancel(self, store: Store) -> None:
        with self._cond:
            self._queue.pop(store.cache_key, None)
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._waiters += 1
            self._cond.notify_all()
            try:
                while self._queue and not self._closed:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(left)
                return not self._queue
            finally:
                self._waiters -= 1

    def close(self) -> None:
        with self._queries_lock:
            self._queries.clear()
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        _lowest_priority()
        while True:
            with self._cond:
                while not self._closed:
                    if not self._queue:
                        self._cond.wait()
                        continue
                    quiet = max(self._last_notice + QUIET, self._held_until) - time.monotonic()
                    if quiet <= 0 or self._waiters:
                        break
                    self._cond.wait(quiet)  # a turn just ended: the next may follow at once
                if self._closed:
                    return
                key, store = next(iter(self._queue.items()))
                self._current = key
            try:
                finished = self._step(store)
            except Exception as exc:  # a failed batch must never reach a turn
                finished = True
                with self._cond:
                    cancelled = key not in self._queue  # its store closed meanwhile: not a failure
                if not cancelled:
                    self._failed(exc)
            else:
                self._failures = 0
            with self._cond:
                self._current = None
                if finished:
                    self._queue.pop(key, None)
                elif key in self._queue:  # the next owner's turn, then this one's again
                    self._queue[key] = self._queue.pop(key)
                self._cond.notify_all()

    def _step(self, store: Store) -> bool:
        """Embed one batch of ``store``'s messages that have no vector; True when none is left."""
        todo = store.vectors_missing(self.embedder.name, self.batch)
        if not todo:
            return True
        vectors = self.embedder.passages([text[: self.passage_chars] for _, text in todo])
        np = _numpy()
        blobs = [np.asarray(v, dtype=np.float32).astype(ENCODING).tobytes() for v in vectors]
        store.add_vectors(self.embedder.name, [(mid, blob) for (mid, _), blob in zip(todo, blobs, strict=True)])
        self.stats.embedded += len(todo)
        return len(todo) < self.batch

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        self.stats.failures += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        pause = min(BACKOFF_MAX, 2.0**self._failures)
        with self._cond:
            self._resume_at = time.monotonic() + pause
        log.warning("indexing messages for recall failed (%s); paused for %.0f s", self.stats.last_error, pause)
