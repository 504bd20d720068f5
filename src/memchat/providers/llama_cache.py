"""Keep llama.cpp's KV cache when the context's beginning changes (its "context shift").

``Llama.generate`` reuses only the longest common *prefix* of the new prompt with what is
evaluated. When memory moves the window (the oldest turns leave) or extends the summary, the
prompt differs early, and everything after the difference — thousands of tokens of turns that
are still there, only earlier — would be evaluated again (tens of seconds on a CPU).

``reuse_moved`` finds the run of cached tokens that the new prompt still holds further on,
removes the cells before it that left, moves the run to its new positions
(``llama_memory_seq_add``: llama.cpp re-rotates the keys), and evaluates only what is new
before it. This is what llama.cpp's own server does when a conversation outgrows its context
(``n_discard``): the moved tokens keep the attention they had, computed when the turns
before them were still there — a small approximation for a large saving, and it affects only
the local model's KV cache (nothing stored, nothing another provider sees).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

#: a run shorter than this is not moved (the tokens it would keep could be a common phrase found
#: in another context) unless it ends the cache (``moved_run``)
MIN_RUN = 64
#: tokens that identify where a cached run continues in the new prompt (and the shortest run moved)
GRAM = 16


def moved_run(cached: Sequence[int], prompt: Sequence[int], start: int) -> tuple[int, int, int] | None:
    """The longest run ``cached[j:j+k] == prompt[i:i+k]`` with ``j, i >= start`` that saves more
    than it costs (``i - start``, the new tokens to evaluate before it, stay below ``k``), as
    ``(j, i, k)``; None when there is none. A run is at least ``MIN_RUN`` tokens, or at least
    ``GRAM`` when it is the end of the cache: the reply just generated, which the next prompt
    still holds whole when only what followed its question changed (recall placed after the
    question: the old recalled block leaves, the reply stays — ~60 tokens at 5,000 tokens of
    context cost a second to evaluate again)."""
    if len(cached) - start < GRAM or len(prompt) - start < GRAM:
        return None
    where: dict[tuple[int, ...], list[int]] = {}
    for i in range(start, len(prompt) - GRAM + 1, 1):
        where.setdefault(tuple(prompt[i : i + GRAM]), []).append(i)
    best: tuple[int, int, int] | None = None
    j = start
    while j <= len(cached) - GRAM:
        found = where.get(tuple(cached[j : j + GRAM]))
        longest = 0
        for i in found or ():
            k = GRAM
            while j + k < len(cached) and i + k < len(prompt) and cached[j + k] == prompt[i + k]:
                k += 1
            long_enough = k >= MIN_RUN or j + k == len(cached)
            if long_enough and i - start < k and (best is None or k > best[2]):
                best = (j, i, k)
            longest = max(longest, k)
        if best is not None and best[0] + best[2] >= len(cached):
            break  # the run reaches the end of the cache: nothing longer follows
        j += max(1, longest - GRAM + 1) if longest else 1
    return best


def reuse_moved(
    llama: Any,
    prompt: Sequence[int],
    *,
    step: int | None = None,
    stop: Callable[[], bool] | None = None,
    step_lock: AbstractContextManager[Any] | None = None,
) -> tuple[int, int]:
    """Make ``llama``'s cache hold ``prompt``'s beginning up to the end of the longest cached run
    it still contains (see the module), so that ``generate`` evaluates only what follows:
    ``(moved, evaluated)``, the cached tokens moved and the new ones evaluated before them
    (``(0, 0)``: nothing done, the cache is as it was).

    New tokens before the run are evaluated first, as sequence 1 (which shares the prefix's
    cells), ``step`` tokens at a time, holding ``step_lock`` for each step (background work lets
    a turn that starts wait for the step in flight); when ``stop()`` says so between two steps,
    sequence 0 is left as it was and what sequence 1 got stays for the next call
    (``_evaluate_apart``). Only then is the run moved and are they given to
    sequence 0 (llama.cpp accepts a batch of a sequence only at the position after its last
    one, and the moved run sits beyond them). A context made with one sequence
    (``two_sequences`` not used) moves a run only where nothing new precedes it."""
    n = int(llama.n_tokens)
    cached = [int(t) for t in llama.input_ids[:n].tolist()]
    start = 0
    for a, b in zip(cached, prompt, strict=False):
        if a != b:
            break
        start += 1
    if start >= len(prompt) - 1:
        return 0, 0
    # the prompt's last token is left to generate(), which evaluates it for the first logits
    run = moved_run(cached, prompt[:-1], start)
    if run is None:
        return 0, 0
    ctx = llama._ctx
    import llama_cpp

    j, i, k = run
    memory = ctx.memory
    if memory is None or not llama_cpp.llama_memory_can_shift(memory):
        return 0, 0
    if i > start and llama_cpp.llama_n_seq_max(ctx.ctx) < 2:
        return 0, 0
    if i > start and n + (i - start) > llama.n_ctx():  # no free cells for them beside the cache
        return 0, 0
    stopped = False
    try:
        if i > start and not _evaluate_apart(
            llama, prompt[start:i], start, step or llama.n_batch, stop, step_lock or contextlib.nullcontext()
        ):
            stopped = True  # what was evaluated stays for the next call (``_evaluate_apart``)
            return 0, 0
        if not ctx.kv_cache_seq_rm(0, start, j):
            return 0, 0
        ctx.kv_cache_seq_rm(0, j + k, -1)
        if i != j:
            ctx.kv_cache_seq_shift(0, j, j + k, i - j)
        if i > start:
            llama_cpp.llama_memory_seq_cp(memory, 1, 0, start, i)
    except (RuntimeError, ValueError):
        ctx.kv_cache_seq_rm(0, start, -1)  # back to the common prefix: generate() evaluates the rest
        llama.n_tokens = start
        return 0, 0
    finally:
        if i > start and not stopped:
            drop_apart(llama)
    llama.input_ids[start : i + k] = prompt[start : i + k]
    llama.n_tokens = i + k
    return k, i - start


@dataclass(slots=True)
class _Apart:
    """What sequence 1 holds between calls: ``done``, evaluated at positions ``at…`` after
    ``prefix`` (sequence 0's tokens before ``at`` then)."""

    at: int
    prefix: list[int]
    done: list[int] = field(default_factory=list)


#: per ``Llama``: the tokens evaluated apart by a call that was stopped (warming between turns
#: gives way to every turn; the next call goes on from there instead of starting over)
_APART: weakref.WeakKeyDictionary[Any, _Apart] = weakref.WeakKeyDictionary()


def apart_size(llama: Any) -> int:
    """Cells sequence 1 holds beside the cache (a stopped warming's progress)."""
    kept = _APART.get(llama)
    return len(kept.done) if kept is not None else 0


def drop_apart(llama: Any) -> None:
    """Free sequence 1's cells (a turn that needs them, or a warming made useless)."""
    import llama_cpp

    _APART.pop(llama, None)
    memory = llama._ctx.memory
    if memory is not None:
        llama_cpp.llama_memory_seq_rm(memory, 1, -1, -1)


def _evaluate_apart(
    llama: Any,
    tokens: Sequence[int],
    at: int,
    step: int,
    stop: Callable[[], bool] | None,
    step_lock: AbstractContextManager[Any],
) -> bool:
    """Evaluate ``tokens`` at positions ``at…`` as sequence 1, which sees the prefix before
    ``at`` (sequence 0's cells there, shared) and nothing of sequence 0 after it; ``step``
    tokens per batch. False when ``stop()`` said so between two batches: what was evaluated
    stays in sequence 1, and a later call for the same tokens after the same prefix goes on
    from there (the turns in between use sequence 0 only, past it). Checked against llama.cpp
    before it is trusted: a turn that cut the cache before it removed its cells too."""
    import llama_cpp

    memory = llama._ctx.memory
    kept = _APART.get(llama)
    if not (
        kept is not None
        and kept.at == at
        and list(tokens[: len(kept.done)]) == kept.done
        and [int(t) for t in llama.input_ids[:at].tolist()] == kept.prefix
        and llama_cpp.llama_memory_seq_pos_min(memory, 1) == 0
        and llama_cpp.llama_memory_seq_pos_max(memory, 1) == at + len(kept.done) - 1
    ):
        llama_cpp.llama_memory_seq_rm(memory, 1, -1, -1)
        llama_cpp.llama_memory_seq_cp(memory, 0, 1, 0, at)
        kept = _APART[llama] = _Apart(at, [int(t) for t in llama.input_ids[:at].tolist()])
    batch = llama._batch.batch
    step = max(1, min(step, llama.n_batch))
    for first in range(len(kept.done), len(tokens), step):
        if first and stop is not None and stop():
            return False
        part = tokens[first : first + step]
        batch.n_tokens = len(part)
        for x, token in enumerate(part):
            batch.token[x] = token
            batch.pos[x] = at + first + x
            batch.seq_id[x][0] = 1
            batch.n_seq_id[x] = 1
            batch.logits[x] = False
        batch.logits[len(part) - 1] = True
        with step_lock:
            llama._ctx.decode(llama._batch)
        kept.done.extend(int(t) for t in part)
    return True


@contextlib.contextmanager
def two_sequences() -> Iterator[None]:
    """While a ``llama_cpp.Llama`` is made: its context holds two sequences in one unified KV
    cache (``_evaluate_before`` needs the second; llama-cpp-python has no parameter for it)."""
    import llama_cpp.llama_cpp as bindings

    default = bindings.llama_context_default_params

    def params() -> Any:
        made = default()
        made.n_seq_max = 2
        made.kv_unified = True
        return made

    bindings.llama_context_default_params = params
    try:
        yield
    finally:
        bindings.llama_context_default_params = default
