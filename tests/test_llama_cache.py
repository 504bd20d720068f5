"""Finding the cached run a new prompt still holds (providers/llama_cache.moved_run): pure
token lists, no model (the model's side is tested in test_local_llama.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memchat.providers.llama_cache import GRAM, MIN_RUN, moved_run

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
        assert k >= MIN_RUN or (k >= GRAM and j + k == len(cached))  # short: only the cache's end
        assert j >= start and i >= start and i - start < k
        assert cached[j : j + k] == prompt[i : i + k]


@given(
    prefix=tokens,
    recalled=st.lists(st.integers(0, 50), min_size=1, max_size=200),
    reply=st.lists(st.integers(0, 50), min_size=GRAM, max_size=MIN_RUN),
    new=st.lists(st.integers(0, 50), min_size=0, max_size=GRAM - 1),
    recalled_again=st.lists(st.integers(60, 100), max_size=200),  # another recalled block
)
def test_the_reply_just_generated_stays_when_the_recalled_block_before_it_leaves(
    prefix: list[int], recalled: list[int], reply: list[int], new: list[int], recalled_again: list[int]
) -> None:
    """Recall follows the question: the next prompt holds the question and the reply but not the
    old recalled block between them. The reply (shorter than ``MIN_RUN``: most are) ends the
    cache, so it is moved, not evaluated again."""
    cached = [1000, *prefix, 1001, *recalled, 1002, *reply]
    prompt = [1000, *prefix, 1002, *reply, 1003, *new, 1004, *recalled_again, 1005]
    start = len(prefix) + 1
    run = moved_run(cached, prompt, start)
    assert run is not None
    j, i, k = run
    assert (i, k) == (start, len(reply) + 1) and j == start + len(recalled) + 1


def test_a_short_run_inside_the_cache_is_not_moved() -> None:
    """A few tokens shared by chance (a common phrase) in the middle of what left are not kept:
    their cached meaning came from another context."""
    phrase = list(range(200, 200 + GRAM + 4))
    cached = [0, 1, 2, *range(300, 340), *phrase, *range(400, 450)]
    prompt = [0, 1, 2, *phrase, *range(500, 600)]
    assert moved_run(cached, prompt, 3) is None
    assert moved_run(cached[:-50], prompt, 3) == (43, 3, len(phrase))  # the same phrase ending the cache


def test_nothing_is_moved_when_nothing_long_stays() -> None:
    cached = list(range(300))
    assert moved_run(cached, [0, 1, 2, *range(500, 800)], 3) is None
    assert moved_run(cached, [0, *range(1, MIN_RUN - 1), 999], 0) is None
