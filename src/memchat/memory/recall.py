"""What to look for in older messages: search terms from the new message, and ranking.

Latin-script words of three letters or more (minus common function words); for Chinese,
Japanese and Korean text, which has no spaces, every three- and two-character run (the
trigram index matches substrings; most Chinese words are two characters long).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from memchat.domain import SearchHit

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
_STOP = frozenset(
    """
    about above after again all also and any are because been before being between both but can
    could did does doing down during each few for from further had has have having her here hers
    herself him himself his how into its itself just let like more most myself nor not now off once
    only other our ours out over own same she should some such than that the their theirs them then
    there these they this those through too under until very was were what when where which while
    who whom why will with would you your yours yourself tell said say says remember know please
    me my mine we us it is am an as at be by do if in of on or so to up no yes ok okay thanks
    """.split()
)
#: Chinese question and function words that say nothing about the topic
_CJK_STOP = (
    "为什么",
    "是不是",
    "什么",
    "怎么",
    "哪里",
    "哪个",
    "我们",
    "你们",
    "记得",
    "告诉",
    "一下",
    "吗",
    "呢",
    "吧",
)


def query_terms(text: str, *, limit: int = 32) -> list[str]:
    """Distinct search terms of ``text``, most specific (longest) first."""
    terms: list[str] = []
    seen: set[str] = set()

    def add(term: str) -> None:
        if term not in seen:
            seen.add(term)
            terms.append(term)

    latin = _CJK.sub(" ", text.lower())
    for word in _WORD.findall(latin):
        if len(word) >= 3 and word not in _STOP and not word.isdigit():
            add(word)
        elif word.isdigit() and len(word) >= 2:
            add(word)
    for run in _CJK.findall(text):
        for stop in _CJK_STOP:
            run = run.replace(stop, " ")
        for part in run.split():
            for n in (3, 2):  # 看牙医 and 牙医: "我的牙医预约在周四" shares only the word
                for k in range(len(part) - n + 1):
                    add(part[k : k + n])
    terms.sort(key=len, reverse=True)
    return terms[:limit]


def rank(hits: Sequence[SearchHit], terms: Sequence[str]) -> list[SearchHit]:
    """Hits ordered by how many (and how rare) of the terms they contain; newer first on ties."""
    if not hits:
        return []
    lowered = [h.message.content.lower() for h in hits]
    n = len(hits)
    weights = {}
    for t in terms:
        df = sum(1 for c in lowered if t in c)
        weights[t] = math.log(1 + n / (1 + df)) * (1 + len(t) / 6) if df else 0.0

    def score(i: int) -> float:
        return sum(w for t, w in weights.items() if w and t in lowered[i])

    order = sorted(range(n), key=lambda i: (-score(i), -(hits[i].message.seq or 0)))
    return [SearchHit(hits[i].message, hits[i].session, score(i)) for i in order if score(i) > 0]
