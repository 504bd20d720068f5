"""Memory beyond the context window (issue 4): what a turn costs as the session grows, whether
facts stated early are still in the context sent many turns later, and a long chat on the
embedded model.

Run:  .venv/bin/python bench/bench_memory.py [--quick] [--turns 30] [--rounds 3] [--jobs 2]
          [--skip-cost] [--skip-recall] [--skip-local] [--profile] [--keep-first P] [--keep-rewrite P]

1. **cost** — one loopback OpenAI-compatible server (tests/fakeserver.py, its own process, a
   fixed reply); the library (``Agent(memory="auto", context_window=8192)``, SQLite file store)
   on sessions of H = 100, 1,000 and 10,000 prior turns (seeded in one transaction with
   ``Store.import_session``), with ``context_window=2048`` too (there every H overflows, also
   H = 100). Per H: the first ``auto`` turn ever of the imported session (it writes the first
   summary), then the median and p95 of ``--turns`` successive turns (steady state; a turn that
   folds evicted turns into the summary is included) and of the context building alone
   (``agent.context(session, text)``), pooled over ``--rounds`` rounds that interleave the H.
   Then the first turn of a fresh process (cold cache: it reads only the tail the budget
   needs) at H = 100 and 10,000, and the context building at H = 10,000 for English and Chinese
   small talk and questions. ``--profile`` prints where the time of the H = 10,000 turns goes.
2. **recall** — sessions of 200 and 2,000 turns, in English and in Chinese, played turn by
   turn through ``Agent.stream`` with ``context_window=2048`` against an in-process loopback
   server: 20 facts with unique values (names, numbers, dates, places) are stated over the
   first tenth of the session, two distractors per fact (the same subject, no value) are
   scattered later, the rest is small talk, and the last 20 turns ask for the facts (phrased
   differently; 2 of the 20 share no word with the statement). Per strategy: the share of
   asked facts whose value is in the context actually sent (the server's request log, the
   question itself excluded), and the tokens sent per turn (``turn.plan.tokens``; the request
   recounted with memchat's estimator, on the question turns, differs by a few tokens). The
   loopback server answers small talk with a short reply that never repeats a value, and
   reports no prompt usage (so the calibration stays 1.0 and "tokens" means memchat's
   estimate). Summaries need a model; this one is *lossy*, not an echo: it keeps a fact it
   is shown with probability ``--keep-first`` (0.9), every fact of the previous summary
   survives each rewrite with probability ``--keep-rewrite`` (0.99), small talk is dropped, and
   the summary is cut (oldest lines first) to the ``max_tokens`` memchat asks for. ``auto`` runs
   twice: with that summarizer, and with every summary request refused (HTTP 400: ``auto`` falls
   back to window + recall), so the figure does not depend on the fake summarizer.
3. **local** — a 60-turn chat on the embedded model (``LocalLlama``, model loaded before timing,
   ``ChatOptions(max_tokens=48)``), ``auto`` with the default window (8,192) and again with
   ``context_window=2048`` (the model loaded with that context too) so the history overflows
   and summaries are written by the model.
   Time to first token per turn, from ``agent.stream`` (plan included) to the first text chunk;
   the turns that wrote a summary are reported apart, with the summary's cost.

Targets (issue 4): cost at H = 10,000 ≤ 1.2× H = 100 per turn; context building p95 ≤ 20 ms at
H = 10,000; recall ≥ 95% of facts with ``auto``, ≤ 2K tokens per turn; the 60-turn local chat
completes with no overflow and its TTFT stays flat.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

PERSONA = "You are a concise assistant."
COST_WINDOW = 8192
RECALL_WINDOW = 2048
COST_HISTORIES = (100, 1000, 10_000)
RECALL_SESSIONS = (200, 2000)


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


def p95_ms(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] * 1000


# -- conversation text ---------------------------------------------------------------------

EN_TOPICS = (
    "gardening",
    "baking bread",
    "learning Spanish",
    "the morning commute",
    "a rainy weekend",
    "football practice",
    "writing Python scripts",
    "a trip to the coast",
    "playing the piano",
    "a mystery novel",
    "the monthly budget",
    "a documentary",
    "brewing coffee",
    "cycling to work",
    "the science museum",
    "revising for exams",
    "a new laptop",
    "painting the kitchen",
    "houseplants",
    "a board game night",
    "yoga",
    "meal planning",
    "a camping trip",
    "podcasts",
    "the photography club",
    "saving for a holiday",
    "a birthday party",
    "running shoes",
    "a job interview",
    "cleaning the garage",
)
EN_USER = (
    "Can you give me a tip about {a}? I have about {n} minutes this evening.",
    "I've been thinking about {a} and {b} lately; which one should I start with?",
    "Quick question on {a}: is it better done early in the morning or late at night?",
    "Let's plan something around {a} for the weekend, nothing too expensive.",
    "What do you think about {a} compared with {b}?",
    "I keep putting off {a}. How do I get going with it?",
    "Any beginner mistakes to avoid with {a}?",
    "A friend recommended {a} to me, is it worth {n} minutes a day?",
)
EN_ASSISTANT = (
    "Sure. For {a}, start small: pick one thing, give it {n} minutes, and see how it goes before adding more.",
    "Both are fine. I would begin with {a} because it gives quick results, then fit {b} around it.",
    "It depends on your energy. Most people find {a} easier earlier in the day, when fewer things interrupt.",
    "Good idea. Keep {a} simple, set a small budget, and invite someone to make it more fun.",
    "They suit different moods: {a} is more relaxing, while {b} asks for a bit more focus.",
    "Make the first step tiny. Put {a} in your calendar for {n} minutes and stop when the timer rings.",
)
ZH_TOPICS = (
    "做饭",
    "学英语",
    "周末爬山",
    "看电影",
    "地铁时间表",
    "理财",
    "跑步",
    "读小说",
    "装修厨房",
    "养花",
    "练书法",
    "骑自行车上班",
    "逛博物馆",
    "准备考试",
    "买新电脑",
    "做瑜伽",
    "安排聚会",
    "拍照片",
    "露营",
    "听播客",
    "存钱旅游",
    "打扫车库",
    "下围棋",
    "学游泳",
    "做蛋糕",
    "写日记",
    "整理衣柜",
    "看纪录片",
    "练钢琴",
    "准备面试",
)
ZH_USER = (
    "我想聊聊{a}，你有什么建议吗？我今晚大概有{n}分钟。",
    "最近在考虑{a}和{b}，先做哪个比较好？",
    "关于{a}，早上做好还是晚上做好？",
    "周末想安排一下{a}，别太花钱。",
    "你觉得{a}和{b}比起来怎么样？",
    "我总是拖着不去{a}，怎么才能开始？",
    "刚开始{a}的话，有哪些常见的错误要避免？",
    "朋友推荐我{a}，每天花{n}分钟值得吗？",
)
ZH_ASSISTANT = (
    "好的。关于{a}，先从小事做起：每次花{n}分钟，看看效果再慢慢增加。",
    "两个都不错。我建议先从{a}开始，见效快，然后再把{b}安排进去。",
    "这要看你的精力。多数人觉得{a}在白天更容易坚持，干扰也少。",
    "好主意。{a}不用搞得太复杂，定个小预算，再叫上朋友会更有意思。",
    "它们适合不同的心情：{a}更放松，{b}需要更专注一些。",
    "把第一步定得很小。在日历上给{a}留{n}分钟，闹钟一响就停。",
)
MINUTES = (10, 15, 20, 25, 30, 40, 45, 50, 60)


@dataclass(frozen=True)
class Fact:
    statement: str
    question: str
    value: str
    distractors: tuple[str, str]
    #: "paraphrase": the question shares no word (no 3-character run in Chinese) with the statement
    kind: str = "lexical"


EN_FACTS = (
    Fact(
        "By the way, my sister's name is Alice.",
        "What is my sister called?",
        "Alice",
        ("My sister is coming over on Sunday, any idea for a dessert?", "My sister thinks I work too much."),
    ),
    Fact(
        "Our cat is called Pumpernickel.",
        "Remind me, what's our cat's name?",
        "Pumpernickel",
        ("Our cat keeps waking us up at night.", "Should we get the cat a scratching post?"),
    ),
    Fact(
        "I was born in Tromsø, up in northern Norway.",
        "Which town was I born in?",
        "Tromsø",
        ("I was born in winter, so I never mind the cold.", "My parents still live near where I was born."),
    ),
    Fact(
        "My employee ID at work is 48213.",
        "What was my employee ID again?",
        "48213",
        ("I lost my employee badge yesterday.", "HR asked every employee to update their address."),
    ),
    Fact(
        "Our wedding anniversary is on the 14th of September.",
        "When is our wedding anniversary?",
        "14th of September",
        ("For our anniversary I'd like to cook something special.", "We went to a friend's wedding last year."),
    ),
    Fact(
        "My favourite colour is teal.",
        "Which colour do I like most?",
        "teal",
        ("What colour should the living room be?", "I can never pick a colour for a new bike."),
    ),
    Fact(
        "I drive a dark green Subaru Outback.",
        "What car do I drive?",
        "Subaru",
        ("I drive to the office twice a week.", "The car needs new tyres before winter."),
    ),
    Fact(
        "My daughter Mia is allergic to peanuts.",
        "What is my daughter allergic to?",
        "peanuts",
        ("My daughter wants to learn the violin.", "Hay fever season is starting, and I'm allergic to it too."),
    ),
    Fact(
        "The Wi-Fi password at home is marigold77.",
        "What's the home Wi-Fi password?",
        "marigold77",
        ("The Wi-Fi keeps dropping in the bedroom.", "I should change my email password soon."),
    ),
    Fact(
        "My dentist appointment is on Thursday at 3:40 pm.",
        "What time is my dentist appointment?",
        "3:40",
        ("I hate going to the dentist.", "I need to book an appointment with the vet."),
    ),
    Fact(
        "We live at 12 Larkspur Lane.",
        "What's our home address?",
        "Larkspur",
        ("We live quite far from the train station.", "Our street is very quiet at night."),
        "paraphrase",
    ),
    Fact(
        "My brother Tomasz works as a pharmacist.",
        "What does my brother do for a living?",
        "pharmacist",
        ("My brother is moving to a new flat.", "My brother and I play chess online."),
    ),
    Fact(
        "My passport expires in March 2031.",
        "When does my passport expire?",
        "March 2031",
        ("I need a new passport photo.", "Does the passport office open on Saturdays?"),
    ),
    Fact(
        "My blood type is AB negative.",
        "Do you remember my blood type?",
        "AB negative",
        ("I want to give blood this month.", "What type of bread is easiest for beginners?"),
    ),
    Fact(
        "I'm training for the Lisbon half marathon in October.",
        "Which half marathon am I training for?",
        "Lisbon",
        ("My training plan says long runs on Sundays.", "How do people pace a marathon?"),
    ),
    Fact(
        "I paid 1,250 euros for the new sofa.",
        "How much did the sofa cost me?",
        "1,250",
        ("The sofa is too big for the corner.", "How much should a rug cost?"),
    ),
    Fact(
        "My manager's name is Priya Raman.",
        "Who is my manager?",
        "Priya",
        ("My manager wants a report by Friday.", "I get along well with my manager."),
    ),
    Fact(
        "My locker code at the gym is 7-19-33.",
        "What's the code for my gym locker?",
        "7-19-33",
        ("The gym is crowded after six.", "Someone left a locker open at the pool."),
    ),
    Fact(
        "My grandmother turns ninety-three next spring.",
        "How old will grandma be?",
        "ninety-three",
        ("My grandmother loves crosswords.", "Spring is my favourite season for walks."),
        "paraphrase",
    ),
    Fact(
        "I'm vegetarian, but I still eat eggs.",
        "Is there anything I don't eat?",
        "vegetarian",
        ("I eat lunch at my desk too often.", "Are eggs good for breakfast every day?"),
    ),
)
ZH_FACTS = (
    Fact(
        "顺便说一下，我家的猫叫小白。",
        "我家的猫叫什么名字？",
        "小白",
        ("我家的猫最近总是半夜叫。", "要不要给猫买个猫抓板？"),
    ),
    Fact(
        "我妹妹的名字是林晓雯。",
        "我妹妹叫什么？",
        "林晓雯",
        ("我妹妹下周要来玩，准备点什么甜点好？", "我妹妹觉得我工作太拼了。"),
    ),
    Fact(
        "我是在哈尔滨出生的。",
        "我出生在哪个城市？",
        "哈尔滨",
        ("我是冬天出生的，所以不怕冷。", "我父母还住在老家附近。"),
    ),
    Fact(
        "我的工号是48213。",
        "我的工号是多少来着？",
        "48213",
        ("我昨天把工牌弄丢了。", "人事让每个员工更新地址。"),
    ),
    Fact(
        "我们的结婚纪念日是九月十四日。",
        "我们的结婚纪念日是哪天？",
        "九月十四日",
        ("结婚纪念日那天我想做顿好吃的。", "去年我们参加了朋友的婚礼。"),
    ),
    Fact(
        "我最喜欢的颜色是青绿色。",
        "我最喜欢什么颜色？",
        "青绿色",
        ("客厅刷什么颜色好？", "我总是选不好新自行车的颜色。"),
    ),
    Fact(
        "我开的车是一辆墨绿色的斯巴鲁。",
        "我开的是什么车？",
        "斯巴鲁",
        ("我每周开车去公司两次。", "冬天前车要换新轮胎了。"),
    ),
    Fact(
        "我女儿对花生过敏。",
        "我女儿对什么过敏？",
        "花生",
        ("我女儿想学小提琴。", "花粉季节到了，我也有点过敏。"),
    ),
    Fact(
        "家里的无线网密码是marigold77。",
        "家里无线网的密码是什么？",
        "marigold77",
        ("卧室里无线网老是断。", "我该改一下邮箱密码了。"),
    ),
    Fact(
        "我的牙医预约在周四下午三点四十。",
        "我什么时候去看牙医？",
        "三点四十",
        ("我最怕看牙医了。", "我得给宠物医院打电话预约。"),
    ),
    Fact(
        "我们住在丁香路12号。",
        "我家的地址是什么？",
        "丁香路",
        ("我们住的地方离火车站挺远。", "我们这条街晚上很安静。"),
        "paraphrase",
    ),
    Fact(
        "我哥哥托马斯是一名药剂师。",
        "我哥哥是做什么工作的？",
        "药剂师",
        ("我哥哥要搬新家了。", "我和哥哥经常在网上下棋。"),
    ),
    Fact(
        "我的护照2031年3月到期。",
        "我的护照什么时候到期？",
        "2031年3月",
        ("我需要拍新的护照照片。", "出入境办公室周六开门吗？"),
    ),
    Fact(
        "我的血型是AB型阴性。",
        "你还记得我的血型吗？",
        "AB型阴性",
        ("这个月我想去献血。", "哪种面包最适合新手做？"),
    ),
    Fact(
        "我正在为十月的里斯本半程马拉松做训练。",
        "我在为哪个比赛训练？",
        "里斯本",
        ("训练计划说周日要长跑。", "跑马拉松怎么分配体力？"),
    ),
    Fact(
        "新沙发花了我一千二百五十欧元。",
        "那个沙发花了多少钱？",
        "一千二百五十",
        ("沙发放在角落里太大了。", "一块地毯大概要多少钱？"),
    ),
    Fact(
        "我的经理叫普丽娅。",
        "我的经理是谁？",
        "普丽娅",
        ("我的经理要我周五前交报告。", "我和经理相处得不错。"),
    ),
    Fact(
        "我在健身房的储物柜密码是7-19-33。",
        "健身房储物柜的密码是多少？",
        "7-19-33",
        ("健身房六点以后人很多。", "游泳馆有人没关储物柜。"),
    ),
    Fact(
        "我奶奶明年春天就满九十三岁了。",
        "我奶奶明年多大？",
        "九十三",
        ("我奶奶很喜欢玩填字游戏。", "春天是我最喜欢散步的季节。"),
    ),
    Fact(
        "我吃素，不过鸡蛋还是吃的。",
        "我有什么忌口吗？",
        "吃素",
        ("我中午老是在工位上吃饭。", "每天早餐吃鸡蛋好吗？"),
        "paraphrase",
    ),
)
FACTS = {"en": EN_FACTS, "zh": ZH_FACTS}


def small_talk(rng: random.Random, lang: str) -> tuple[str, str]:
    """One user message of small talk and the reply that goes with it."""
    topics, users, replies = (ZH_TOPICS, ZH_USER, ZH_ASSISTANT) if lang == "zh" else (EN_TOPICS, EN_USER, EN_ASSISTANT)
    a, b = rng.sample(topics, 2)
    n = rng.choice(MINUTES)
    return rng.choice(users).format(a=a, b=b, n=n), rng.choice(replies).format(a=a, b=b, n=n)


def history(h: int, lang: str = "en", seed: int = 1) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [small_talk(rng, lang) for _ in range(h)]


@dataclass
class Script:
    """The user messages of one recall session, and which turns ask which fact."""

    lang: str
    user: list[str]
    asks: dict[int, Fact]  # turn index -> the fact it asks for


def recall_script(turns: int, lang: str, seed: int = 7) -> Script:
    facts = FACTS[lang]
    rng = random.Random(seed)
    user = [small_talk(rng, lang)[0] for _ in range(turns)]
    span = max(len(facts), turns // 10)
    for k, fact in enumerate(facts):  # stated over the first tenth
        user[1 + k * span // len(facts)] = fact.statement
    first_question = turns - len(facts)
    slots = rng.sample(range(span + 1, first_question), 2 * len(facts))
    for slot, text in zip(slots, [d for f in facts for d in f.distractors], strict=True):
        user[slot] = text
    order = list(facts)
    rng.shuffle(order)
    asks = {}
    for k, fact in enumerate(order):  # asked in the last turns
        user[first_question + k] = fact.question
        asks[first_question + k] = fact
    replies = ZH_ASSISTANT + ZH_TOPICS if lang == "zh" else EN_ASSISTANT + EN_TOPICS
    others = {t for t in user if t not in {f.statement for f in facts}} | set(replies)
    for fact in facts:  # a value must not occur anywhere but in its statement
        assert not any(fact.value.lower() in t.lower() for t in others), fact.value
    return Script(lang, user, asks)


# -- the loopback server of the recall benchmark --------------------------------------------


class RecallServer:
    """An in-process ``FakeServer`` that plays a model: small talk gets a fixed-size reply that
    never repeats a value; a summarization request gets a lossy summary (see the module
    docstring), or an HTTP 400 when summaries are switched off."""

    def __init__(self, keep_first: float, keep_rewrite: float, seed: int = 11) -> None:
        from fakeserver import FakeReply, FakeServer

        bench = self

        class _Server(FakeServer):
            def _resolve(self, endpoint: str, rec: Any) -> FakeReply | None:
                scripted = super()._resolve(endpoint, rec)
                if scripted is not None or endpoint != "chat":
                    return scripted
                return bench.respond(rec)

        self._reply = FakeReply
        self.server = _Server().start()
        self.url = self.server.url
        self.keep_first = keep_first
        self.keep_rewrite = keep_rewrite
        self.rng = random.Random(seed)
        self.summaries_on = True
        self.statements: set[str] = set()
        self.lang = "en"
        self.summary_calls = 0
        self._chat = 0

    def reset(self, lang: str, statements: set[str], summaries_on: bool) -> None:
        self.server.reset()
        self.lang, self.statements, self.summaries_on = lang, statements, summaries_on
        self.summary_calls = 0

    def close(self) -> None:
        self.server.close()

    @staticmethod
    def is_summary_request(messages: Sequence[dict[str, Any]]) -> bool:
        from memchat.memory.summarize import INSTRUCTIONS

        return bool(messages) and messages[0].get("content") in INSTRUCTIONS.values()

    def respond(self, rec: Any) -> Any:
        from memchat.tokens import estimate_tokens

        messages = rec.messages
        body = rec.body if isinstance(rec.body, dict) else {}
        if self.is_summary_request(messages):
            self.summary_calls += 1
            if not self.summaries_on:
                error = {"message": "summaries are switched off in this run", "type": "invalid_request_error"}
                return self._reply.error_response(400, {"error": {**error, "code": None}})
            text = self.summarize(str(messages[-1].get("content") or ""), int(body.get("max_tokens") or 256))
        else:
            self._chat += 1
            rng = random.Random(self._chat)
            text = small_talk(rng, self.lang)[1]
        # no prompt usage: memchat's calibration stays 1.0, so "tokens" are its own estimates
        usage = {"prompt_tokens": 0, "completion_tokens": estimate_tokens(text)}
        return self._reply.text(*_pieces(text), usage=usage)

    def summarize(self, prompt: str, max_tokens: int) -> str:
        from memchat.tokens import estimate_tokens

        if prompt.startswith("目前的摘要"):
            head, _, rest = prompt.partition("\n\n新的消息：\n")
            previous = head.removeprefix("目前的摘要：\n")
            new = rest.rsplit("\n\n请写出更新后的摘要。", 1)[0]
            generic = "用户和助手聊了些日常话题。"
        else:
            head, _, rest = prompt.partition("\n\nNew messages:\n")
            previous = head.removeprefix("Summary so far:\n")
            new = rest.rsplit("\n\nWrite the updated summary.", 1)[0]
            generic = "The user and the assistant chatted about everyday things."
        kept = [
            line
            for line in previous.splitlines()
            if line.startswith("- ") and self.rng.random() < self.keep_rewrite  # facts erode on each rewrite
        ]
        for line in new.splitlines():
            said = line.removeprefix("user: ")
            if said in self.statements and self.rng.random() < self.keep_first:
                kept.append("- " + said)
        while kept and estimate_tokens("\n".join(kept)) > max_tokens:
            kept.pop(0)  # too long for the reply: the oldest facts go first
        return "\n".join(kept) or generic


def _pieces(text: str) -> list[str]:
    cut = max(1, len(text) // 3)
    return [text[:cut], text[cut : 2 * cut], text[2 * cut :]]


# -- 1. cost as the session grows ------------------------------------------------------------


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fakeserver.py"), "--port", "0", "--reply", "The answer is forty-two."],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def seed_session(db: Path, name: str, h: int, lang: str = "en") -> None:
    """A session of ``h`` turns of small talk, written in one transaction."""
    from memchat.domain import Message, Role, SessionInfo
    from memchat.stores.sqlite import SQLiteStore

    messages = []
    for user, reply in history(h, lang):
        messages += [Message(Role.USER, user), Message(Role.ASSISTANT, reply)]
    store = SQLiteStore(db)
    store.import_session(SessionInfo(id=0, name=name, persona=PERSONA, memory="auto"), messages)
    store.close()


def make_agent(url: str, db: Path, window: int) -> Any:
    from memchat import Agent, OpenAICompatible
    from memchat.stores.sqlite import SQLiteStore

    provider = OpenAICompatible(base_url=url, model="bench", max_retries=0)
    return Agent(store=SQLiteStore(db), provider=provider, memory="auto", context_window=window)


@dataclass
class CostRow:
    """Samples (seconds) of one H, pooled over the rounds."""

    h: int
    first: list[float] = field(default_factory=list)
    first_summaries: int = 0
    turns: list[float] = field(default_factory=list)
    summaries: int = 0
    context: list[float] = field(default_factory=list)
    sent_tokens: int = 0
    profile: str = ""


def bench_cost(url: str, db: Path, row: CostRow, n: int, window: int, profile: bool) -> None:
    """One round at ``row.h``: the first auto turn, ``n`` measured turns, ``n`` context builds."""
    agent = make_agent(url, db, window)
    texts = history(2 * n + 3, seed=row.h + 5)
    t = time.perf_counter()
    agent.ask("s", texts[0][0])
    row.first.append(time.perf_counter() - t)
    row.first_summaries = len(agent.store.summaries("s"))
    agent.ask("s", texts[1][0])
    agent.ask("s", texts[2][0])
    before = len(agent.store.summaries("s"))
    prof = cProfile.Profile() if profile else None
    for i in range(n):
        t = time.perf_counter()
        if prof is not None:
            prof.enable()
        turn = agent.stream("s", texts[3 + i][0])
        for _ in turn:
            pass
        if prof is not None:
            prof.disable()
        row.turns.append(time.perf_counter() - t)
        row.sent_tokens = max(row.sent_tokens, turn.plan.tokens)
    row.summaries += len(agent.store.summaries("s")) - before
    row.context += time_context(agent, [text for text, _ in texts[3 + n :]])
    agent.close()
    if prof is not None:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(14)
        row.profile = out.getvalue()


def time_context(agent: Any, texts: Sequence[str]) -> list[float]:
    """Seconds ``agent.context`` takes for each text (what the next call would send)."""
    out = []
    for text in texts:
        t = time.perf_counter()
        agent.context("s", text)
        out.append(time.perf_counter() - t)
    return out


def cold_probe(url: str, db: str) -> None:
    """In a fresh process: the first turn on an existing long session (prints JSON)."""
    import memchat.agent
    import memchat.providers.openai_compat
    import memchat.stores.sqlite  # noqa: F401

    t = time.perf_counter()
    agent = make_agent(url, Path(db), COST_WINDOW)
    turn = agent.stream("s", "Cold start: what were we talking about a moment ago?")
    for _ in turn:
        pass
    first = time.perf_counter() - t
    held = sum(len(tail.messages) for tail in agent._memory.tails._tails.values())
    count = agent.store.get_session("s").message_count
    agent.close()
    print(json.dumps({"first_ms": first * 1000, "held": held, "messages": count}))


def run_cold(url: str, db: Path, runs: int) -> tuple[float, int, int]:
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, __file__, "--cold-probe", url, str(db)], check=True, capture_output=True, text=True
        ).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    first = statistics.median(r["first_ms"] for r in results)
    return first, results[-1]["held"], results[-1]["messages"]


def section_cost(args: argparse.Namespace, tmp: Path) -> None:
    import shutil

    histories = COST_HISTORIES
    for h in histories:
        seed_session(tmp / f"seed{h}.db", "s", h)
    server, url = start_server()
    try:
        for window in (COST_WINDOW, RECALL_WINDOW):
            print(
                f"\n## 1. cost per turn, auto, context_window={window} (loopback server; {args.rounds} rounds x "
                f"{args.turns} turns per H, pooled)"
            )
            print(
                f"{'H':>6} {'1st auto turn':>14} {'turn p50':>9} {'turn p95':>9} {'summaries':>9} "
                f"{'context p50':>12} {'context p95':>12} {'sent tokens':>11}"
            )
            rows = [CostRow(h) for h in histories]
            for r in range(args.rounds):  # rounds interleave the H, so a busy moment hits them alike
                for row in rows:
                    db = tmp / f"cost{row.h}-{window}-{r}.db"
                    shutil.copyfile(tmp / f"seed{row.h}.db", db)
                    last = r == args.rounds - 1
                    profile = args.profile and last and row.h == histories[-1] and window == COST_WINDOW
                    bench_cost(url, db, row, args.turns, window, profile)
            for row in rows:
                print(
                    f"{row.h:>6} {median_ms(row.first):>11.1f} ms {median_ms(row.turns):>6.2f} ms "
                    f"{p95_ms(row.turns):>6.2f} ms {row.summaries:>9} {median_ms(row.context):>9.2f} ms "
                    f"{p95_ms(row.context):>9.2f} ms {row.sent_tokens:>11}",
                    flush=True,
                )
            big, mid, small = rows[-1], rows[1], rows[0]
            print(
                f"turn p50 at H={big.h} / H={small.h}: {median_ms(big.turns) / median_ms(small.turns):.2f}x "
                f"(target <= 1.2x); H={big.h} / H={mid.h}: {median_ms(big.turns) / median_ms(mid.turns):.2f}x; "
                f"context p95 at H={big.h}: {p95_ms(big.context):.2f} ms (target <= 20 ms)"
            )
            print(
                "first auto turn of the imported sessions wrote "
                + ", ".join(f"{r.first_summaries} summary" for r in rows)
                + "; 'summaries': measured turns that folded evicted turns into the summary"
            )
            if big.profile:
                print(f"\nprofile of the last round's {args.turns} turns at H={big.h} (tottime):")
                print("\n".join(big.profile.splitlines()[:32]))
        for h in (histories[0], histories[-1]):
            cold, held, count = run_cold(url, tmp / f"cost{h}-{COST_WINDOW}-0.db", 5)
            print(
                f"cold: first turn of a fresh process at H={h} (window {COST_WINDOW}): {cold:.1f} ms "
                f"(median of 5 processes; its tail cache read {held} of the session's {count} messages)"
            )
        section_context_kinds(url, tmp, histories[-1], args.turns)
    finally:
        server.terminate()
        server.wait()


def section_context_kinds(url: str, tmp: Path, h: int, n: int) -> None:
    """Context building at the largest H by language and kind of message: small talk, and the
    recall benchmark's questions (Chinese questions bring two-character search terms)."""
    seed_session(tmp / f"seed{h}-zh.db", "s", h, "zh")
    print(f"\ncontext building at H={h}, window {COST_WINDOW}, by message (p50 / p95 / max ms):")
    for lang in ("en", "zh"):
        db = tmp / f"seed{h}-zh.db" if lang == "zh" else tmp / f"cost{h}-{COST_WINDOW}-0.db"
        agent = make_agent(url, db, COST_WINDOW)
        agent.ask("s", history(1, lang, seed=3)[0][0])  # the summary is written, as in a live session
        kinds = {
            "small talk": [text for text, _ in history(n, lang, seed=h + 9)],
            "questions": [f.question for f in FACTS[lang]],
        }
        for kind, texts in kinds.items():
            samples = time_context(agent, texts)
            print(
                f"  {lang} {kind:<11} {median_ms(samples):6.2f} / {p95_ms(samples):6.2f} / {max(samples) * 1000:6.2f}"
            )
        agent.close()


# -- 2. recall of facts stated early -----------------------------------------------------------


@dataclass
class RecallRow:
    strategy: str
    lang: str
    turns: int
    present: list[bool] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    #: question turns: the request recounted with memchat's estimator, and the plan's figure
    request_tokens: list[int] = field(default_factory=list)
    question_tokens: list[int] = field(default_factory=list)
    failed_at: int | None = None
    failures: int = 0
    summary_calls: int = 0
    seconds: float = 0.0

    @property
    def share(self) -> float:
        return sum(self.present) / len(self.present) if self.present else 0.0


def play_recall(server: RecallServer, script: Script, strategy: str, db: Path, summaries_on: bool = True) -> RecallRow:
    from memchat import Agent, OpenAICompatible
    from memchat.errors import MemchatError
    from memchat.stores.sqlite import SQLiteStore
    from memchat.tokens import MESSAGE_OVERHEAD, estimate_tokens

    facts = FACTS[script.lang]
    server.reset(script.lang, {f.statement for f in facts}, summaries_on)
    persona = "你是一个简洁的助手。" if script.lang == "zh" else PERSONA
    store = SQLiteStore(db)
    store.create_session("r", persona=persona)
    provider = OpenAICompatible(base_url=server.url, model="bench", max_retries=0)
    agent = Agent(store=store, provider=provider, memory=strategy, context_window=RECALL_WINDOW)
    label = strategy if summaries_on else f"{strategy}, no summaries"
    row = RecallRow(label, script.lang, len(script.user))
    t = time.perf_counter()
    for i, text in enumerate(script.user):
        fact = script.asks.get(i)
        try:
            turn = agent.stream("r", text)
            for _ in turn:
                pass
        except MemchatError:
            row.failures += 1
            if row.failed_at is None:
                row.failed_at = i + 1
            if fact is not None:
                row.present.append(False)
                row.kinds.append(fact.kind)
                row.missed.append(fact.value)
            continue
        # the turn's call: the newest that is not a summary (memory upkeep writes those after the
        # turn, in the background, so one may already have followed it)
        sent = next(
            r.messages for r in reversed(server.server.chat_requests) if not server.is_summary_request(r.messages)
        )
        row.tokens.append(turn.plan.tokens)
        if fact is not None:
            row.request_tokens.append(
                sum(estimate_tokens(str(m.get("content") or "")) + MESSAGE_OVERHEAD for m in sent)
            )
            row.question_tokens.append(turn.plan.tokens)
            context = "\n".join(str(m.get("content") or "") for m in sent[:-1])
            found = fact.value.lower() in context.lower()
            row.present.append(found)
            row.kinds.append(fact.kind)
            if not found:
                row.missed.append(fact.value)
    row.seconds = time.perf_counter() - t
    row.summary_calls = server.summary_calls
    agent.close()
    return row


RECALL_PLANS = (("full", True), ("window", True), ("summary", True), ("recall", True), ("auto", True), ("auto", False))


def recall_job(job: tuple[int, str, str, bool, float, float, str]) -> RecallRow:
    """One recall run, with its own loopback server (runs in a worker process)."""
    turns, lang, strategy, summaries_on, keep_first, keep_rewrite, db = job
    server = RecallServer(keep_first, keep_rewrite)
    try:
        return play_recall(server, recall_script(turns, lang), strategy, Path(db), summaries_on)
    finally:
        server.close()


def section_recall(args: argparse.Namespace, tmp: Path) -> list[RecallRow]:
    from concurrent.futures import ProcessPoolExecutor

    sizes = (RECALL_SESSIONS[0],) if args.quick else RECALL_SESSIONS
    print(
        f"\n## 2. recall of facts stated early, context_window={RECALL_WINDOW} "
        f"(lossy summarizer: keep-first {args.keep_first}, keep-rewrite {args.keep_rewrite})"
    )
    print(
        f"{'session':>10} {'strategy':<20} {'facts in context':>17} {'lexical':>8} {'paraphr.':>8} "
        f"{'tokens p50':>10} {'max':>5} {'recount':>7} {'summ. calls':>11} {'s':>5}"
    )
    jobs = [
        (turns, lang, strategy, on, args.keep_first, args.keep_rewrite, str(tmp / f"recall-{turns}-{lang}-{k}.db"))
        for turns in sizes
        for lang in ("en", "zh")
        for k, (strategy, on) in enumerate(RECALL_PLANS)
    ]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(recall_job, jobs))
    for row in rows:
        print_recall(row)
    return rows


def print_recall(row: RecallRow) -> None:
    def share(kind: str) -> str:
        got = [p for p, k in zip(row.present, row.kinds, strict=True) if k == kind]
        return f"{sum(got)}/{len(got)}"

    tokens = f"{statistics.median(row.tokens):>10.0f} {max(row.tokens):>5}" if row.tokens else f"{'-':>10} {'-':>5}"
    drift = [abs(r - t) for r, t in zip(row.request_tokens, row.question_tokens, strict=True)]
    req = f"{'±' + str(max(drift)):>7}" if drift else f"{'-':>7}"
    note = "missed: " + ", ".join(row.missed) if row.missed else ""
    if len(row.missed) == len(row.present):
        note = "missed: all"
    if row.failed_at is not None:
        note = f"refused from turn {row.failed_at} on ({row.failures} turns: ContextTooLong)"
    print(
        f"{row.lang + ' ' + str(row.turns):>10} {row.strategy:<20} {100 * row.share:>16.0f}% {share('lexical'):>8} "
        f"{share('paraphrase'):>8} {tokens} {req} {row.summary_calls:>11} {row.seconds:>5.1f}  {note}",
        flush=True,
    )


# -- 3. a long chat on the embedded model ----------------------------------------------------------

LOCAL_TOPICS = (
    "the moon",
    "honey bees",
    "the Nile",
    "volcanoes",
    "penguins",
    "the printing press",
    "tea",
    "glaciers",
    "octopuses",
    "the Roman roads",
    "lightning",
    "coral reefs",
    "bamboo",
    "the violin",
    "comets",
    "salt",
    "owls",
    "the Sahara",
    "maple syrup",
    "chess",
)


@dataclass
class LocalTurn:
    n: int
    ttft_ms: float
    plan_ms: float
    prompt: int
    reused: int
    summary: bool
    #: the model said the context was too long, and the turn was planned again smaller
    retried: bool = False


def bench_local(provider: Any, db: Path, turns: int, window: int | None) -> tuple[list[LocalTurn], list[str]]:
    from memchat import Agent
    from memchat.errors import MemchatError
    from memchat.providers.base import ChatOptions
    from memchat.stores.sqlite import SQLiteStore

    store = SQLiteStore(db)
    store.create_session("local", persona="You are a helpful assistant. Answer briefly.")
    agent = Agent(
        store=store, provider=provider, memory="auto", context_window=window, options=ChatOptions(max_tokens=48)
    )
    out: list[LocalTurn] = []
    errors: list[str] = []
    for i in range(turns):
        topic = LOCAL_TOPICS[i % len(LOCAL_TOPICS)]
        text = f"Question {i + 1}: tell me one surprising fact about {topic}, in a single sentence."
        before = len(store.summaries("local"))
        t = time.perf_counter()
        first = None
        try:
            turn = agent.stream("local", text)
            planned = time.perf_counter() - t
            for chunk in turn:
                if chunk.text and first is None:
                    first = time.perf_counter() - t
        except MemchatError as exc:
            errors.append(f"turn {i + 1}: {exc}")
            continue
        stats = provider.last_stats
        out.append(
            LocalTurn(
                i + 1,
                (first or 0.0) * 1000,
                planned * 1000,
                stats.prompt_tokens if stats else 0,
                stats.reused_tokens if stats else 0,
                len(store.summaries("local")) > before,
                turn.plan.budget.window < (window or provider.context_window),
            )
        )
    agent.store.close()
    return out, errors


def print_local(label: str, turns: list[LocalTurn], errors: list[str]) -> None:
    plain = [t for t in turns if not t.summary]
    ttft = [t.ttft_ms for t in plain]
    print(f"{label}: {len(turns)} turns completed, {len(errors)} errors{': ' + '; '.join(errors) if errors else ''}")
    if ttft:
        tenth = max(1, len(ttft) // 6)
        early, late = statistics.median(ttft[:tenth]), statistics.median(ttft[-tenth:])
        print(
            f"  TTFT without summary turns ({len(plain)}): first {ttft[0]:.0f} ms, median {statistics.median(ttft):.0f}"
            f" ms, max {max(ttft):.0f} ms, last {ttft[-1]:.0f} ms; median of the last {tenth} / first {tenth}:"
            f" {late / early:.2f}x"
        )
    print("  TTFT per turn, ms (* wrote a summary, ! retried smaller after the model's overflow error):")
    print("    " + " ".join(f"{t.ttft_ms:.0f}{'*' if t.summary else ''}{'!' if t.retried else ''}" for t in turns))
    print("  prompt tokens per turn (of which evaluated, i.e. not reused from the KV cache):")
    print("    " + " ".join(f"{t.prompt}({t.prompt - t.reused})" for t in turns))
    for t in turns:
        if t.summary:
            where = "in the retry" if t.retried else f"{t.plan_ms:.0f} ms in planning + summary"
            print(
                f"  turn {t.n} wrote a summary: TTFT {t.ttft_ms:.0f} ms ({where}); "
                f"prompt {t.prompt} tokens, {t.prompt - t.reused} evaluated"
            )


def section_local(args: argparse.Namespace, tmp: Path) -> None:
    from memchat import LocalLlama

    print(f"\n## 3. {args.local_turns}-turn chat on the embedded model, auto, max_tokens=48")
    for window in (None, RECALL_WINDOW):
        # with 2048 the model itself is loaded with a 2,048-token context: a plan that does not
        # fit would fail in llama.cpp, not only in memchat's arithmetic
        provider = LocalLlama(context_window=window)
        provider.count_tokens("load the model before timing")
        label = f"{provider.model}, context_window={window or f'default ({provider.context_window})'}"
        turns, errors = bench_local(provider, tmp / f"local-{window}.db", args.local_turns, window)
        print_local(label, turns, errors)


# -- main ------------------------------------------------------------------------------------------


def machine_reference() -> str:
    baseline = []
    for _ in range(10):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - t)
    return f"machine reference: `python -c pass` takes {median_ms(baseline):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=30, help="measured turns per H and round (cost)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the cost measurement (samples pooled)")
    parser.add_argument("--local-turns", type=int, default=60, help="turns of the embedded-model chat")
    parser.add_argument("--quick", action="store_true", help="recall on 200-turn sessions only; 20-turn local chat")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--skip-recall", action="store_true")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for the recall runs")
    parser.add_argument("--profile", action="store_true", help="cProfile the turns at the largest H")
    parser.add_argument("--keep-first", type=float, default=0.9, help="fake summarizer: P(a fact shown is kept)")
    parser.add_argument(
        "--keep-rewrite", type=float, default=0.99, help="fake summarizer: P(a fact survives a rewrite)"
    )
    parser.add_argument("--cold-probe", nargs=2, metavar=("URL", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_probe:
        cold_probe(*args.cold_probe)
        return
    if args.quick and args.local_turns == 60:
        args.local_turns = 20

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=True, capture_output=True)
    print(machine_reference())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if not args.skip_cost:
            section_cost(args, tmp)
        if not args.skip_recall:
            section_recall(args, tmp)
        if not args.skip_local:
            section_local(args, tmp)
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
