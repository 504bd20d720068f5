"""resolve_date: the day a message says something happened or will happen (English and Chinese),
and None where it names none. ``TODAY`` is a Wednesday: this week runs Mon 16 – Sun 22 March
2026, the previous one Mon 9 – Sun 15, the next one Mon 23 – Sun 29."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from memchat.memories.dates import resolve_date

TODAY = date(2026, 3, 18)
assert TODAY.weekday() == 2


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


ENGLISH = [
    # the day itself and its neighbours
    ("What should I cook today?", d(3, 18)),
    ("I'm meeting Anna tonight", d(3, 18)),
    ("This morning I ran 5 km", d(3, 18)),
    ("this afternoon", d(3, 18)),
    ("Yesterday I went to the dentist", d(3, 17)),
    ("I slept badly last night", d(3, 17)),
    ("the day before yesterday my cat was sick", d(3, 16)),
    ("Tomorrow I fly to Rome", d(3, 19)),
    ("the day after tomorrow", d(3, 20)),
    ("TOMORROW", d(3, 19)),
    # counted
    ("my exam is in 3 days", d(3, 21)),
    ("in two weeks I start a new job", d(4, 1)),
    ("in a month", d(4, 18)),
    ("in 3 days' time", d(3, 21)),
    ("two days from now", d(3, 20)),
    ("I got a puppy 3 days ago", d(3, 15)),
    ("two weeks ago", d(3, 4)),
    ("a week ago", d(3, 11)),
    ("a couple of days ago", d(3, 16)),
    ("3 months ago", d(12, 18, 2025)),
    ("a year ago I lived in Paris", d(3, 18, 2025)),
    ("10 years ago", d(3, 18, 2016)),
    # periods: the same point of the previous/next one
    ("I moved last week", d(3, 11)),
    ("next week", d(3, 25)),
    ("I changed jobs last month", d(2, 18)),
    ("next month", d(4, 18)),
    ("last year", d(3, 18, 2025)),
    ("next year", d(3, 18, 2027)),
    # weekdays: last/this/next are calendar weeks (Monday first)
    ("last Friday I saw a play", d(3, 13)),
    ("last Monday", d(3, 9)),
    ("last Sunday", d(3, 15)),
    ("next Monday", d(3, 23)),
    ("next Friday", d(3, 27)),
    ("this Friday", d(3, 20)),
    ("this Monday", d(3, 16)),
    ("last week Friday", d(3, 13)),
    ("this past Friday", d(3, 13)),
    ("this coming Monday", d(3, 23)),
    # a bare weekday: ahead unless the sentence reads as past
    ("I have a dentist appointment on Friday", d(3, 20)),
    ("My exam is on Wednesday", d(3, 25)),
    ("On Monday I had a fever", d(3, 16)),
    ("I went hiking on Wednesday", d(3, 11)),
    ("We met on Saturday", d(3, 14)),
    ("I'm going to the gym on Monday", d(3, 23)),
    # weekends: their Saturday
    ("last weekend", d(3, 14)),
    ("this weekend", d(3, 21)),
    ("next weekend", d(3, 28)),
    # explicit dates
    ("2026-03-04", d(3, 4)),
    ("The deadline is 2025-12-25.", d(12, 25, 2025)),
    ("2025/12/25", d(12, 25, 2025)),
    ("at 2026-03-04T10:00", d(3, 4)),
    ("March 4", d(3, 4)),
    ("on April 2", d(4, 2)),
    ("Mar 4", d(3, 4)),
    ("May 5", d(5, 5)),
    ("on march 4", d(3, 4)),
    ("march 4th", d(3, 4)),
    ("the 4th of may", d(5, 4)),
    ("March 4th, 2025", d(3, 4, 2025)),
    ("March 4th 2025", d(3, 4, 2025)),
    ("March 4, 2025", d(3, 4, 2025)),
    ("4 March 2025", d(3, 4, 2025)),
    ("4 March", d(3, 4)),
    ("the 4th of March", d(3, 4)),
    ("on the 21st of May", d(5, 21)),
    ("I moved on December 20", d(12, 20, 2025)),  # past: on or before today
    ("I will fly on January 5", d(1, 5, 2027)),  # future: on or after today
    ("January 5", d(1, 5)),  # neither: the nearest
    ("August 30", d(8, 30)),
    ("September 30", d(9, 30, 2025)),
    ("October 1", d(10, 1, 2025)),
    # the first expression wins
    ("Yesterday I booked a flight for next Friday", d(3, 17)),
    ("next Friday, not yesterday", d(3, 27)),
]

CHINESE = [
    ("今天吃什么", d(3, 18)),
    ("今晚有约", d(3, 18)),
    ("今早跑了五公里", d(3, 18)),
    ("昨天我去看了牙医", d(3, 17)),
    ("昨晚没睡好", d(3, 17)),
    ("前天", d(3, 16)),
    ("大前天", d(3, 15)),
    ("明天去罗马", d(3, 19)),
    ("后天考试", d(3, 20)),
    ("大后天", d(3, 21)),
    ("上周五我看了一场话剧", d(3, 13)),
    ("上星期五", d(3, 13)),
    ("上个星期五", d(3, 13)),
    ("上个礼拜五", d(3, 13)),
    ("上周日", d(3, 15)),
    ("下周一开会", d(3, 23)),
    ("下星期天", d(3, 29)),
    ("这周三", d(3, 18)),
    ("本周日", d(3, 22)),
    ("这个星期五", d(3, 20)),
    ("周五我去看了牙医", d(3, 13)),  # 了: past
    ("周五我要去看牙医", d(3, 20)),
    ("星期一", d(3, 23)),
    ("上周末", d(3, 14)),
    ("这周末", d(3, 21)),
    ("下周末", d(3, 28)),
    ("上周我搬家了", d(3, 11)),
    ("上周天气很冷", d(3, 11)),
    ("下周", d(3, 25)),
    ("上星期", d(3, 11)),
    ("上个月", d(2, 18)),
    ("上月", d(2, 18)),
    ("下个月", d(4, 18)),
    ("上个月5号", d(2, 5)),
    ("下个月二十号", d(4, 20)),
    ("去年", d(3, 18, 2025)),
    ("前年", d(3, 18, 2024)),
    ("明年", d(3, 18, 2027)),
    ("3天前", d(3, 15)),
    ("三天前", d(3, 15)),
    ("３天前", d(3, 15)),
    ("两周前", d(3, 4)),
    ("十天后", d(3, 28)),
    ("10天以后", d(3, 28)),
    ("两个月前", d(1, 18)),
    ("一年前", d(3, 18, 2025)),
    ("3个星期前", d(2, 25)),
    ("3月4日", d(3, 4)),
    ("3月4号", d(3, 4)),
    ("三月四日", d(3, 4)),
    ("2025年3月4日", d(3, 4, 2025)),
    ("二〇二五年三月四日", d(3, 4, 2025)),
    ("十二月二十五日", d(12, 25, 2025)),
    ("12月31号", d(12, 31, 2025)),
    ("去年12月25日", d(12, 25, 2025)),
    ("明年1月1号", d(1, 1, 2027)),
    ("我3月20日要去北京", d(3, 20)),
]

NOT_DATES = [
    "",
    "hello there",
    "I have 3 cats",
    "version 2.0.1",
    "call 555-1234",
    "My PIN is 0304",
    "I was born in 1990",
    "I ate 3/4 of the pizza",
    "see you 3/4",
    "3/4/2025",
    "page 12",
    "I stayed 10 days",
    "It took 2.5 days ago-ish",
    "I'm 30 years old",
    "May I ask something?",
    "you may 3D print it",
    "we march 4 miles a day",
    "I may 2 times a week go",
    "4 dec places",
    "I finished the project in 3 days",
    "every Monday I swim",
    "I work Monday to Friday",
    "Mondays are hard",
    "a few days ago",
    "in March",
    "this year",
    "this week",
    "this month",
    "2026-13-45",
    "2026-02-30",
    "10:30",
    "the 1990s",
    "我有3只猫",
    "我每周五去游泳",
    "我周一到周五上班",
    "以前天气很好",
    "然后天就黑了",
    "一周一次",
    "几天前",
    "这周天气很好",
    "看一下周围",
    "晚上周围很安静",
    "3月前交报告",
    "我2020年前住在北京",
    "今年",
    "这个月",
    "2025年",
    "13月45日",
    "我今年30岁",
]


@pytest.mark.parametrize(("text", "expected"), ENGLISH, ids=[t for t, _ in ENGLISH])
def test_english(text: str, expected: date) -> None:
    assert resolve_date(text, TODAY) == expected


@pytest.mark.parametrize(("text", "expected"), CHINESE, ids=[t for t, _ in CHINESE])
def test_chinese(text: str, expected: date) -> None:
    assert resolve_date(text, TODAY) == expected


@pytest.mark.parametrize("text", NOT_DATES)
def test_no_date(text: str) -> None:
    assert resolve_date(text, TODAY) is None


def test_a_datetime_today_gives_a_date() -> None:
    got = resolve_date("yesterday", datetime(2026, 3, 18, 23, 59))
    assert got == d(3, 17) and type(got) is date


@pytest.mark.parametrize(
    ("today", "text", "expected"),
    [
        (date(2026, 3, 31), "last month", date(2026, 2, 28)),  # clamped to the month's length
        (date(2024, 2, 29), "next year", date(2025, 2, 28)),
        (date(2026, 1, 10), "last month", date(2025, 12, 10)),
        (date(2026, 12, 31), "tomorrow", date(2027, 1, 1)),
        (date(2026, 3, 22), "next Monday", date(2026, 3, 23)),  # said on a Sunday
        (date(2026, 3, 16), "last Sunday", date(2026, 3, 15)),  # said on a Monday
        (date(2026, 3, 22), "上周日", date(2026, 3, 15)),
        (date(2026, 12, 28), "January 3", date(2027, 1, 3)),  # the nearest across the new year
        (date(2026, 1, 2), "我12月30日去了上海", date(2025, 12, 30)),
    ],
)
def test_edges(today: date, text: str, expected: date) -> None:
    assert resolve_date(text, today) == expected


def test_huge_counts_are_not_dates() -> None:
    assert resolve_date("in 5000 days", TODAY) is None
    assert resolve_date("999 years ago", date(500, 1, 1)) is None  # before year 1: no date, no error
