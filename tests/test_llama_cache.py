"""Finding the cached run a new prompt still holds (providers/llama_cache.moved_run): pure
token lists, no model (the model's side is tested in test_local_llama.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memchat.providers.llama_cache import MIN_RUN, moved_run

tokens = st.lists(st.integers(min_value=0, max_value=50), min_size=0, max_size=400)


@given(
    prefix=tokens,
    dropped=tokens,
    kept=st.lists(st.integers(0, 50), min_size=MIN_RUN, max_size=400),
    new=tokens,
    more=tokens,
)
def test_the_turns_that_stay_are_found_whole(
    prefix: list[int], dropped: list[int], kept: list[int], new: list[int], more: list[int]
) -> None:
    """The window moved (``dropped`` left) and/or the system message grew (``new``): the kept run
    is found, at least as long as what stayed, and it really is the same tokens on both sides."""
    cached = [1000, *prefix, 1001, *dropped, 1002, *kept]
    prompt = [1000, *prefix, 1003, *new, 1002, *kept, 1004, *more]
    start = len(prefix) + 1
    run = moved_run(cached, prompt, start)
    if len(new) + 1 >= len(kept) + 1:  # more to evaluate before it than it saves: not worth it
        return
    assert run is not None
    j, i, k = run
    assert j >= start and i >= start and k >= len(kept) + 1
    assert cached[j : j + k] == prompt[i : i + k]
    assert i - start < k


@given(cached=tokens, prompt=tokens, start=st.integers(0, 50))
def test_any_run_found_is_real_and_worth_moving(cached: list[int], prompt: list[int], start: int) -> None:
    run = moved_run(cached, prompt, start)
    if run is not None:
        j, i, k = run
        assert k >= MIN_RUN and j >= start and i >= start and i - start < k
        assert cached[j : j + k] == prompt[i : i + k]


def test_nothing_is_moved_when_nothing_long_stays() -> None:
    cached = list(range(300))
    assert moved_run(cached, [0, 1, 2, *range(500, 800)], 3) is None
    assert moved_run(cached, [0, *range(1, MIN_RUN - 1), 999], 0) is None
