"""Words for the ranked (BM25) index and its queries, in English and Chinese alike.

The word index (SQLite FTS5 ``porter unicode61``; PostgreSQL ``to_tsvector('english', …)``)
splits text at spaces and punctuation and stems English words. Chinese has no spaces, so a
run of Chinese characters is indexed as its overlapping two-character words (bigrams: most
Chinese words are two characters long; 看牙医 → 看牙 牙医): ``index_text`` gives that form
for a text with Chinese in it (``None`` for any other text: the index reads the text itself).

``query_words`` are the words of a question worth looking for: no function words, no
question words ("what", "when", 什么, 哪里), each once.
"""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    let me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves tell told said say says
    know please us ok okay thanks thank yes yeah hi hello hey get got going go went really
    think thought want wanted like just can't don't i'm i've it's that's what's
    did didn't anything something remember recall mentioned mention earlier previously ago
    """.split()
)
#: Chinese function and question words: removed from a question before it is split into words
CJK_STOPWORDS = (
    "为什么",
    "是不是",
    "有没有",
    "什么",
    "怎么",
    "哪里",
    "哪个",
    "哪儿",
    "多少",
    "我们",
    "你们",
    "他们",
    "记得",
    "告诉",
    "一下",
    "之前",
    "以前",
    "提到",
    "说过",
    "的",
    "了",
    "吗",
    "呢",
    "吧",
    "是",
    "我",
    "你",
    "在",
    "和",
    "有",
    "过",
    "也",
    "都",
    "还",
    "就",
    "个",
    "请",
)


_CJK_STOP_CHARS = frozenset(w for w in CJK_STOPWORDS if len(w) == 1)


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def _bigrams(run: str) -> list[str]:
    if len(run) < 2:
        return [run] if run else []
    return [run[k : k + 2] for k in range(len(run) - 1)]


def index_text(text: str) -> str | None:
    """The form of ``text`` the word index reads: Chinese runs as their bigrams, the rest as it
    is; ``None`` when the text has no Chinese (the index reads the text itself)."""
    if not has_cjk(text):
        return None
    return _CJK.sub(lambda m: " " + " ".join(_bigrams(m.group())) + " ", text)


def query_words(text: str, *, limit: int = 24) -> list[str]:
    """The distinct words of ``text`` worth searching for, in order of appearance: Latin-script
    words of two letters or more that are not function words, numbers, and the bigrams of
    Chinese runs once function words are taken out."""
    words: list[str] = []
    seen: set[str] = set()

    def add(word: str) -> None:
        if word not in seen:
            seen.add(word)
            words.append(word)

    for word in _WORD.findall(_CJK.sub(" ", text.lower())):
        if word.isdigit():
            add(word)
        elif len(word) >= 2 and word not in STOPWORDS:
            add(word)
    for run in _CJK.findall(text):
        for stop in CJK_STOPWORDS:
            if len(stop) > 1:  # question words and the like: cut out
                run = run.replace(stop, " ")
        for part in run.split():
            # every two-character word of what is left, unless both characters are function
            # words (我的, 是我): 我住在 keeps 我住 and 住在, which the index holds for 我住在杭州
            for gram in _bigrams(part):
                if len(gram) == 2 and not (gram[0] in _CJK_STOP_CHARS and gram[1] in _CJK_STOP_CHARS):
                    add(gram)
    return words[:limit]


def fts_query(words: list[str]) -> str:
    """An FTS5 query matching any of ``words`` (each quoted: no operator is read into them)."""
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def names(text: str) -> list[str]:
    """Capitalised words that do not start a sentence: names of people, places, things."""
    found: list[str] = []
    for m in re.finditer(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]{2,})\b", text):
        word = m.group(1).lower()
        if word not in STOPWORDS and word not in found:
            found.append(word)
    return found
