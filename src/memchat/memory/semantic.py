"""Semantic recall's contracts: what an embedding model offers, and what recall asks of the
index built with one.

Recall is lexical first (BM25 over the word index, ``memory/bm25.py``); a question that
shares no word with what was said ("What is my dog called?" for "…a rescue puppy, we called
her Biscuit") needs meaning instead. When an embedding model is available — an offline one
installed with memchat, or a provider's ``/v1/embeddings`` — messages get a vector each in the
background (never on the reply's path) and recall fuses the nearest ones with BM25's hits.
Without one, recall is lexical only: nothing here is required.

The index itself (``memory/vectors.py``) needs numpy; it is made by an adapter only when an
embedder exists, so the core imports neither. An ``Agent`` made without saying finds the default
index through the ``memchat.semantic`` entry points (memchat's own: the offline model of
``providers/embed_local.py``, when installed), so the core names no concrete adapter.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from memchat.stores.base import Store

#: the entry-point group of semantic index factories: callables taking nothing and returning a
#: ``SemanticIndex``, or None when their model is not available here
ENTRY_POINTS = "memchat.semantic"
#: the environment variable that switches the default off (``off``; see ``config.py``)
ENV = "MEMCHAT_EMBEDDINGS"


class Embedder(Protocol):
    """An embedding model: unit-length vectors whose dot product is the texts' similarity."""

    #: what made the vectors (kept with each: vectors of another model are remade)
    name: str

    def query(self, text: str) -> Sequence[float]:
        """The vector of a search query (a new message)."""
        ...

    def passages(self, texts: Sequence[str]) -> Sequence[Sequence[float]]:
        """The vectors of stored texts (past messages), one per text, in order."""
        ...


class SemanticIndex(Protocol):
    """Nearest past messages by meaning, per user; indexing happens in the background."""

    @property
    def embedded(self) -> int:
        """Messages given a vector since the index was made (progress)."""
        ...

    def nearest(self, store: Store, text: str, limit: int) -> list[tuple[int, float]]:
        """(message id, similarity) of the ``limit`` messages of ``store``'s owner closest in
        meaning to ``text``, best first; [] while nothing is indexed yet."""
        ...

    def notice(self, store: Store) -> None:
        """``store``'s owner has new messages: index them soon, off the caller's path."""
        ...

    def hold(self) -> None:
        """A turn starts: indexing pauses (after the batch in flight) until ``notice`` after it,
        so the turn has the cores (a local model's threads stall when one is preempted)."""
        ...

    def pending(self, store: Store) -> bool:
        """Whether indexing for ``store``'s owner is queued or running."""
        ...

    def cancel(self, store: Store) -> None:
        """Stop indexing for ``store`` (it is being closed); a batch in flight may fail quietly."""
        ...

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until nothing is left to index (True) or ``timeout`` seconds passed (False)."""
        ...

    def close(self) -> None:
        """Stop indexing (what is half done is redone next time)."""
        ...


_default: list[SemanticIndex | None] = []
_default_lock = threading.Lock()


def default_index() -> SemanticIndex | None:
    """The process-wide semantic index an ``Agent`` uses unless told otherwise: the first one an
    installed ``memchat.semantic`` entry point makes, or None (recall by words). None as well
    when ``MEMCHAT_EMBEDDINGS`` is ``off``. Made once; shared by every agent of the process."""
    if os.environ.get(ENV, "").strip().lower() in ("off", "0", "false", "no", "none"):
        return None
    with _default_lock:
        if not _default:
            from importlib.metadata import entry_points  # 30 ms to import: only for the first library agent

            found: SemanticIndex | None = None
            for point in sorted(entry_points(group=ENTRY_POINTS), key=lambda p: p.name):
                make: Callable[[], SemanticIndex | None] = point.load()
                found = make()
                if found is not None:
                    break
            _default.append(found)
        return _default[0]


def index_all(
    index: SemanticIndex, store: Store, *, on_progress: Callable[[int], None] | None = None, poll: float = 1.0
) -> int:
    """Index every message of ``store``'s owner that has no vector yet, now (``memchat memory
    index``, after importing a long history): the background worker does it while this waits,
    calling ``on_progress`` with the count so far every ``poll`` seconds. Returns the count."""
    start = index.embedded
    index.notice(store)
    while not index.wait(poll):
        if on_progress is not None:
            on_progress(index.embedded - start)
    return index.embedded - start
