"""Okapi BM25 over stored messages, in two phases that keep a search's cost bounded by the
query, not by the length of the history.

1. *Candidates*: for each query word, the messages holding it (from the word index; for a
   word held by more than ``per_word`` messages only the newest ``per_word`` of them: such
   a word is common, its idf small), ranked by the sum of their words' idf.
2. *Score*: the best candidates are read and scored with BM25 proper — idf from the index's
   document frequencies, the term frequency saturated (``K1``) and normalised by the
   message's length against the average (``B``).

Term frequency is counted on the message text: a query word matches a word of the text
that starts with its stem (``recommend`` in "recommended", "recommendation"), and a
Chinese bigram anywhere in the text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from memchat.memory.terms import has_cjk

K1 = 1.2
B = 0.75


def idf(df: int, n: int) -> float:
    """BM25's inverse document frequency (Robertson–Spärck Jones, kept positive)."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


@lru_cache(maxsize=8192)
def stem(word: str) -> str:
    """A conservative prefix of an English word that its inflections share."""
    for suffix in ("ational", "ization", "fulness", "ousness", "iveness", "ations", "ation", "ments", "ment",
                   "ness", "ing", "ies", "ied", "ers", "er", "ed", "es", "ly", "s", "e", "y"):  # fmt: skip
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=8192)
def _pattern(word: str) -> tuple[str, str]:
    """What ``term_frequency`` looks for: (the text to count, the text a start must begin with,
    or "" for a Chinese bigram, counted anywhere). Worked out once per word, not per message."""
    if has_cjk(word):
        return word, ""
    key = stem(word)
    return " " + key, key


def term_frequency(word: str, lowered: str) -> int:
    """How often ``word`` occurs in ``lowered`` (lower-case text): a Chinese bigram anywhere,
    an English word as a word starting with its stem (the start approximated by a space)."""
    counted, start = _pattern(word)
    if not start:
        return lowered.count(counted)
    return lowered.count(counted) + (1 if lowered.startswith(start) else 0)


def score(
    words: Sequence[str], text: str, length: int, idfs: dict[str, float], average: float, found: Sequence[str] = ()
) -> tuple[float, list[str]]:
    """BM25 of ``text`` (``length`` tokens) for ``words``; also the words it holds. A word the
    index ``found`` in it counts at least once (the index stems more than ``term_frequency``)."""
    total = 0.0
    held: list[str] = []
    norm = K1 * (1 - B + B * length / max(average, 1.0))
    lowered = text.lower()
    for w in words:
        tf = max(term_frequency(w, lowered), 1 if w in found else 0)
        if tf:
            held.append(w)
            total += idfs.get(w, 0.0) * tf * (K1 + 1) / (tf + norm)
    return total, held
