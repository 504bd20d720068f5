"""Dates in a message's words ("yesterday", "last Friday", "on March 3", "上周五", "3月3日"),
resolved against the day the message was written.

``resolve_date(text, today)`` returns the day the text says something happened or will happen,
or ``None`` when it names none. It is conservative: a number is a date only inside a date
expression (``2026-03-04``, ``March 4``, ``3月4日``, ``in 3 days``, ``3天前``); slashed forms
such as ``3/4`` or ``3/4/2025`` are never read (month/day or day/month cannot be told apart),
nor a year alone ("in 2025"), a month alone ("in March"), a range ("Monday to Friday",
"周一到周五") or a habit ("every Monday", "每周五").

The rules, with weeks starting on Monday:

==========================================  =====================================================
today, tonight, this morning/afternoon/     ``today`` (今天 今晚 今早 今日)
evening
yesterday, last night                       ``today - 1`` (昨天 昨晚 昨日); 前天 ``- 2``; 大前天 ``- 3``
the day before yesterday                    ``today - 2``
tomorrow                                    ``today + 1`` (明天 明晚 明早 明日); 后天 ``+ 2``; 大后天 ``+ 3``
the day after tomorrow                      ``today + 2``
N days/weeks/months/years ago               back that far (a month ago: the same day of the month,
                                            clamped to the month's length); N天前 N周前 N个月前 N年前
in N days/weeks/months/years,               ahead that far (N天后 N周后 N个月后 N年后); "in N days"
N days from now                             in a sentence about the past is a duration, not a date
last week / next week                       ``today ∓ 7`` (上周 上星期 上个礼拜 / 下周 下星期)
last month / next month                     the same day of the previous/next month, clamped
                                            (上个月 上月 / 下个月 下月)
last year / next year                       the same day a year before/after (去年, 前年 ``- 2``;
                                            明年, 后年 ``+ 2``); 29 February becomes the 28th
last <weekday>                              that weekday of the previous week (上周五 上星期五 上个礼拜五)
this <weekday>                              that weekday of this week (这周三 本周三 这个星期三)
next <weekday>                              that weekday of the next week (下周一 下星期一 下个礼拜一)
last / this / next weekend                  the Saturday of that week (上周末 这周末 下周末)
(on) <weekday>                              the nearest one after today (1–7 days ahead), or
                                            before today (1–7 days back) when the sentence reads
                                            as past (周五, 星期五, 礼拜五 likewise; 了/已经 mark
                                            the past in Chinese); "this past"/"this coming"
                                            <weekday> choose explicitly
2026-03-04, 2026/3/4                        that day
March 4, March 4th, 4 March, the 4th of     that day; without a year, the nearest such day to
March, March 4th 2025, 4 March 2025         ``today`` (on or before today when the sentence reads
                                            as past, on or after when it reads as future)
3月4日, 3月4号, 三月四日, 2025年3月4日,      likewise; 上个月5号 is the 5th of last month
去年12月25日
==========================================  =====================================================

"this week", "this month", "this year" (这周, 这个月, 今年) name no day and give ``None``; so do
vague amounts ("a few days ago", 几天前). When the text has several date expressions the first
one in the text wins (at the same place, the longest).
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

__all__ = ["resolve_date"]

#: the furthest a relative expression is followed ("in 999 days"); anything larger is not a date
MAX_COUNT = 999

_EN_MONTHS = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}
_EN_WEEKDAYS = {
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
_EN_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "a couple of": 2,
    "a couple": 2,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
}
_ZH_DIGITS = {
    "〇": 0,
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_ZH_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_UNIT_DAYS = {"day": 1, "week": 7, "天": 1, "周": 7, "星期": 7, "礼拜": 7}

# -- the pieces of the patterns ---------------------------------------------------------------

_MONTH = r"(?P<month>" + "|".join(sorted(_EN_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?P<weekday>" + "|".join(_EN_WEEKDAYS) + r")"
_EN_NUM = (
    r"(?<![\d.,])(?P<num>\d{1,3}|" + "|".join(re.escape(k) for k in sorted(_EN_NUMBERS, key=len, reverse=True)) + r")"
)
_EN_UNIT = r"(?P<unit>day|week|month|year)s?"
_ORD = r"(?:st|nd|rd|th)?"
_ZH_NUM = r"(?<!\d)(?P<num>\d{1,3}|[一二两三四五六七八九十]{1,3})"
#: 3月前 is "before March" and 3日前 "before the 3rd": months need 个, days are 天
_ZH_UNIT = r"(?P<unit>天|周|个?星期|个?礼拜|个月|年)"
#: 周五, 星期五, 礼拜天 (周 takes no 天: "这周天气" is "this week the weather")
_ZH_WEEKDAY = r"(?:周(?P<zwd>[一二三四五六日])|(?:星期|礼拜)(?P<zwd2>[一二三四五六日天]))(?![次遍回])"
_ZH_MONTH = r"(?P<m>\d{1,2}|十[一二]?|[一二三四五六七八九])"
_ZH_DAY = r"(?P<d>\d{1,2}|[一二三]?十[一二三四五六七八九]?|[一二三四五六七八九])"
#: characters after which 上/下 are part of another word (晚上, 马上, 一下, 以下 …), not "last"/"next"
_ZH_SIDE = r"(?<![一两几了着以地底天乡楼手上下晚早马路网线身桌之街床台会车班世海面向往])"
#: characters that make 前/后 part of another word (以前, 之后, 然后, 最后 …), not "the day before"
_ZH_GLUE = r"(?<![以之从提向面跟眼目往然最先落午背随此其事空生])"

#: words that say a sentence is about the past (for a bare weekday, a day without a year)
_PAST_EN = re.compile(
    r"\b(?:was|were|went|had|did|got|saw|met|came|bought|took|made|told|said|ate|ran|left|flew|drove|"
    r"began|gave|sent|spent|lost|found|won|broke|wrote|felt|heard|paid|sold|slept|ago|last|yesterday|"
    r"[a-z]{3,}ed)\b",
    re.I,
)
#: ``-ed`` words that are not past tenses
_NOT_PAST = frozenset(
    "need needed indeed speed seed feed breed bleed proceed succeed exceed embed hundred sacred naked wicked "
    "kindred shed bed red weed tired excited interested scheduled planned booked supposed used married "
    "retired based related limited".split()
)
_FUTURE_EN = re.compile(
    r"\b(?:will|won't|shall|gonna|going to|plan(?:ning)? to|planned|scheduled|booked|upcoming|next|tomorrow|"
    r"have to|has to|need to|want to|hope to|would like to)\b|'ll\b",
    re.I,
)
_PAST_ZH = re.compile(r"了|已经|刚才|刚刚|昨|前天|上周|上个|去年")
_FUTURE_ZH = re.compile(r"要|将|打算|准备|计划|明天|后天|下周|下个|明年")


@dataclass(frozen=True, slots=True)
class _Context:
    today: date
    past: bool  # the sentence reads as past
    future: bool = False  # the sentence reads as future (will, going to, 要, 打算 …)


def _tense(text: str) -> tuple[bool, bool]:
    """(reads as past, reads as future); a future marker wins over a past one."""
    if _FUTURE_EN.search(text) or _FUTURE_ZH.search(text):
        return False, True
    if _PAST_ZH.search(text):
        return True, False
    for m in _PAST_EN.finditer(text):
        word = m.group(0).lower()
        if not word.endswith("ed") or word not in _NOT_PAST:
            return True, False
    return False, False


# -- arithmetic -------------------------------------------------------------------------------


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _shift(today: date, n: int, unit: str) -> date:
    """``today`` moved by ``n`` units (days, weeks, months, years; English or Chinese names)."""
    unit = unit.lstrip("个")
    if unit in ("month", "月"):
        return _add_months(today, n)
    if unit in ("year", "年"):
        return _add_months(today, 12 * n)
    return today + timedelta(days=n * _UNIT_DAYS[unit])


def _zh_number(text: str) -> int | None:
    """``12``, ``十二``, ``二十``, ``二十三``, ``两`` → the number (1–99), else None."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        head, _, tail = text.partition("十")
        if "十" in tail or len(head) > 1 or len(tail) > 1:
            return None
        tens = _ZH_DIGITS.get(head, -1) if head else 1
        ones = _ZH_DIGITS.get(tail, -1) if tail else 0
        if tens < 1 or ones < 0 or (head == "两"):
            return None
        return tens * 10 + ones
    if len(text) == 1 and text in _ZH_DIGITS:
        return _ZH_DIGITS[text]
    return None


def _zh_year(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    digits = [_ZH_DIGITS.get(ch) for ch in text]
    if any(d is None or ch == "两" for d, ch in zip(digits, text, strict=True)):
        return None
    return int("".join(str(d) for d in digits))


def _count(text: str) -> int | None:
    text = " ".join(text.lower().split())
    n = int(text) if text.isdigit() else _EN_NUMBERS.get(text, _zh_number(text) or 0)
    return n if 0 < n <= MAX_COUNT else None


def _day(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _nearest(ctx: _Context, month: int, day: int) -> date | None:
    """The ``month``/``day`` nearest to today (on or before today when the text reads as past,
    on or after it when it reads as future)."""
    options = [d for y in (ctx.today.year - 1, ctx.today.year, ctx.today.year + 1) if (d := _day(y, month, day))]
    if ctx.past:
        options = [d for d in options if d <= ctx.today]
    elif ctx.future:
        options = [d for d in options if d >= ctx.today]
    if not options:
        return None
    return min(options, key=lambda d: (abs((d - ctx.today).days), d > ctx.today))


def _bare_weekday(ctx: _Context, weekday: int) -> date:
    if ctx.past:
        return ctx.today - timedelta(days=(ctx.today.weekday() - weekday - 1) % 7 + 1)
    return ctx.today + timedelta(days=(weekday - ctx.today.weekday() - 1) % 7 + 1)


def _zh_weekday(m: re.Match[str]) -> int:
    return _ZH_WEEKDAYS[m.group("zwd") or m.group("zwd2")]


def _in_week(ctx: _Context, weeks: int, weekday: int) -> date:
    return _week_start(ctx.today) + timedelta(days=7 * weeks + weekday)


# -- the rules --------------------------------------------------------------------------------

Resolver = Callable[[re.Match[str], _Context], "date | None"]
#: (pattern, flags, resolver), compiled on the first use (``_compiled``): importing this module
#: stays cheap for a process that never reads a date
_RULES: list[tuple[str, int, Resolver]] = []


def _rule(pattern: str, flags: int = re.I) -> Callable[[Resolver], Resolver]:
    def register(fn: Resolver) -> Resolver:
        _RULES.append((pattern, flags, fn))
        return fn

    return register


@functools.cache
def _compiled() -> list[tuple[re.Pattern[str], Resolver]]:
    return [(re.compile(pattern, flags), fn) for pattern, flags, fn in _RULES]


_FIXED_EN = {
    "the day before yesterday": -2,
    "the day after tomorrow": 2,
    "yesterday": -1,
    "last night": -1,
    "today": 0,
    "tonight": 0,
    "this morning": 0,
    "this afternoon": 0,
    "this evening": 0,
    "tomorrow": 1,
}
_FIXED_ZH = {
    "大前天": -3,
    "前天": -2,
    "前晚": -2,
    "昨天": -1,
    "昨晚": -1,
    "昨日": -1,
    "昨儿": -1,
    "今天": 0,
    "今晚": 0,
    "今早": 0,
    "今日": 0,
    "明天": 1,
    "明晚": 1,
    "明早": 1,
    "明日": 1,
    "明儿": 1,
    "后天": 2,
    "大后天": 3,
}


@_rule(r"\b(?P<w>" + "|".join(k.replace(" ", r"\s+") for k in _FIXED_EN) + r")\b")
def _fixed_en(m: re.Match[str], ctx: _Context) -> date | None:
    return ctx.today + timedelta(days=_FIXED_EN[" ".join(m.group("w").lower().split())])


@_rule(_ZH_GLUE + r"(?P<w>" + "|".join(sorted(_FIXED_ZH, key=len, reverse=True)) + r")")
def _fixed_zh(m: re.Match[str], ctx: _Context) -> date | None:
    return ctx.today + timedelta(days=_FIXED_ZH[m.group("w")])


@_rule(r"\b" + _EN_NUM + r"\s+" + _EN_UNIT + r"\s+ago\b")
def _ago_en(m: re.Match[str], ctx: _Context) -> date | None:
    n = _count(m.group("num"))
    return _shift(ctx.today, -n, m.group("unit").lower()) if n else None


@_rule(r"\bin\s+" + _EN_NUM + r"\s+" + _EN_UNIT + r"(?:'?\s*time)?\b")
def _in_en(m: re.Match[str], ctx: _Context) -> date | None:
    n = _count(m.group("num"))
    if not n or ctx.past:  # "I finished it in 3 days": a duration
        return None
    return _shift(ctx.today, n, m.group("unit").lower())


@_rule(r"\b" + _EN_NUM + r"\s+" + _EN_UNIT + r"\s+from\s+(?:now|today)\b")
def _from_now_en(m: re.Match[str], ctx: _Context) -> date | None:
    n = _count(m.group("num"))
    return _shift(ctx.today, n, m.group("unit").lower()) if n else None


@_rule(r"\b(?P<which>last|next)\s+(?P<unit>week|month|year)\b")
def _last_next_period_en(m: re.Match[str], ctx: _Context) -> date | None:
    return _shift(ctx.today, -1 if m.group("which").lower() == "last" else 1, m.group("unit").lower())


@_rule(r"\b(?:(?P<which>last|this|next)\s+)?weekend\b")
def _weekend_en(m: re.Match[str], ctx: _Context) -> date | None:
    which = (m.group("which") or "this").lower()
    return _in_week(ctx, {"last": -1, "this": 0, "next": 1}[which], 5)


@_rule(
    r"\b(?:(?P<which>last|this|next|this\s+past|this\s+coming)\s+(?:week'?s?\s+)?|on\s+)?" + _WEEKDAY + r"\b"
    r"(?!\s*(?:to|through|thru|till|until|-|–)\s*(?:" + "|".join(_EN_WEEKDAYS) + r"))"
)
def _weekday_en(m: re.Match[str], ctx: _Context) -> date | None:
    before = m.string[max(0, m.start() - 12) : m.start()].lower()
    if re.search(r"(?:every|each|from|between|-|–|to|through)\s*$", before):
        return None
    weekday = _EN_WEEKDAYS[m.group("weekday").lower()]
    which = " ".join((m.group("which") or "").lower().split())
    if which == "last":
        return _in_week(ctx, -1, weekday)
    if which == "next":
        return _in_week(ctx, 1, weekday)
    if which == "this":
        return _in_week(ctx, 0, weekday)
    if which == "this past":
        return _bare_weekday(_Context(ctx.today, past=True), weekday)
    if which == "this coming":
        return _bare_weekday(_Context(ctx.today, past=False, future=True), weekday)
    return _bare_weekday(ctx, weekday)


@_rule(r"(?<![\d.:/-])(?P<y>\d{4})(?P<sep>[-/])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?![\d/:-]|\.\d)", 0)
def _iso(m: re.Match[str], ctx: _Context) -> date | None:
    year = int(m.group("y"))
    if not 1900 <= year <= 2200:
        return None
    return _day(year, int(m.group("m")), int(m.group("d")))


def _month_day(m: re.Match[str], ctx: _Context) -> date | None:
    name = m.group("month")
    if not name[0].isupper() and (name.lower() in ("may", "march") or len(name) <= 4):
        # "you may 3D print it", "we march 4 miles", "4 dec": a word, not a month, unless the
        # day is an ordinal, a year follows, or a preposition says it is a date ("on march 4")
        before = m.string[max(0, m.start() - 7) : m.start()].lower()
        marked = re.search(r"\d(?:st|nd|rd|th)\b|\bof\b", m.group(0), re.I) or m.group("year")
        if not marked and not re.search(r"\b(?:on|by|until|till|since|before|after|from)\s+$", before):
            return None
    month = _EN_MONTHS[name.lower()]
    day = int(m.group("day"))
    year = m.group("year")
    if year is not None:
        return _day(int(year), month, day) if 1900 <= int(year) <= 2200 else None
    return _nearest(ctx, month, day)


_YEAR = r"(?:,?\s+(?P<year>\d{4}))?(?![\d:])"
_rule(r"\b" + _MONTH + r"\s+(?:the\s+)?(?P<day>\d{1,2})" + _ORD + r"\b" + _YEAR)(_month_day)
_rule(r"\b(?:the\s+)?(?P<day>\d{1,2})" + _ORD + r"\s+(?:of\s+)?" + _MONTH + r"\b" + _YEAR)(_month_day)


@_rule(_ZH_NUM + r"\s*" + _ZH_UNIT + r"(?:之|以)?(?P<dir>前|后)", 0)
def _ago_zh(m: re.Match[str], ctx: _Context) -> date | None:
    n = _count(m.group("num"))
    return _shift(ctx.today, n if m.group("dir") == "后" else -n, m.group("unit")) if n else None


@_rule(_ZH_SIDE + r"(?P<which>上|下|这|本)个?" + _ZH_WEEKDAY, 0)
def _weekday_zh(m: re.Match[str], ctx: _Context) -> date | None:
    return _in_week(ctx, {"上": -1, "下": 1}.get(m.group("which"), 0), _zh_weekday(m))


@_rule(r"(?<![上下这本每个到至~～—\-])" + _ZH_WEEKDAY + r"(?![到至~～—\-])", 0)
def _bare_weekday_zh(m: re.Match[str], ctx: _Context) -> date | None:
    return _bare_weekday(ctx, _zh_weekday(m))


@_rule(_ZH_SIDE + r"(?P<which>上|下|这|本)个?(?:周|星期|礼拜)末", 0)
def _weekend_zh(m: re.Match[str], ctx: _Context) -> date | None:
    return _in_week(ctx, {"上": -1, "下": 1}.get(m.group("which"), 0), 5)


@_rule(_ZH_SIDE + r"(?P<which>上|下)个?(?:周|星期|礼拜)(?![一二三四五六日末])", 0)
def _week_zh(m: re.Match[str], ctx: _Context) -> date | None:
    return ctx.today + timedelta(days=-7 if m.group("which") == "上" else 7)


@_rule(_ZH_SIDE + r"(?P<which>上|下|这|本)个?月(?:" + _ZH_DAY + r"\s*[日号號])?", 0)
def _month_zh(m: re.Match[str], ctx: _Context) -> date | None:
    month = _add_months(ctx.today, {"上": -1, "下": 1}.get(m.group("which"), 0))
    if m.group("d") is None:
        return month if m.group("which") in "上下" else None  # 这个月: no day
    day = _zh_number(m.group("d"))
    return _day(month.year, month.month, day) if day else None


@_rule(_ZH_GLUE + r"(?P<w>去年|前年|明年|后年)(?!\d|[一二三四五六七八九十]+月)", 0)
def _year_zh(m: re.Match[str], ctx: _Context) -> date | None:
    return _add_months(ctx.today, 12 * {"去年": -1, "前年": -2, "明年": 1, "后年": 2}[m.group("w")])


@_rule(
    r"(?<!\d)(?:(?P<y>\d{4}|[〇零一二三四五六七八九]{4})\s*年\s*)?"
    + _ZH_MONTH
    + r"\s*月\s*"
    + _ZH_DAY
    + r"\s*[日号號]",
    0,
)
def _date_zh(m: re.Match[str], ctx: _Context) -> date | None:
    month, day = _zh_number(m.group("m")), _zh_number(m.group("d"))
    if month is None or day is None:
        return None
    if m.group("y"):
        year = _zh_year(m.group("y"))
        return _day(year, month, day) if year and 1900 <= year <= 2200 else None
    return _nearest(ctx, month, day)


@_rule(r"(?P<which>去年|今年|明年)\s*" + _ZH_MONTH + r"\s*月\s*" + _ZH_DAY + r"\s*[日号號]", 0)
def _year_date_zh(m: re.Match[str], ctx: _Context) -> date | None:
    month, day = _zh_number(m.group("m")), _zh_number(m.group("d"))
    if month is None or day is None:
        return None
    return _day(ctx.today.year + {"去年": -1, "今年": 0, "明年": 1}[m.group("which")], month, day)


_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")


def resolve_date(text: str, today: date) -> date | None:
    """The day ``text`` says something happened (or will), or None when it names none (see the
    module's table for the rules)."""
    if isinstance(today, datetime):
        today = today.date()
    if not text:
        return None
    text = text.translate(_FULLWIDTH)
    ctx = _Context(today, *_tense(text))
    best: tuple[int, int, date] | None = None
    for pattern, resolve in _compiled():
        for m in pattern.finditer(text):
            if best is not None and (m.start() > best[0] or (m.start() == best[0] and -len(m.group()) >= best[1])):
                continue
            try:
                found = resolve(m, ctx)
            except (OverflowError, ValueError):
                found = None
            if found is not None:
                best = (m.start(), -len(m.group()), found)
                break
    return best[2] if best is not None else None
