"""Semantic recall's contracts: what an embedding model offers, and what recall asks of the
index built with one.

Recall is lexical first (BM25 over the word index, ``memory/bm25.py``); a question that
shares no word with what was said ("What is my dog called?" for "…a rescue puppy, we called
her Biscuit") needs meaning instead. When an embedding model is available — an offline one
installed with memchat, or a provider's ``/v1/embeddings`` — messages get a vector each in the
background (never on the reply's path) and recall fuses the nearest ones with BM25's hits.
Without one, recall is lexical only: nothing here is required.

The index itself (``memory/vectors.py``) needs numpy; it is made by the composition root
(``factory.py``) only when an embedder exists, so the core imports neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from memchat.stores.base import Store


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

    def prefetch(self, text: str) -> None:
        """Start embedding ``text`` now, in another thread, for a ``nearest`` that follows (the
        planner calls it first, so the embedding overlaps the word search)."""
        ...

    def nearest(self, store: Store, text: str, limit: int) -> list[tuple[int, float]]:
        """(message id, similarity) of the ``limit`` messages of ``store``'s owner closest in
        meaning to ``text``, best first; [] while nothing is indexed yet."""
        ...

    def notice(self, store: Store) -> None:
        """``store``'s owner has new messages: index them soon, off the caller's path."""
        ...

    def pending(self, store: Store) -> bool:
        """Whether indexing for ``store``'s owner is queued or running."""
        ...

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until nothing is left to index (True) or ``timeout`` seconds passed (False)."""
        ...

    def close(self) -> None:
        """Stop indexing (what is half done is redone next time)."""
        ...
