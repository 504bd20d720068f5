# ruff: noqa: E501  (the phrase pools are long string literals)
"""A deterministic generator of multi-session user histories ("haystacks") with questions in the
categories LongMemEval uses, in English and Chinese, for ``bench/bench_longmem.py``.

One haystack is one user's past: 30–60 sessions spread over about eight months before ``now``,
each of 3–8 exchanges on a filler topic (travel planning, cooking, coding help, health, work
emails, money, home, fitness, books and films, pets, cars, family), with long assistant replies
(100–300 words, or 150–450 Chinese characters, drawn from paragraph pools). The evidence of a
question is an aside inside a user turn about something else; distractor turns mention the same
topic without the answer. Questions (asked later, each in a new session):

``user_fact``     something the user said once (their dog's name, their commute)
``preference``    a preference or an instruction ("aisle seats", "always metric units"); some
                  questions only imply it ("How tall is Kilimanjaro?" needs the metric rule)
``update``        a fact that changed (moved city, new job): ``needed`` is the newer value,
                  ``stale`` the older one(s)
``temporal``      an event on a dated session ("which band did I see last month?", "when did I
                  last see the dentist?"); a same-kind event at another time is a distractor
``aggregation``   2–4 items from different sessions ("how many books did I buy?"): all needed

Ground truth is a distinctive answer string per needed fact; the generator checks that each
appears in exactly the messages it planted (and never in a question), so "found" means
"that string is in the context sent". Questions are worded apart from their evidence ("What is
my dog called?" for "we adopted a rescue puppy … called her Biscuit"); ``overlap`` measures
it: the number of content words (English words of 3+ letters minus function words; Chinese
character bigrams minus question words) the question shares with its evidence — "none",
"one" (usually the topic noun alone) or "several".

Everything comes from ``random.Random(seed)``; dates are relative to ``now`` (the bench passes
today's date, so "last month" agrees with the date line memchat sends).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

# -- the output ----------------------------------------------------------------------------------


@dataclass
class Turn:
    role: str  # "user" | "assistant"
    text: str
    created: datetime


@dataclass
class Session:
    name: str
    topic: str
    created: datetime
    turns: list[Turn] = field(default_factory=list)


@dataclass
class Question:
    qid: str
    lang: str
    category: str
    text: str
    #: answer strings that must all be in the context
    needed: tuple[str, ...]
    #: for updates: the older values (served without the newer one = a stale answer)
    stale: tuple[str, ...] = ()
    #: content words shared with the evidence: "none" | "one" | "several" (see ``word_overlap``)
    overlap: str = "several"
    #: the dates of the sessions holding the needed facts
    dates: tuple[date, ...] = ()
    kind: str = ""


@dataclass
class Haystack:
    user: str
    lang: str
    seed: int
    now: datetime
    sessions: list[Session]
    questions: list[Question]

    @property
    def messages(self) -> int:
        return sum(len(s.turns) for s in self.sessions)


# -- filler: topics, user openers, assistant paragraphs -------------------------------------------


@dataclass(frozen=True)
class Topic:
    name: str
    items: tuple[str, ...]
    openers: tuple[str, ...]
    followups: tuple[str, ...]
    sentences: tuple[str, ...]


EN_TOPICS = (
    Topic(
        "travel planning",
        ("Porto", "the Dolomites", "Hanoi", "Quebec City", "the Scottish Highlands", "Crete"),
        (
            "I'm planning a {n}-day trip to {x} in the spring. Where should I even start?",
            "Can you sketch an itinerary for {x}? We'd have about {n} days and a modest budget.",
            "Is {x} worth visiting in the off season, or will half of it be closed?",
            "What's the smartest way to get around {x} without renting a car?",
        ),
        (
            "What about luggage, should I just do carry-on only?",
            "How far ahead do flights usually get cheaper, honestly?",
            "Any tips for not getting wrecked by jet lag on the way back?",
        ),
        (
            "For {x}, I would split the days between one base in the centre and a short hop to somewhere quieter.",
            "Booking the flight six to eight weeks ahead usually lands the best fares, though mid-week departures help even more.",
            "A rail pass only pays off if you take more than three long journeys, so price the single tickets first.",
            "Pack for layers rather than for the forecast; spring weather in {x} changes twice before lunch.",
            "Leave the first afternoon free, because the flight almost always eats more of the day than you expect.",
            "Carry-on only works well if you plan one laundry stop around the middle of the trip.",
            "Local buses are cheap and frequent, and a day ticket is usually cheaper than three single fares.",
            "Keep a scan of your passport in your email in case the paper one goes missing.",
            "For jet lag, get outside in daylight on the first morning and avoid a long nap after arrival.",
        ),
    ),
    Topic(
        "cooking",
        ("a lentil curry", "a sheet-pan dinner", "homemade pasta", "a big pot of chili", "fried rice", "a frittata"),
        (
            "I want to make {x} tonight but I only have about {n} minutes. Doable?",
            "What can I batch-cook on Sunday so weekday dinners are less chaotic?",
            "My {x} always comes out bland. What am I doing wrong?",
            "Could you give me a simple recipe for {x} that serves four?",
        ),
        (
            "Can I freeze the leftovers, or does it go soggy?",
            "What would you swap in if I'm out of garlic?",
            "How do I stop everything sticking to the pan?",
        ),
        (
            "Start by getting the pan properly hot before anything goes in; most stuck food is a pan that was not ready.",
            "Salt in stages rather than all at the end, and taste after each addition.",
            "An acid at the end, a squeeze of lemon or a splash of vinegar, wakes up a dish that tastes flat.",
            "For {x}, chop everything before you turn on the heat so nothing burns while you hunt for the next ingredient.",
            "Batch cooking works best with two bases, such as a tray of roasted vegetables and a pot of grains, that you combine differently each night.",
            "Most stews and curries freeze well for up to three months if you cool them quickly and store them flat.",
            "If you run out of garlic, a little onion powder or a few spring onions will carry the dish.",
            "Toast whole spices in a dry pan for a minute; the difference in flavour is bigger than you would think.",
            "A heavy pan holds its heat, so the food browns instead of steaming.",
        ),
    ),
    Topic(
        "coding help",
        ("a Python script", "a SQL query", "a bash one-liner", "a React component", "a CSV parser", "a unit test"),
        (
            "Can you help me debug {x}? It works on my laptop but fails on the server.",
            "I need {x} that reads a file of about {n} thousand lines and groups them by date.",
            "Why would {x} be so slow? It takes {n} seconds on a tiny input.",
            "What's a clean way to structure {x} so my teammates can follow it?",
        ),
        (
            "Should I add type hints to all of it or just the public functions?",
            "How would you test the error path?",
            "Is there a library that already does this?",
        ),
        (
            "The usual culprit when something works locally but not on the server is a different working directory or a missing environment variable.",
            "Print the exact input right before the failure; nine times out of ten the data is not what you think it is.",
            "For {x}, I would separate reading the input from the processing so each part can be tested on its own.",
            "Grouping by date is easiest if you parse the timestamps once, up front, into real date objects.",
            "Type hints on the public functions give you most of the benefit; the internals can follow later.",
            "Test the error path by feeding it a deliberately broken line and checking the message it raises.",
            "If it is slow on a tiny input, look for a query or a file read inside a loop.",
            "A small profiler run will usually point at one function that takes almost all of the time.",
            "Keep the functions short and name them after what they return rather than what they do.",
        ),
    ),
    Topic(
        "health",
        (
            "lower back pain",
            "trouble sleeping",
            "seasonal allergies",
            "a stiff neck",
            "low energy in the afternoon",
            "headaches",
        ),
        (
            "I've had {x} for about {n} days now. Anything I can try at home?",
            "Is {x} something I should see a doctor about, or will it pass?",
            "What habits actually help with {x}? I've read so much conflicting advice.",
            "Could my desk setup be causing {x}?",
        ),
        (
            "How much water should I really be drinking?",
            "Is it fine to keep exercising through it?",
            "What should I ask at the appointment?",
        ),
        (
            "I am not a doctor, but a few gentle changes are worth trying before you worry.",
            "If {x} lasts more than a couple of weeks or gets worse suddenly, book an appointment with your GP.",
            "A regular sleep and wake time does more for energy than almost any supplement.",
            "Set the top of your screen at eye level and keep your feet flat on the floor.",
            "Short walks every hour help the back and the neck more than one long workout at the end of the day.",
            "Write down when the symptoms come and go; a simple log makes the appointment far more useful.",
            "Light exercise is usually fine, but stop anything that makes the pain sharper.",
            "Caffeine after two in the afternoon can quietly wreck your sleep even if you fall asleep easily.",
            "Ask at the appointment what would make this urgent, so you know when to come back.",
        ),
    ),
    Topic(
        "work emails",
        ("a client", "my team", "the finance department", "a supplier", "a new hire", "our director"),
        (
            "Can you help me write an email to {x} about a deadline that's going to slip by {n} days?",
            "I need to send {x} a polite reminder that they still owe us feedback.",
            "How do I say no to {x} without sounding rude?",
            "Could you make this email to {x} shorter? It's way too long.",
        ),
        (
            "Is it too blunt to put the ask in the subject line?",
            "Should I copy my manager on this?",
            "How long should I wait before following up again?",
        ),
        (
            "Lead with the ask in the first sentence, then give the reason, then the next step.",
            "A subject line that states the action, such as 'Decision needed by Friday', gets read first.",
            "When a deadline slips, say so early, give the new date, and say what you are doing to protect it.",
            "Saying no is easier when you offer what you can do instead, even if it is smaller.",
            "Copy people who need to act, not everyone who might be curious.",
            "Three short paragraphs are plenty; anything longer belongs in a call or a document.",
            "Wait two working days before a gentle follow-up, and keep the follow-up to two lines.",
            "For {x}, keep the tone warm but specific: names, dates and the one thing you need.",
            "End with a clear question, so the reply can be a single line.",
        ),
    ),
    Topic(
        "personal finance",
        (
            "an emergency fund",
            "a monthly budget",
            "paying off a credit card",
            "saving for a holiday",
            "an index fund",
            "a pension top-up",
        ),
        (
            "How should I think about {x}? I can put aside maybe {n} a month.",
            "Is it better to focus on {x} first or on investing?",
            "I keep failing at {x}. Any system that actually sticks?",
            "What's a sensible first step toward {x}?",
        ),
        (
            "Should I automate the transfer on payday?",
            "What about the small subscriptions that add up?",
            "How big should the cushion be before I invest?",
        ),
        (
            "Automating the transfer on payday removes the monthly decision, which is where most plans fail.",
            "Three to six months of essential spending is the usual target for a cushion.",
            "High-interest debt usually comes first, because nothing you invest reliably beats that rate.",
            "Go through your bank statement once and cancel every subscription you would not sign up for again today.",
            "A budget with four or five categories is easier to keep than one with twenty.",
            "For {x}, a separate account with its own name makes the money feel spoken for.",
            "Low-cost index funds are a reasonable default for money you will not need for years.",
            "Review the plan every quarter rather than every day; daily checking mostly creates anxiety.",
            "Small wins matter: the first full month on plan is worth celebrating.",
        ),
    ),
    Topic(
        "home and garden",
        (
            "the balcony tomatoes",
            "a leaking tap",
            "the spare room",
            "the lawn",
            "a squeaky door",
            "the kitchen shelves",
        ),
        (
            "What can I do about {x} this weekend? I have maybe {n} hours.",
            "I'm finally tackling {x}. What tools do I need?",
            "Any idea why {x} keeps going wrong?",
            "How would you organise {x} on a small budget?",
        ),
        (
            "Should I call someone or is this a DIY job?",
            "What's the cheapest fix that still looks decent?",
            "How often does this need doing?",
        ),
        (
            "Most small jobs need only a screwdriver set, an adjustable spanner and a bit of patience.",
            "Turn off the water at the valve under the sink before you open anything.",
            "Watering deeply twice a week is better for plants than a splash every day.",
            "For {x}, take a photo before you take anything apart so you know how it goes back together.",
            "Clear storage boxes with labels save more time than any clever shelving system.",
            "If anything involves gas or the main electrics, call a professional.",
            "A little silicone spray on the hinge is usually all a squeaky door needs.",
            "Do one corner properly before spreading across the whole room, so you see progress.",
            "Check the job again after a week; small leaks and loose fittings show up later.",
        ),
    ),
    Topic(
        "fitness",
        ("a couch-to-5K plan", "strength training", "stretching", "swimming laps", "a rowing machine", "hill walking"),
        (
            "I want to get back into {x}. How many sessions a week is realistic with {n} spare minutes a day?",
            "What's a good beginner routine for {x}?",
            "I always quit {x} after two weeks. How do I stay consistent?",
            "Is {x} enough on its own, or should I mix something in?",
        ),
        (
            "Do I need to stretch before or after?",
            "How sore is too sore?",
            "Does it matter what time of day I train?",
        ),
        (
            "Three short sessions a week is a realistic start and leaves room for rest days.",
            "For {x}, progress by a little each week, roughly ten percent, so your joints keep up.",
            "Stretching after the session, when the muscles are warm, is more comfortable than before.",
            "Mild soreness for a day or two is normal; sharp pain or swelling is a reason to stop.",
            "Consistency beats intensity: the best plan is the one you still follow in a month.",
            "Put the sessions in your calendar like meetings, and lay your kit out the night before.",
            "Mixing in two strength sessions a week protects the knees and the back.",
            "The time of day matters far less than doing it regularly.",
            "Sleep and food are part of training, not something separate from it.",
        ),
    ),
    Topic(
        "books and films",
        (
            "a slow-burn thriller",
            "a documentary",
            "a science-fiction novel",
            "a comedy series",
            "a historical drama",
            "an audiobook",
        ),
        (
            "Can you recommend {x}? I liked the last one you suggested.",
            "I have a {n}-hour train ride. What would make it fly by?",
            "Is it worth finishing {x} if the first half dragged?",
            "What should I watch with friends who hate subtitles?",
        ),
        (
            "Anything shorter? My attention span is gone this week.",
            "What about something lighter?",
            "Is the adaptation any good, or should I skip it?",
        ),
        (
            "If the first half dragged, give it fifty more pages; if nothing has hooked you by then, stop without guilt.",
            "For a long train ride, an audiobook with a strong narrator is hard to beat.",
            "Adaptations are best treated as a separate work; some improve on the original, most compress it.",
            "For {x}, pick something with short chapters so you can stop at any station.",
            "A comedy series works well with friends because nobody minds missing a line.",
            "Reading reviews after you finish, rather than before, keeps the surprises intact.",
            "Libraries often lend e-books and audiobooks through an app, which saves a lot of money.",
            "Try alternating something demanding with something light, so you do not stall.",
            "Keep a short list of what you liked and why; it makes the next pick much easier.",
        ),
    ),
    Topic(
        "pets",
        (
            "the neighbour's cat",
            "a friend's dog",
            "a pet-sitting job",
            "a stray kitten",
            "the vet bills",
            "a dog-friendly café",
        ),
        (
            "I'm looking after {x} for {n} days. What should I know?",
            "Any advice on {x}? I've never dealt with this before.",
            "How do I keep a dog calm during fireworks?",
            "What's a reasonable pet-insurance budget?",
        ),
        (
            "How often should they be walked?",
            "What food is safe as a treat?",
            "Is it normal for them to hide the first day?",
        ),
        (
            "Keep the routine the owner uses: the same feeding times and the same walk times.",
            "Hiding for a day in a new place is normal; give them a quiet corner and let them come out on their own.",
            "Plain cooked chicken or a little carrot is a safe treat; chocolate, grapes and onions are not.",
            "During fireworks, close the curtains, play background noise and do not force them out of their hiding spot.",
            "For {x}, write the vet's number on the fridge before anything happens.",
            "Most dogs need at least two walks a day, and a short sniff walk counts.",
            "Pet insurance is worth comparing on the excess and the yearly limit, not just the monthly price.",
            "A tired animal is a calm animal; a bit of play before bedtime helps everyone sleep.",
            "Ask the owner about any habits that look strange but are normal for their pet.",
        ),
    ),
    Topic(
        "cars and getting around",
        (
            "a tyre that keeps losing air",
            "the annual service",
            "a second-hand car",
            "winter driving",
            "parking in town",
            "an electric scooter",
        ),
        (
            "What should I do about {x}? I drive about {n} kilometres a week.",
            "Is {x} worth the money, in your opinion?",
            "Any checklist for {x}?",
            "How do I make my drive to work less stressful?",
        ),
        (
            "Can I do any of this myself?",
            "What's a fair price for that?",
            "Is public transport a realistic alternative here?",
        ),
        (
            "A tyre that keeps losing air often has a slow puncture or a leaky valve; a tyre shop can check both in minutes.",
            "For {x}, ask for the service history and a test drive on a cold engine.",
            "Check tyre pressure once a month; it saves fuel and makes the car safer.",
            "Leaving ten minutes earlier takes most of the stress out of a drive to work.",
            "In winter, keep a scraper, a blanket and a charged phone in the car.",
            "Comparing two or three quotes for the same job usually shows what a fair price is.",
            "A podcast or an audiobook turns a dull drive into time you actually enjoy.",
            "Park a little further away and walk the last stretch; it is often quicker than circling.",
            "Public transport is worth a two-week trial before you decide it does not work.",
        ),
    ),
    Topic(
        "family and friends",
        (
            "my mum's birthday",
            "a surprise party",
            "a wedding toast",
            "the school holidays",
            "a family reunion",
            "a housewarming",
        ),
        (
            "I need ideas for {x}. The budget is around {n}.",
            "How do I plan {x} without it taking over my whole month?",
            "What's a thoughtful gift for {x} that isn't just another candle?",
            "Can you help me write a few lines for {x}?",
        ),
        (
            "What if half the people can't make that date?",
            "How far ahead should I send the invitations?",
            "Any way to keep the costs down?",
        ),
        (
            "For {x}, decide the date and the guest list first; everything else follows from those two.",
            "A shared document with a simple checklist stops the planning from living in your head.",
            "Experiences, such as a class or a day out, tend to be remembered longer than objects.",
            "Send invitations three to four weeks ahead, and a short reminder a few days before.",
            "Potluck style keeps costs down and makes guests feel part of it.",
            "A toast works best at about a minute: one story, one compliment, one raised glass.",
            "If half the people cannot make a date, offer two options and go with the majority.",
            "Delegate one job to each helper rather than asking everyone to help with everything.",
            "Leave an hour of slack in the schedule; something always runs late.",
        ),
    ),
)

EN_INTROS = (
    "Good question, and it comes up a lot.",
    "Sure, here is how I would approach it.",
    "That is very doable with a bit of planning.",
    "Happy to help with that.",
    "There are a few ways to go about this, so let me lay out the one I would start with.",
    "Short answer: yes, with a couple of caveats.",
)
EN_GENERIC = (
    "It helps to decide in advance what a good outcome looks like, so you know when to stop.",
    "Start with the smallest version that works, then improve it once you see how it goes.",
    "Write the plan down, even roughly; a list on paper is easier to follow than one in your head.",
    "Give yourself a deadline that is a little earlier than the real one.",
    "If you feel stuck, change one thing at a time so you can tell what made the difference.",
    "Most people overestimate what they can do in a day and underestimate what they can do in a month.",
    "Ask someone who has done it before; ten minutes of their time can save you hours.",
    "Keep a note of what worked this time, because you will forget the details by next time.",
    "Do not aim for perfect on the first attempt, aim for finished.",
    "Be honest about the budget up front; it shapes every other decision.",
    "A short check-in halfway through is often enough to catch problems early.",
    "Remember to leave some room for rest, or the plan will not survive a busy week.",
    "Comparing two or three options side by side makes the choice much clearer.",
    "When in doubt, choose the option that is easiest to undo.",
    "Reading the instructions once all the way through before starting saves a surprising amount of time.",
    "Plan the first step in detail and the rest only roughly; the details will change anyway.",
    "It is fine to drop anything that turns out not to matter as much as you thought.",
    "Good tools help, but a clear idea of the goal helps more.",
    "Set a reminder for the follow-up now, while it is fresh.",
    "If you share the plan with someone, you are far more likely to stick to it.",
    "Break the big task into pieces that take less than an hour each.",
    "A little preparation the evening before makes the morning much calmer.",
)
EN_CLOSES = (
    "Let me know how it goes, and we can adjust from there.",
    "If you tell me a bit more about your situation I can make this more specific.",
    "Happy to go into more detail on any of these steps.",
    "Good luck, and do not hesitate to come back with questions.",
    "Want me to turn this into a short checklist?",
    "I hope that helps you get started.",
)
EN_SMALLTALK = (
    "Thanks, that's really useful.",
    "Makes sense. I'll try that this week.",
    "Okay, one more thing on the same subject.",
    "Great, that's what I needed.",
    "Hmm, I hadn't thought of it that way.",
    "Good point. Let me think about it.",
)

ZH_TOPICS = (
    Topic(
        "旅行计划",
        ("青岛", "大理", "西安", "厦门", "张家界", "呼伦贝尔"),
        (
            "我打算春天去{x}玩{n}天，该从哪里开始规划？",
            "能帮我排一下{x}的行程吗？大概{n}天，预算不多。",
            "淡季去{x}值得吗？会不会很多地方都关门？",
            "不租车的话，在{x}怎么出行最方便？",
        ),
        ("行李的话，只带登机箱够不够？", "机票一般提前多久买最便宜？", "回来的时候怎么倒时差？"),
        (
            "去{x}的话，我建议住在市中心，再安排一两天去周边安静一点的地方。",
            "机票一般提前六到八周订最划算，周中出发往往更便宜。",
            "如果长途交通不超过三段，单独买票通常比买通票更省钱。",
            "衣服按层次准备，不要只看天气预报，{x}春天的天气一上午能变好几次。",
            "第一天下午最好空出来，路上花的时间几乎总是比预想的多。",
            "只带登机箱的话，最好在行程中间安排一次洗衣服。",
            "当地公交便宜又频繁，一日票通常比买三张单程票便宜。",
            "把护照扫描件发到自己的邮箱里，以防纸质的弄丢。",
            "倒时差的话，到达后第一天上午多晒太阳，别睡长午觉。",
        ),
    ),
    Topic(
        "做饭",
        ("红烧肉", "番茄炒蛋", "手擀面", "麻婆豆腐", "蛋炒饭", "清蒸鱼"),
        (
            "今晚想做{x}，但我只有{n}分钟左右，来得及吗？",
            "周末可以提前做些什么菜，让工作日晚饭不那么手忙脚乱？",
            "我做的{x}总是没味道，问题出在哪儿？",
            "能给我一个四人份{x}的简单做法吗？",
        ),
        ("剩菜能冷冻吗？会不会变得不好吃？", "家里没有蒜了，用什么代替？", "怎么才能不粘锅？"),
        (
            "先把锅烧热再下食材，大部分粘锅都是因为锅还没热透。",
            "盐要分几次放，每次放完尝一尝，不要最后一次性加。",
            "出锅前加一点醋或者柠檬汁，味道寡淡的菜会立刻鲜亮起来。",
            "做{x}之前先把所有材料切好备齐，免得一边找东西一边糊锅。",
            "提前备菜最好准备两种基础，比如一盘烤蔬菜和一锅杂粮饭，每天换着搭配。",
            "大部分炖菜和咖喱冷冻三个月都没问题，关键是快速放凉、摊平保存。",
            "没有蒜的话，用一点葱或者洋葱粉也能撑起味道。",
            "整粒香料先用干锅炒一分钟，香味会差很多。",
            "厚底锅保温好，食材能煎出焦香而不是被焖熟。",
        ),
    ),
    Topic(
        "编程问题",
        ("一个Python脚本", "一条SQL查询", "一个shell命令", "一个前端组件", "一个CSV解析器", "一个单元测试"),
        (
            "能帮我调试{x}吗？在我电脑上能跑，放到服务器上就报错。",
            "我需要{x}，读一个大概{n}千行的文件，按日期分组。",
            "为什么{x}这么慢？很小的输入都要{n}秒。",
            "{x}怎么组织才能让同事看得懂？",
        ),
        ("要不要给所有函数都加类型标注？", "出错的分支怎么测试？", "有没有现成的库可以用？"),
        (
            "本地能跑、服务器上报错，最常见的原因是工作目录不同或者少了环境变量。",
            "在出错的地方之前把输入原样打印出来，十有八九是数据和你想的不一样。",
            "写{x}的时候，我会把读取输入和处理逻辑分开，这样每部分都能单独测试。",
            "按日期分组的话，最好一开始就把时间戳统一解析成日期对象。",
            "公开函数加上类型标注就能得到大部分好处，内部的可以以后再补。",
            "测试出错分支时，故意喂一行坏数据，检查它抛出的错误信息。",
            "小输入都很慢的话，看看是不是在循环里查数据库或者读文件。",
            "用性能分析工具跑一次，通常会发现某一个函数占了几乎所有时间。",
            "函数尽量写短，用它返回什么来命名，而不是它做了什么。",
        ),
    ),
    Topic(
        "健康",
        ("腰疼", "失眠", "季节性过敏", "脖子僵硬", "下午犯困", "头疼"),
        (
            "我{x}已经{n}天了，在家能做点什么缓解一下？",
            "{x}需要去看医生吗，还是过几天自己就好了？",
            "哪些习惯真的对{x}有帮助？网上说法太多了。",
            "会不会是我的办公桌设置导致的{x}？",
        ),
        ("每天到底该喝多少水？", "这种情况还能继续运动吗？", "去看病的时候应该问些什么？"),
        (
            "我不是医生，不过在担心之前可以先试试几个温和的调整。",
            "如果{x}持续两周以上或者突然加重，一定要去医院看看。",
            "固定的作息时间对精力的帮助，比几乎任何保健品都大。",
            "显示器上沿和眼睛平齐，双脚平放在地上。",
            "每小时起来走几分钟，对腰和脖子的帮助比下班后练一大场还大。",
            "记录一下症状什么时候出现、什么时候消失，看病时会有用得多。",
            "轻度运动一般没问题，但任何让疼痛加剧的动作都要停下。",
            "下午两点以后喝咖啡，即使你能睡着，也可能悄悄影响睡眠质量。",
            "看病时问问医生什么情况算紧急，这样你知道什么时候该再来。",
        ),
    ),
    Topic(
        "工作邮件",
        ("客户", "团队", "财务部", "供应商", "新同事", "总监"),
        (
            "能帮我给{x}写封邮件吗？截止日期要推迟{n}天。",
            "我想礼貌地提醒一下{x}，他们的反馈还没给我们。",
            "怎么拒绝{x}才不显得失礼？",
            "能帮我把这封给{x}的邮件改短一点吗？太长了。",
        ),
        ("把请求直接写在标题里会不会太生硬？", "要不要抄送我的领导？", "多久之后再跟进比较合适？"),
        (
            "第一句话就写清楚你的请求，然后说原因，最后说下一步。",
            "标题直接写要做的事，比如“周五前需要确认”，更容易被先读到。",
            "截止日期要推迟的话，尽早说，给出新日期，并说明你打算怎么保证它。",
            "拒绝的时候，给出你能做到的替代方案，哪怕小一点，也会好接受很多。",
            "只抄送需要采取行动的人，而不是所有可能好奇的人。",
            "三个短段落就足够了，再长的内容适合开会或者写文档。",
            "等两个工作日再礼貌地跟进一次，跟进的内容两行就够。",
            "给{x}写信，语气要友好但具体：人名、日期和你需要的那一件事。",
            "结尾提一个明确的问题，让对方一句话就能回复。",
        ),
    ),
    Topic(
        "理财",
        ("应急储备金", "每月预算", "还信用卡", "存旅游基金", "指数基金", "养老金"),
        (
            "{x}应该怎么规划？我每个月大概能存{n}百块。",
            "应该先搞定{x}，还是先去投资？",
            "我{x}总是坚持不下来，有什么办法？",
            "{x}的第一步应该做什么？",
        ),
        ("发工资那天自动转账好不好？", "那些小额订阅加起来也不少，怎么办？", "存多少钱以后再开始投资？"),
        (
            "发工资当天自动转账，省掉了每个月的决定，而大多数计划就是败在这一步。",
            "应急储备一般是三到六个月的必要开支。",
            "高利率的欠款通常要先还，因为没有哪种投资能稳定跑赢那个利率。",
            "把银行账单过一遍，凡是今天不会再订的会员都取消掉。",
            "预算分四五个类别，比分二十个更容易坚持。",
            "{x}最好单独开一个账户，起个名字，钱就好像有了归属。",
            "低费率的指数基金，对几年内用不到的钱来说是个合理的默认选择。",
            "每个季度回顾一次计划就行，每天盯着看只会增加焦虑。",
            "小的胜利也很重要，第一个完整按计划执行的月份值得庆祝一下。",
        ),
    ),
    Topic(
        "家居园艺",
        ("阳台上的番茄", "漏水的水龙头", "客房", "小院子的草坪", "吱吱响的门", "厨房的架子"),
        (
            "这个周末我想处理一下{x}，大概有{n}个小时，能做些什么？",
            "我终于要收拾{x}了，需要准备哪些工具？",
            "{x}为什么老是出问题？",
            "预算不多的情况下，{x}怎么整理比较好？",
        ),
        ("要请人来还是自己动手就行？", "最便宜又好看的办法是什么？", "多久需要弄一次？"),
        (
            "大多数小活儿只需要一套螺丝刀、一个活动扳手和一点耐心。",
            "动手之前先把水槽下面的阀门关掉。",
            "植物一周浇两次透水，比每天浇一点要好。",
            "处理{x}之前先拍张照片，拆开以后才知道怎么装回去。",
            "带标签的透明收纳箱，比任何巧妙的架子都省时间。",
            "凡是涉及燃气或者总电路的，都请专业人员来。",
            "门吱吱响，通常在合页上喷一点硅油就好了。",
            "先把一个角落彻底弄好，再扩展到整个房间，这样能看到进展。",
            "一周后再检查一次，小的渗漏和松动往往过几天才显现出来。",
        ),
    ),
    Topic(
        "健身",
        ("跑步入门计划", "力量训练", "拉伸", "游泳", "划船机", "徒步"),
        (
            "我想重新开始{x}，每天有{n}分钟空闲，一周练几次比较现实？",
            "{x}有什么适合新手的安排？",
            "我每次{x}坚持两周就放弃了，怎么才能坚持下去？",
            "只练{x}够吗，还是要搭配别的？",
        ),
        ("拉伸应该在运动前还是运动后？", "酸痛到什么程度算太过了？", "一天中什么时候练比较好？"),
        (
            "一周三次短时间训练是个现实的开始，还能留出休息日。",
            "{x}每周进步一点点，大约百分之十，关节才跟得上。",
            "运动后肌肉热了再拉伸，比运动前拉伸舒服得多。",
            "轻微酸痛一两天是正常的，刺痛或者肿胀就该停下来。",
            "坚持比强度重要，最好的计划是一个月后你还在执行的那个。",
            "把训练像会议一样写进日历，前一天晚上把装备准备好。",
            "每周加两次力量训练，可以保护膝盖和腰。",
            "一天中什么时候练远没有规律地练重要。",
            "睡眠和饮食也是训练的一部分，不是额外的事。",
        ),
    ),
    Topic(
        "书和电影",
        ("一部悬疑片", "一部纪录片", "一本科幻小说", "一部喜剧", "一部历史剧", "一本有声书"),
        (
            "能推荐{x}吗？上次你推荐的我很喜欢。",
            "我要坐{n}个小时的高铁，有什么能打发时间的？",
            "{x}前半部分太拖沓了，还值得看完吗？",
            "和不爱看字幕的朋友一起看什么好？",
        ),
        ("有没有短一点的？这周实在没耐心。", "有没有轻松一点的？", "改编的版本好看吗，还是跳过？"),
        (
            "如果前半部分很拖，再给它五十页的机会，到时候还没被吸引就放下，不用内疚。",
            "长途坐车的话，一本朗读得好的有声书很难被超越。",
            "改编作品最好当成独立的作品来看，有的比原作好，大多数是压缩版。",
            "选{x}的话，挑章节短一点的，随时都能停下来。",
            "和朋友一起看喜剧很合适，漏掉一句台词也没人在意。",
            "看完再去看影评，而不是看之前，这样能保留惊喜。",
            "很多图书馆都能通过应用借电子书和有声书，能省不少钱。",
            "难一点的和轻松一点的交替着看，就不容易卡住。",
            "简单记一下喜欢什么、为什么喜欢，下次选起来容易得多。",
        ),
    ),
    Topic(
        "宠物",
        ("邻居家的猫", "朋友的狗", "帮人照看宠物", "一只流浪小猫", "宠物医院的账单", "能带狗的咖啡馆"),
        (
            "我要帮忙照看{x}{n}天，需要注意什么？",
            "关于{x}有什么建议吗？我以前从没遇到过。",
            "放烟花的时候怎么让狗安静下来？",
            "宠物保险的预算多少比较合理？",
        ),
        ("多久遛一次比较好？", "什么零食是安全的？", "第一天躲起来不出来正常吗？"),
        (
            "尽量保持主人原来的习惯：同样的喂食时间，同样的遛弯时间。",
            "到新环境躲一天是正常的，给它一个安静的角落，让它自己出来。",
            "白水煮的鸡肉或者一点胡萝卜是安全的零食，巧克力、葡萄和洋葱不行。",
            "放烟花时拉上窗帘，放点背景声音，不要硬把它从藏身的地方拉出来。",
            "照看{x}之前，先把宠物医院的电话贴在冰箱上。",
            "大多数狗一天至少要遛两次，短时间的闻闻嗅嗅也算。",
            "比较宠物保险时要看免赔额和年度上限，不只是月费。",
            "累了的动物才安静，睡前陪它玩一会儿，大家都睡得好。",
            "问问主人有哪些看起来奇怪但其实正常的习惯。",
        ),
    ),
    Topic(
        "汽车出行",
        ("一个老是漏气的轮胎", "年度保养", "一辆二手车", "冬天开车", "市区停车", "一辆电动滑板车"),
        (
            "{x}该怎么办？我一周大概开{n}公里。",
            "你觉得{x}值这个钱吗？",
            "{x}有没有检查清单？",
            "怎么让上班开车不那么累？",
        ),
        ("这些我能自己弄吗？", "这个价格合理吗？", "坐公共交通现实吗？"),
        (
            "轮胎老漏气，多半是慢撒气或者气门芯漏气，轮胎店几分钟就能查出来。",
            "看{x}的时候，要看保养记录，冷车状态下试驾一次。",
            "每月检查一次胎压，既省油又安全。",
            "早出门十分钟，上班路上的大部分压力就没了。",
            "冬天车里备一个刮冰器、一条毯子和一个充好电的手机。",
            "同一项维修比较两三家报价，通常就知道什么价格合理了。",
            "听播客或者有声书，能把无聊的车程变成享受的时间。",
            "停远一点再走过去，往往比绕圈找车位更快。",
            "公共交通值得先试两周，再决定行不行。",
        ),
    ),
    Topic(
        "家人朋友",
        ("妈妈的生日", "一个惊喜派对", "婚礼致辞", "孩子的暑假", "家庭聚会", "乔迁宴"),
        (
            "{x}我需要点子，预算大概{n}百块。",
            "怎么安排{x}才不会占掉我整个月？",
            "{x}送什么礼物既用心又不俗气？",
            "能帮我为{x}写几句话吗？",
        ),
        ("一半的人那天来不了怎么办？", "邀请要提前多久发？", "有什么省钱的办法吗？"),
        (
            "筹备{x}，先定日期和名单，其他的都由这两件事决定。",
            "建一个共享文档，列个简单的清单，就不用什么都记在脑子里。",
            "体验类的礼物，比如一节课或者一次出游，往往比物品记得更久。",
            "邀请提前三到四周发，活动前几天再简短提醒一下。",
            "每人带一个菜的形式既省钱，又让客人有参与感。",
            "致辞一分钟左右最好：一个故事，一句赞美，一起举杯。",
            "如果一半的人来不了，给两个日期选，按多数人的来。",
            "给每个帮忙的人分一件具体的事，而不是让大家什么都帮一点。",
            "日程里留出一个小时的余量，总有事情会拖延。",
        ),
    ),
)
ZH_INTROS = (
    "好问题，这个很多人都会遇到。",
    "没问题，我会这样来考虑。",
    "稍微规划一下，这完全做得到。",
    "很乐意帮忙。",
    "有几种思路，我先说说我会从哪一种开始。",
    "简单来说：可以，不过有几点需要注意。",
)
ZH_GENERIC = (
    "事先想清楚什么样的结果算好，你就知道什么时候可以停下来。",
    "先做一个能用的最小版本，看看效果再慢慢改进。",
    "把计划写下来，哪怕很粗略，纸上的清单比脑子里的好执行。",
    "给自己定一个比真正期限早一点的截止时间。",
    "如果卡住了，每次只改一件事，这样才知道是什么起了作用。",
    "大多数人高估了自己一天能做的事，却低估了一个月能做的事。",
    "问问做过的人，他们十分钟的经验可能帮你省下好几个小时。",
    "记下这次哪些做法有效，下次细节肯定就忘了。",
    "第一次不要追求完美，先追求完成。",
    "一开始就把预算说清楚，它会影响后面的每一个决定。",
    "做到一半时简单检查一次，通常就能及早发现问题。",
    "记得给休息留出空间，不然计划撑不过忙碌的一周。",
    "把两三个选项放在一起比较，选择会清楚很多。",
    "拿不准的时候，选最容易反悔的那个方案。",
    "开始之前把说明完整读一遍，能省下意想不到的时间。",
    "第一步计划得详细一点，后面的粗略一些就行，反正细节还会变。",
    "发现某件事没那么重要，放下它完全没问题。",
    "好工具有帮助，但清楚的目标帮助更大。",
    "趁现在还记得，把跟进的提醒设好。",
    "把计划告诉别人，你坚持下去的可能性会大很多。",
    "把大任务拆成每块不到一小时的小任务。",
    "前一天晚上稍微准备一下，第二天早上会从容很多。",
)
ZH_CLOSES = (
    "试试看效果如何，我们再根据情况调整。",
    "如果你再多说说你的具体情况，我可以给出更有针对性的建议。",
    "哪一步想了解得更详细，随时告诉我。",
    "祝顺利，有问题随时回来问。",
    "要不要我把这些整理成一个简短的清单？",
    "希望这能帮你开个好头。",
)
ZH_SMALLTALK = (
    "谢谢，这个很有用。",
    "有道理，这周我试试。",
    "好的，同一个话题再问一个问题。",
    "太好了，正是我需要的。",
    "嗯，我之前没从这个角度想过。",
    "说得对，我再想想。",
)

LANG = {
    "en": (EN_TOPICS, EN_INTROS, EN_GENERIC, EN_CLOSES, EN_SMALLTALK),
    "zh": (ZH_TOPICS, ZH_INTROS, ZH_GENERIC, ZH_CLOSES, ZH_SMALLTALK),
}
EN_ASIDES = ("By the way, ", "Oh, and unrelated: ", "Random aside, ", "Also, ", "Side note: ", "")
ZH_ASIDES = ("对了，", "顺便说一句，", "题外话，", "另外，", "插一句，", "")


def _words(text: str, lang: str) -> int:
    return len(text.split()) if lang == "en" else len(re.findall(r"[\u4e00-\u9fff]", text)) // 3 * 2


def assistant_reply(rng: random.Random, lang: str, topic: Topic) -> str:
    """100–300 words (Chinese: 150–450 characters) on ``topic``, in 2–3 paragraphs."""
    _, intros, generic, closes, _ = LANG[lang]
    target = rng.randint(100, 300)
    pool = [s for s in topic.sentences] + rng.sample(generic, len(generic))
    rng.shuffle(pool)
    sentences = [rng.choice(intros)]
    close = rng.choice(closes)
    count = _words(sentences[0] + close, lang)
    for s in pool:
        if count >= target:
            break
        s = s.format(x=rng.choice(topic.items))
        sentences.append(s)
        count += _words(s, lang)
    sentences.append(close)
    # 2–3 paragraphs
    cuts = sorted(rng.sample(range(2, len(sentences) - 1), k=min(2, max(0, len(sentences) - 3))))
    paras, last = [], 0
    for c in [*cuts, len(sentences)]:
        paras.append(("" if lang == "zh" else " ").join(sentences[last:c]))
        last = c
    return "\n\n".join(p for p in paras if p)


def user_opener(rng: random.Random, lang: str, topic: Topic, first: bool) -> str:
    n = rng.choice((2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, 40, 45))
    pool = topic.openers if first or rng.random() < 0.35 else topic.followups
    return rng.choice(pool).format(x=rng.choice(topic.items), n=n)


# -- what the questions ask about ------------------------------------------------------------------


@dataclass(frozen=True)
class FactType:
    """A single-session fact or preference: evidence templates with ``{v}``, questions, distractors."""

    key: str
    values: tuple[str, ...]
    evidence: tuple[str, ...]
    lexical: tuple[str, ...]
    paraphrase: tuple[str, ...]
    distractors: tuple[str, ...]
    #: the answer string when it is not the value itself (a preference's key phrase)
    answer: str | None = None


@dataclass(frozen=True)
class UpdateType:
    key: str
    values: tuple[str, ...]
    old: tuple[str, ...]
    new: tuple[str, ...]
    lexical: tuple[str, ...]
    paraphrase: tuple[str, ...]
    distractors: tuple[str, ...]


@dataclass(frozen=True)
class EventType:
    """A dated event: ``evidence`` is said on the day; questions per time spec."""

    key: str
    values: tuple[str, ...]
    evidence: tuple[str, ...]
    #: spec → question templates ({month} for "in_month")
    questions: dict[str, tuple[str, ...]]
    distractors: tuple[str, ...]


@dataclass(frozen=True)
class AggType:
    key: str
    values: tuple[str, ...]
    evidence: tuple[str, ...]
    questions: tuple[str, ...]
    distractors: tuple[str, ...]


EN_FACTS = (
    FactType(
        "dog",
        ("Biscuit", "Juniper", "Waffles", "Clementine", "Nutmeg", "Pickles", "Marlowe", "Tofu", "Ziggy", "Bramble"),
        (
            "we adopted a rescue puppy last spring and called her {v}, so I'm up at six every morning now.",
            "{v}, our beagle, ate an entire sock yesterday and seems completely fine, the little menace.",
        ),
        ("What did we call the rescue puppy we adopted?", "What's the name of our beagle, the one that ate a sock?"),
        ("What is my dog called?", "Remind me what my four-legged companion goes by?"),
        ("our neighbour's dog barked for two hours last night.", "do you think a puppy would get along with cats?"),
    ),
    FactType(
        "commute",
        ("52 minutes", "38 minutes", "47 minutes", "an hour and ten minutes", "29 minutes", "an hour and a quarter"),
        (
            "my commute is {v} each way on the train, so I get a lot of reading done.",
            "door to door my commute takes {v}, which is why I'm always a bit frazzled by nine.",
        ),
        ("How long is my commute each way on the train?", "How long does my commute take door to door?"),
        ("How much time do I spend getting to the office?", "How far away from work am I, in travel time?"),
        ("traffic on the ring road was awful this morning.", "I'm thinking of cycling to work one day a week."),
    ),
    FactType(
        "sister",
        ("Rosalind", "Ines", "Priyanka", "Margot", "Svetlana", "Odalys", "Henrietta", "Yasmin"),
        (
            "my younger sister {v} just started her medical residency and I barely hear from her.",
            "I'm meeting my sister {v} for lunch on Saturday, first time in months.",
        ),
        (
            "What's the name of my younger sister who started her residency?",
            "What's the name of the sister I'm meeting for lunch on Saturday?",
        ),
        ("What's my female sibling called?",),
        ("my sister keeps sending me memes at 2am.", "I should call my sister more often."),
    ),
    FactType(
        "allergy",
        ("shellfish", "kiwi fruit", "cashews", "penicillin", "buckwheat", "lupin flour"),
        (
            "I'm allergic to {v}, so I always have to read the labels twice.",
            "I found out the hard way that I'm allergic to {v} — ended up with hives all over.",
        ),
        ("Which thing am I allergic to, the one I read labels for?", "What am I allergic to that gave me hives?"),
        ("Is there anything I have to avoid eating for medical reasons?", "What gives me hives?"),
        ("pollen season is killing me this year.", "my colleague has a nut allergy so we skipped the cake."),
    ),
    FactType(
        "car",
        ("2014 Subaru Outback", "red Mazda MX-5", "Skoda Octavia estate", "Toyota Prius", "Volvo V60", "Renault Zoe"),
        (
            "I drive a {v}, which has been bulletproof so far.",
            "my {v} needs new wiper blades before the rainy season.",
        ),
        ("Which car do I drive that has been so bulletproof?", "Which car of mine needs new wiper blades?"),
        ("Which vehicle do I own?", "What's parked in my driveway?"),
        ("I saw a gorgeous old car at the lights today.", "thinking about whether an electric car would make sense."),
    ),
    FactType(
        "birthday",
        ("March 3rd", "the 19th of August", "November 28th", "June 11th", "the 2nd of February", "October 14th"),
        (
            "my birthday is on {v}, and I never know how to celebrate it.",
            "since my birthday falls on {v}, I'm thinking of taking the day off.",
        ),
        ("When is my birthday? I never know how to celebrate it.", "On what date does my birthday fall?"),
        ("On which day do I turn a year older?",),
        ("it was my colleague's birthday today, lots of cake.", "I'm terrible at remembering birthdays."),
    ),
    FactType(
        "hometown",
        ("Tobermory", "Ludlow", "Whitby", "Kalamazoo", "Dunedin", "Castlemaine"),
        (
            "I grew up in {v}, a tiny harbour town where everyone knows everyone.",
            "going back to {v} where I grew up always makes me nostalgic.",
        ),
        ("Which harbour town did I grow up in?", "Where did I grow up, the place that makes me nostalgic?"),
        ("Where am I originally from?", "What's my hometown?"),
        ("small towns are lovely but I couldn't live in one again.", "I miss the place I grew up sometimes."),
    ),
    FactType(
        "instrument",
        ("cello", "ukulele", "bassoon", "hammered dulcimer", "banjo", "oboe"),
        (
            "I've been learning the {v} for two years, and my neighbours are very patient.",
            "my {v} teacher says I'm finally ready for my first recital.",
        ),
        ("What instrument have I been learning for two years?", "Which instrument will I play at my first recital?"),
        ("What do I practise musically?",),
        ("I went to a concert of chamber music last night.", "I wish I had learned music as a kid."),
    ),
    FactType(
        "doctor",
        ("Dr. Abernathy", "Dr. Okonkwo", "Dr. Lindqvist", "Dr. Moreau", "Dr. Castellanos", "Dr. Petrakis"),
        (
            "my GP is {v}, who is lovely but always running forty minutes late.",
            "I finally registered with a new GP, {v}, at the practice near the station.",
        ),
        (
            "Who is my GP, the one always running late?",
            "Which GP did I register with at the practice near the station?",
        ),
        ("Which physician do I normally see?",),
        ("the waiting room at the surgery was packed today.", "I keep meaning to book a check-up."),
    ),
)
EN_PREFS = (
    FactType(
        "aisle",
        ("aisle seat",),
        (
            "I always book an aisle seat because I get up a lot on flights.",
            "when you help me book flights: aisle seat, every time, I hate climbing over people.",
        ),
        ("Which seat do I always book on flights?", "What seat should you book for my flights?"),
        ("Can you help me book a flight to Denver next month? Anything I care about?",),
        (
            "the flight was delayed two hours and the plane was freezing.",
            "window or middle, whatever, just get me there.",
        ),
        answer="aisle seat",
    ),
    FactType(
        "metric",
        ("metric units",),
        (
            "please always give me metric units, I never learned miles and pounds.",
            "from now on answer with metric units only, imperial confuses me.",
        ),
        (
            "Should you give me miles and pounds, or which units?",
            "Which units should you answer with, imperial or not?",
        ),
        ("Roughly how tall is Mount Kilimanjaro?", "How heavy is a grand piano, roughly?"),
        (
            "my grandad still measures everything in feet and inches.",
            "the recipe used cups and I had no idea how much that was.",
        ),
        answer="metric units",
    ),
    FactType(
        "pescatarian",
        ("pescatarian",),
        (
            "I'm pescatarian, so fish is fine but no meat.",
            "I've been pescatarian for five years now and don't miss meat at all.",
        ),
        ("Do I eat fish or meat?", "What diet have I followed for five years instead of meat?"),
        ("Can you suggest something for dinner tonight?", "Plan me a menu for a dinner party."),
        ("my brother is trying some new diet again.", "I had the best burger of my life at that place by the river."),
        answer="pescatarian",
    ),
    FactType(
        "bullets",
        ("bullet points",),
        (
            "keep your answers short and in bullet points please, I read them on my phone.",
            "I much prefer bullet points to long paragraphs when you explain things.",
        ),
        (
            "How should you keep your answers short so I can read them on my phone?",
            "When you explain things, long paragraphs or what?",
        ),
        ("Explain how compound interest works.", "Tell me how a heat pump works."),
        ("my manager writes emails that are way too long.", "I printed the article so I could read it properly."),
        answer="bullet points",
    ),
    FactType(
        "oatmilk",
        ("oat-milk flat white",),
        (
            "I only drink an oat-milk flat white, regular milk doesn't agree with me.",
            "my standing coffee order is an oat-milk flat white, extra hot.",
        ),
        ("What do I drink, given regular milk doesn't agree with me?", "What's my standing coffee order?"),
        ("Grab me a drink from the café downstairs, you know what I like?",),
        ("the new café by the office has a huge queue every morning.", "I'm trying to cut down on caffeine."),
        answer="oat-milk flat white",
    ),
    FactType(
        "nickname",
        ("Jules", "Mags", "Bertie", "Dodie", "Robbie", "Nell"),
        (
            "call me {v}, nobody uses my full name except the tax office.",
            "just so you know, everyone calls me {v} and I prefer it.",
        ),
        ("What should you call me instead of my full name?", "What does everyone call me?"),
        ("How should you address me?",),
        ("my full name always gets misspelled on coffee cups.", "a colleague called me by the wrong name again today."),
    ),
    FactType(
        "train",
        ("rather take the train",),
        (
            "for any trip under five hours I'd rather take the train than fly.",
            "I'd rather take the train whenever I can, flying stresses me out.",
        ),
        ("How do I prefer to travel on a trip under five hours?", "What do I choose whenever flying can be avoided?"),
        ("What's the best way for me to get from London to Paris?",),
        ("the airport security line was ridiculous last time.", "I fell asleep on the bus and missed my stop."),
        answer="rather take the train",
    ),
)
EN_UPDATES = (
    UpdateType(
        "city",
        ("Leeds", "Bristol", "Utrecht", "Rotterdam", "Gothenburg", "Tampere", "Bordeaux", "Nantes", "Ghent", "Aarhus"),
        ("I live in {v}, and the rent here is getting silly.", "here in {v} it has rained for nine days straight."),
        (
            "we finally moved to {v} last week, boxes everywhere.",
            "now that we live in {v}, my weekends look totally different.",
        ),
        (
            "Which city did we finally move to, the one with boxes everywhere?",
            "Where do we live now that my weekends look different?",
        ),
        ("Where's home for me these days?",),
        ("I sometimes think about moving abroad.", "my friend is looking for a flat and it's a nightmare."),
    ),
    UpdateType(
        "job",
        (
            "data analyst",
            "secondary school teacher",
            "UX designer",
            "paralegal",
            "physiotherapist",
            "product manager",
            "sous-chef",
            "civil engineer",
        ),
        ("I work as a {v}, and most days are back-to-back.", "being a {v} is fine, but the hours are long."),
        ("I started my new job as a {v} on Monday!", "my first month as a {v} has been a whirlwind."),
        ("What's the new job I started?", "What job has my first month been a whirlwind in?"),
        ("What do I do for a living these days?",),
        ("my cousin just got fired, poor thing.", "I had a weird dream about being back at school."),
    ),
    UpdateType(
        "manager",
        ("Gareth", "Anneliese", "Tomasz", "Beatriz", "Desmond", "Fenella", "Rashid", "Colette"),
        ("my manager {v} wants the report by Thursday.", "{v}, my boss, keeps scheduling meetings at 5pm."),
        (
            "we got a new manager this week, {v}, who seems much more relaxed.",
            "my new boss {v} cancelled the Friday stand-up, bless.",
        ),
        ("Who is the new manager we got, the relaxed one?", "Who's my new boss, the one who cancelled the stand-up?"),
        ("Who do I report to these days?",),
        ("management announced another reorganisation.", "my team lead is on holiday all month."),
    ),
    UpdateType(
        "rent",
        ("£1,140", "£1,385", "£960", "£1,720", "£1,255", "£1,490"),
        ("my rent is {v} a month, which is most of my salary.", "paying {v} in rent every month is brutal."),
        ("the landlord put the rent up to {v} a month.", "rent is now {v} after the renewal, ugh."),
        ("What did the landlord put my rent up to?", "What's my rent after the renewal?"),
        ("How much does my flat cost me monthly?",),
        ("flats in the city centre are absurdly priced.", "I'm trying to save on bills this winter."),
    ),
    UpdateType(
        "phone",
        ("Pixel 6a", "iPhone 12 mini", "Galaxy S21", "Fairphone 4", "Nokia X20", "OnePlus Nord"),
        ("my {v} still holds a charge all day, surprisingly.", "I take all my photos on my {v}."),
        (
            "I finally upgraded to a {v}, the camera is unreal.",
            "switched to a {v} this week and I'm still learning it.",
        ),
        (
            "What did I finally upgrade to, the one with the unreal camera?",
            "Which phone did I switch to and am still learning?",
        ),
        ("What's my current handset?",),
        ("phones are getting way too expensive.", "I dropped my phone in the bath once, never again."),
    ),
)
EN_EVENTS = (
    EventType(
        "concert",
        (
            "the Midnight Ferns",
            "Copper Lanterns",
            "Velvet Tide",
            "the Paper Kites of Ostend",
            "Static Orchard",
            "Lowland Choir",
        ),
        (
            "went to see {v} live last night, my ears are still ringing.",
            "yesterday's gig, {v}, was the best night out I've had in ages.",
        ),
        {
            "last_month": ("Which band did I see live last month?", "Whose concert did I go to last month?"),
            "in_month": ("What gig did I go to in {month}?",),
        },
        ("I keep missing concerts because tickets sell out instantly.", "live music is too loud for me these days."),
    ),
    EventType(
        "museum",
        (
            "the Halvorsen Maritime Museum",
            "the Museum of Broken Clocks",
            "the Ashworth Textile Gallery",
            "the Pelham Natural History Hall",
            "the Kestrel Aviation Museum",
        ),
        (
            "spent the afternoon at {v} today, totally worth the entry fee.",
            "we wandered around {v} today until they kicked us out.",
        ),
        {
            "last_weekend": (
                "Which museum did I visit last weekend?",
                "Where did I spend last weekend's afternoon out?",
            ),
            "in_month": ("What museum did I go to in {month}?",),
        },
        ("museums make my feet hurt after about an hour.", "I want to visit more museums this year."),
    ),
    EventType(
        "dentist",
        ("Dr. Vasquez-Hale", "Dr. Thorsby", "Dr. Nakagawa-Price", "Dr. Ellingham", "Dr. Oyelaran"),
        (
            "just back from the dentist — {v} says I need a crown, great.",
            "the dentist, {v}, gave me a lecture about flossing this morning.",
        ),
        {
            "when": ("When did I last see the dentist?", "When was my last dental appointment?"),
            "weeks_3": ("What did the dentist tell me about three weeks ago?",),
        },
        ("I should really book a dentist check-up.", "my tooth has been a bit sensitive to cold."),
    ),
    EventType(
        "trip",
        ("Ljubljana", "Tallinn", "Valletta", "Bergen", "San Sebastián", "Kraków"),
        ("just landed in {v}! The light here is incredible.", "first morning in {v} and I already love it."),
        {
            "in_month": ("Where did I travel to in {month}?", "Which city did I fly to in {month}?"),
            "last_month": ("Where did I go on my trip last month?",),
        },
        ("I need a proper holiday soon.", "I'm already dreaming of the next trip."),
    ),
    EventType(
        "class",
        ("pottery", "salsa", "life drawing", "bouldering", "sourdough baking", "improv theatre"),
        (
            "tonight is my first {v} class and I'm weirdly nervous.",
            "I signed up for a weekly {v} class and the first one was tonight.",
        ),
        {
            "weeks_3": ("What class did I start about three weeks ago?",),
            "when": ("When did I start my new evening class?",),
        },
        ("I keep thinking I should take an evening class.", "my friend wants me to join her Tuesday class."),
    ),
)
EN_AGGS = (
    AggType(
        "books",
        (
            "The Salt Orchard",
            "Harbour of Small Hours",
            "A Map of Quiet Rooms",
            "The Glassmaker's Debt",
            "Nine Winters North",
            "The Lantern Archive",
            "Pale Fire Season",
        ),
        (
            "I picked up a copy of {v} at the secondhand bookshop today.",
            "treated myself to {v} on the way home, the cover alone sold it.",
        ),
        ("How many books have I bought recently?", "Which books did I buy over the last few months?"),
        ("I really should read more books instead of scrolling.", "my bookshelf is collapsing under the weight."),
    ),
    AggType(
        "plants",
        ("fiddle-leaf fig", "string of pearls", "bird of paradise", "ZZ plant", "maidenhair fern", "snake plant"),
        (
            "I bought a {v} for the living room, fingers crossed I don't kill it.",
            "came home with a {v} from the market, no regrets.",
        ),
        ("How many houseplants have I bought?", "Which plants have I bought for the flat?"),
        ("all my plants look a bit sad this winter.", "I should repot a few things this spring."),
    ),
    AggType(
        "races",
        ("Riverside 10K", "Harbour Half Marathon", "Moorland Trail 15K", "Midsummer Night 5K", "Canal Path 10-miler"),
        ("I ran the {v} on Sunday and didn't die!", "finished the {v} this morning, my legs are jelly."),
        ("How many races have I run this year?", "Which races did I take part in?"),
        ("I'm not sure I'm fit enough for a race yet.", "everyone at work seems to be training for something."),
    ),
    AggType(
        "games",
        ("Wingspan", "Cascadia", "Azul", "Everdell", "Patchwork", "Root"),
        (
            "we bought {v} for game night and played it three times in a row.",
            "I ordered {v} online, it arrives Friday.",
        ),
        ("How many board games have I bought?", "Which board games do I own now?"),
        ("game night got cancelled again.", "my friends take board games way too seriously."),
    ),
)

ZH_FACTS = (
    FactType(
        "dog",
        ("豆包", "糯米团", "旺仔", "小满", "年糕儿", "可乐球", "布丁", "花卷"),
        (
            "我们去年春天领养了一只小狗，给它起名叫{v}，现在我每天六点就得起床。",
            "{v}，就是我们家那只小比格，昨天吞了一只袜子，居然一点事都没有。",
        ),
        ("我们去年领养的小狗起名叫什么？", "我们家那只吞了袜子的小比格叫什么？"),
        ("我养的汪星人叫啥来着？",),
        ("邻居家的狗昨晚叫了两个小时。", "你觉得小狗和猫能处得来吗？"),
    ),
    FactType(
        "commute",
        ("五十二分钟", "三十八分钟", "四十七分钟", "一个小时十分钟", "二十九分钟", "一小时一刻钟"),
        ("我每天通勤单程要{v}，坐地铁正好可以看书。", "从家到公司我通勤要{v}，所以每天九点前都有点疲惫。"),
        ("我坐地铁通勤单程要多久？", "从家到公司通勤要多长时间？"),
        ("我去公司路上得花多少时间？",),
        ("今天早上环路堵得厉害。", "我在想要不要每周骑一次车上班。"),
    ),
    FactType(
        "sister",
        ("林晓棠", "周若溪", "陈可欣", "赵雨桐", "孙梦洁", "吴思彤"),
        ("我妹妹{v}刚开始住院医师培训，几乎联系不上她。", "周六我要和妹妹{v}吃午饭，几个月没见了。"),
        ("在做住院医师培训的妹妹叫什么？", "周六要和我吃午饭的妹妹叫什么？"),
        ("家里比我小的那个女孩叫什么？",),
        ("我妹妹总是半夜给我发表情包。", "我应该多给妹妹打电话。"),
    ),
    FactType(
        "allergy",
        ("芒果", "猕猴桃", "腰果", "青霉素", "荞麦", "菠萝"),
        ("我对{v}过敏，买东西都得把配料表看两遍。", "我是吃了苦头才知道自己对{v}过敏的，浑身起疹子。"),
        ("我对什么过敏，买东西要看配料表？", "我对什么过敏会起疹子？"),
        ("有什么东西是我因为身体原因不能碰的？",),
        ("今年花粉季特别难受。", "同事对坚果过敏，所以我们没吃蛋糕。"),
    ),
    FactType(
        "car",
        ("白色的思域", "一辆旧款帕萨特", "红色的飞度", "比亚迪汉", "二手的卡罗拉", "蓝色的高尔夫"),
        ("我开的是{v}，到现在一直很皮实。", "我那辆{v}雨季之前得换雨刮了。"),
        ("我开的那辆很皮实的车是什么？", "雨季前要换雨刮的是我哪辆车？"),
        ("我平时的代步工具是哪款？",),
        ("今天等红灯时看到一辆很漂亮的老爷车。", "在考虑换电动车是不是划算。"),
    ),
    FactType(
        "birthday",
        ("三月十七号", "八月十九号", "十一月二十八号", "六月十一号", "二月初二", "十月十四号"),
        ("我的生日是{v}，每年都不知道怎么过。", "我生日在{v}，在想那天要不要请假。"),
        ("我每年都不知道怎么过的生日是哪天？", "我想请假过生日，是哪一天？"),
        ("每年哪一天该给我庆祝？",),
        ("今天同事过生日，吃了好多蛋糕。", "我总是记不住别人的生日。"),
    ),
    FactType(
        "hometown",
        ("安顺", "临海", "汉中", "丽水", "赤峰", "景德镇"),
        ("我老家在{v}，小地方，大家都认识。", "每次回{v}老家都特别怀旧。"),
        ("我老家是哪个小地方？", "我回哪个老家会特别怀旧？"),
        ("我是在哪儿长大的？",),
        ("小城市挺好的，但我回不去了。", "有时候挺想念小时候住的地方。"),
    ),
    FactType(
        "instrument",
        ("大提琴", "尤克里里", "古筝", "二胡", "单簧管", "手风琴"),
        ("我学{v}已经两年了，邻居们真的很有耐心。", "我的{v}老师说我终于可以参加第一次汇报演出了。"),
        ("我学了两年的是什么乐器？", "老师说我可以参加汇报演出的是什么乐器？"),
        ("我平时在练什么？",),
        ("昨晚去听了一场室内乐音乐会。", "真希望小时候学过音乐。"),
    ),
)
ZH_PREFS = (
    FactType(
        "aisle",
        ("靠过道",),
        (
            "我坐飞机一定要靠过道的座位，因为我老要起身。",
            "以后帮我订机票记得：靠过道，每次都要，我不想从别人身上跨过去。",
        ),
        ("我坐飞机一定要什么座位？", "以后帮我订机票，座位要怎么选？"),
        ("帮我订下个月去成都的航班，有什么要注意的吗？",),
        ("航班晚点两个小时，机舱里还特别冷。", "靠窗还是中间都行，能到就好。"),
        answer="靠过道",
    ),
    FactType(
        "metric",
        ("公制单位",),
        ("以后请一律用公制单位回答我，英里磅什么的我搞不清。", "回答我的时候只用公制单位，英制的我看不懂。"),
        ("回答我时该用什么单位，英里还是别的？", "回答我的时候用英制还是什么？"),
        ("乞力马扎罗山大概有多高？", "一架三角钢琴大概多重？"),
        ("我爷爷量东西还是习惯用尺和寸。", "那个菜谱用的是杯，我完全不知道是多少。"),
        answer="公制单位",
    ),
    FactType(
        "vegetarian",
        ("吃素",),
        ("我吃素已经五年了，鸡蛋牛奶可以，肉完全不碰。", "我现在吃素，朋友聚餐总得提前说一声。"),
        ("我能吃鸡蛋牛奶和肉吗？", "朋友聚餐时我得提前说什么？"),
        ("今晚给我推荐个菜谱吧。", "帮我安排一个请朋友来家里吃饭的菜单。"),
        ("我哥又在尝试什么新的饮食法。", "河边那家店的汉堡是我吃过最好吃的。"),
        answer="吃素",
    ),
    FactType(
        "bullets",
        ("分条列出",),
        ("回答尽量简短，分条列出来，我都是在手机上看。", "你解释东西的时候，我更喜欢分条列出，不要大段文字。"),
        ("我在手机上看回答，应该怎么写？", "你解释东西的时候用什么格式，大段文字吗？"),
        ("给我讲讲复利是怎么回事。", "说说空气源热泵是怎么工作的。"),
        ("我们领导写的邮件太长了。", "我把那篇文章打印出来，好好读了一遍。"),
        answer="分条列出",
    ),
    FactType(
        "oatmilk",
        ("燕麦奶拿铁",),
        ("我只喝燕麦奶拿铁，普通牛奶我喝了不舒服。", "我每次点咖啡都是燕麦奶拿铁，要热一点。"),
        ("普通牛奶我喝了不舒服，那我喝什么？", "我每次点咖啡都点什么？"),
        ("帮我从楼下店里带杯喝的，你知道我要什么吗？",),
        ("公司楼下新开的咖啡店每天早上都排长队。", "我在试着少喝点咖啡。"),
        answer="燕麦奶拿铁",
    ),
    FactType(
        "nickname",
        ("小周", "阿杰", "老白", "小鹿", "阿珂", "大伟"),
        ("叫我{v}就行，只有税务局才叫我全名。", "跟你说一声，大家都叫我{v}，我也更喜欢这个称呼。"),
        ("除了全名，你应该叫我什么？", "大家都叫我什么称呼？"),
        ("我希望被怎么招呼？",),
        ("我的名字在咖啡杯上总是被写错。", "今天同事又把我的名字叫错了。"),
    ),
)
ZH_UPDATES = (
    UpdateType(
        "city",
        ("苏州", "成都", "杭州", "武汉", "长沙", "南京", "昆明", "宁波", "合肥", "福州"),
        ("我住在{v}，这边房租越来越离谱了。", "{v}这边已经连着下了九天雨。"),
        ("我们上周终于搬到{v}了，到处都是箱子。", "搬到{v}以后，我的周末完全不一样了。"),
        ("我们终于搬到哪个城市了？", "我搬到哪里以后周末不一样了？"),
        ("我眼下的家安在何处？",),
        ("我有时候会想要不要出国生活。", "朋友在找房子，简直是噩梦。"),
    ),
    UpdateType(
        "job",
        ("数据分析师", "中学老师", "交互设计师", "律师助理", "康复治疗师", "产品经理", "厨师", "土木工程师"),
        ("我是做{v}的，每天会议一个接一个。", "当{v}还行，就是工作时间太长。"),
        ("我周一开始新工作了，现在是{v}！", "当{v}的第一个月，忙得团团转。"),
        ("我周一开始的新工作是什么？", "我第一个月忙得团团转的是什么工作？"),
        ("我目前靠什么谋生？",),
        ("我表弟刚被辞退了，挺可怜的。", "我做了个奇怪的梦，梦见回到学校了。"),
    ),
    UpdateType(
        "manager",
        ("老郑", "沈经理", "何总", "韩姐", "冯主任", "蒋老师"),
        ("我的领导{v}要我周四前交报告。", "{v}是我领导，老是把会安排在下午五点。"),
        ("我们这周换了新领导，{v}，看起来轻松多了。", "新领导{v}把周五的例会取消了，太好了。"),
        ("我们这周换的新领导是谁？", "取消周五例会的新领导是谁？"),
        ("目前管我的人是哪位？",),
        ("公司又宣布要调整架构了。", "我们组长这个月都在休假。"),
    ),
    UpdateType(
        "rent",
        ("三千八", "四千二", "两千六", "五千五", "三千三", "四千七"),
        ("我每月房租{v}，占了工资的一大半。", "每个月交{v}的房租，真的肉疼。"),
        ("房东涨房租了，现在每月{v}。", "续租以后房租变成{v}了，唉。"),
        ("房东涨房租以后，我现在每月交多少？", "续租以后我的房租变成多少了？"),
        ("我住的地方每月要花多少钱？",),
        ("市中心的房子贵得离谱。", "这个冬天想省点水电费。"),
    ),
    UpdateType(
        "phone",
        ("小米十二", "华为P五十", "荣耀Magic四", "苹果十二迷你", "OPPO Find X五", "vivo X七十"),
        ("我那台{v}一天下来电还够用，挺意外的。", "我拍照全靠我的{v}。"),
        ("我终于换了{v}，拍照效果太好了。", "这周换成了{v}，还在熟悉中。"),
        ("我终于换的新手机是什么，拍照很好的那个？", "我这周换成了什么手机，还在熟悉？"),
        ("我目前随身带的是哪部机子？",),
        ("现在手机越来越贵了。", "我有一次把手机掉进浴缸，再也不敢了。"),
    ),
)
ZH_EVENTS = (
    EventType(
        "concert",
        ("逃跑计划乐队", "新裤子乐队", "万能青年旅店", "痛仰乐队", "草东没有派对", "声音玩具"),
        ("昨晚去看了{v}的现场，耳朵到现在还在响。", "昨天{v}那场演出是我好久以来最开心的一晚。"),
        {
            "last_month": ("我上个月去看了谁的演出？", "上个月我听的是哪个乐队的现场？"),
            "in_month": ("我{month}去看了谁的演出？",),
        },
        ("演出票总是一开票就抢光了。", "现在现场音乐对我来说有点太吵了。"),
    ),
    EventType(
        "museum",
        ("航海博物馆", "钟表博物馆", "丝绸博物馆", "自然历史馆", "航空博物馆"),
        ("今天下午在{v}待了一下午，门票很值。", "今天我们在{v}逛到闭馆才出来。"),
        {
            "last_weekend": ("我上周末去了哪个博物馆？", "上周末我下午去哪儿逛了？"),
            "in_month": ("我{month}去了哪个博物馆？",),
        },
        ("逛博物馆一个小时我脚就疼了。", "今年想多去几个博物馆。"),
    ),
    EventType(
        "dentist",
        ("方大夫", "邱大夫", "葛大夫", "廖大夫", "温大夫"),
        ("刚从牙医那里回来，{v}说我要做个牙冠，真好。", "今天早上牙医{v}又给我上了一课，让我好好用牙线。"),
        {"when": ("我上次看牙医是什么时候？", "我最近一次看牙是哪天？"), "weeks_3": ("大约三周前牙医跟我说了什么？",)},
        ("我真该去做个牙齿检查了。", "最近牙齿有点怕冷。"),
    ),
    EventType(
        "trip",
        ("泉州", "喀什", "黄山", "洱海", "敦煌", "阳朔"),
        ("刚落地{v}！这里的光线太美了。", "在{v}的第一个早上，我已经爱上这里了。"),
        {
            "in_month": ("我{month}去哪儿旅行了？", "{month}我飞去了哪个地方？"),
            "last_month": ("我上个月去哪儿旅行了？",),
        },
        ("我真需要好好休个假了。", "已经在计划下一次旅行了。"),
    ),
    EventType(
        "class",
        ("陶艺", "萨尔萨舞", "素描", "攀岩", "烘焙", "即兴表演"),
        ("今晚是我第一节{v}课，莫名有点紧张。", "我报了一个每周一次的{v}课，今晚上了第一节。"),
        {"weeks_3": ("我大约三周前开始上什么课？",), "when": ("我的新晚间课程是哪天开始的？",)},
        ("一直想报个晚上的兴趣班。", "朋友想拉我一起去她周二的课。"),
    ),
)
ZH_AGGS = (
    AggType(
        "books",
        ("盐之果园", "小时辰的港口", "安静房间的地图", "玻璃匠的债", "向北九个冬天", "灯笼档案"),
        ("今天在二手书店买了一本《{v}》。", "回家路上给自己买了《{v}》，光封面就值了。"),
        ("我最近一共买了几本书？", "这几个月我买了哪些书？"),
        ("我真该多看书少刷手机。", "我的书架快被压塌了。"),
    ),
    AggType(
        "plants",
        ("琴叶榕", "珍珠吊兰", "天堂鸟", "金钱树", "铁线蕨", "虎尾兰"),
        ("给客厅买了一盆{v}，希望别养死。", "从花市抱回来一盆{v}，一点都不后悔。"),
        ("我一共买了几盆植物？", "我给家里买了哪些植物？"),
        ("这个冬天我的植物都蔫蔫的。", "开春该给几盆植物换盆了。"),
    ),
    AggType(
        "races",
        ("滨江十公里", "西湖半程马拉松", "山地越野十五公里", "夏至夜跑五公里", "运河十英里"),
        ("周日跑完了{v}，居然活下来了！", "今天早上完成了{v}，腿都软了。"),
        ("我今年参加了几场跑步比赛？", "我参加过哪些比赛？"),
        ("我还不确定自己能不能参加比赛。", "公司里好像人人都在为什么比赛训练。"),
    ),
    AggType(
        "games",
        ("展翅翱翔", "卡斯卡迪亚", "花砖物语", "永恒之森", "拼布艺术", "茂林源记"),
        ("我们为了桌游之夜买了《{v}》，连玩了三局。", "我在网上订了《{v}》，周五到。"),
        ("我一共买了几款桌游？", "我现在有哪些桌游？"),
        ("桌游之夜又取消了。", "我朋友玩桌游太认真了。"),
    ),
)

CONTENT = {
    "en": (EN_FACTS, EN_PREFS, EN_UPDATES, EN_EVENTS, EN_AGGS, EN_ASIDES),
    "zh": (ZH_FACTS, ZH_PREFS, ZH_UPDATES, ZH_EVENTS, ZH_AGGS, ZH_ASIDES),
}
EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
ZH_MONTHS = tuple(f"{m}月" for m in ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二"))

#: questions per haystack and category
PER_HAYSTACK = {"user_fact": 3, "preference": 3, "update": 2, "temporal": 2, "aggregation": 2}
#: share of questions asked with their paraphrased wording (where one exists)
PARAPHRASE = 0.2
HISTORY_DAYS = 240


# -- building one haystack -------------------------------------------------------------------------


def _at(d: date, rng: random.Random) -> datetime:
    return datetime(d.year, d.month, d.day, rng.randint(7, 21), rng.randint(0, 59), tzinfo=UTC)


def _event_date(spec: str, today: date, rng: random.Random) -> date:
    if spec == "last_weekend":
        saturday = today - timedelta(days=today.weekday() + 2)
        return saturday + timedelta(days=rng.choice((0, 1)))
    if spec == "last_month":
        first = today.replace(day=1)
        last_month_end = first - timedelta(days=1)
        return last_month_end.replace(day=rng.randint(3, min(26, last_month_end.day)))
    if spec == "weeks_3":
        return today - timedelta(days=21 + rng.randint(-2, 2))
    if spec == "in_month":
        m = today.month - rng.randint(3, 6)
        y = today.year + (m - 1) // 12
        m = (m - 1) % 12 + 1
        return date(y, m, rng.randint(3, 26))
    return today - timedelta(days=rng.randint(25, 150))  # "when"


def _far_from(target: date, today: date, rng: random.Random) -> date:
    """A past date at least 50 days from ``target`` (a same-kind event that is not the answer)."""
    for _ in range(100):
        d = today - timedelta(days=rng.randint(5, HISTORY_DAYS - 5))
        if abs((d - target).days) >= 50:
            return d
    return today - timedelta(days=HISTORY_DAYS - 5)


@dataclass
class _Plant:
    """A user-turn aside to plant: on a given date, or in a random session within a date range."""

    text: str
    on: date | None = None
    after: date | None = None
    before: date | None = None


def build(lang: str, seed: int, now: datetime, user: str | None = None) -> Haystack:
    rng = random.Random(f"{lang}-{seed}")
    facts, prefs, updates, events, aggs, asides = CONTENT[lang]
    topics = LANG[lang][0]
    months = EN_MONTHS if lang == "en" else ZH_MONTHS
    today = now.date()
    start = today - timedelta(days=HISTORY_DAYS)
    user = user or f"{lang}{seed:02d}"
    plants: list[_Plant] = []
    questions: list[Question] = []

    def q(category: str, text: str, needed: tuple[str, ...], **kw: object) -> None:
        questions.append(Question(f"{user}-q{len(questions):02d}", lang, category, text, needed, **kw))  # type: ignore[arg-type]

    def wording(t: FactType | UpdateType, index: int) -> tuple[str, str]:
        """The paraphrase (at the PARAPHRASE rate), else the wording that echoes evidence ``index``."""
        if t.paraphrase and rng.random() < PARAPHRASE:
            return rng.choice(t.paraphrase), "paraphrase"
        return t.lexical[index % len(t.lexical)], "lexical"

    def distract(templates: tuple[str, ...], k: int) -> None:
        for text in rng.sample(templates, min(k, len(templates))):
            plants.append(_Plant(text))

    # single-session facts and preferences
    for category, pool in (("user_fact", facts), ("preference", prefs)):
        for t in rng.sample(pool, PER_HAYSTACK[category]):
            v = rng.choice(t.values)
            k = rng.randrange(len(t.evidence))
            plants.append(_Plant(t.evidence[k].format(v=v)))
            text, overlap = wording(t, k)
            q(category, text, (t.answer or v,), overlap=overlap, kind=t.key)
            distract(t.distractors, rng.randint(1, 2))
    # knowledge updates: the old value once or twice in the first half, the new one later
    for t in rng.sample(updates, PER_HAYSTACK["update"]):
        old, new = rng.sample(t.values, 2)
        changed = today - timedelta(days=rng.randint(20, 110))
        for _ in range(rng.randint(1, 2)):
            plants.append(_Plant(rng.choice(t.old).format(v=old), after=start, before=changed - timedelta(days=15)))
        k = rng.randrange(len(t.new))
        plants.append(_Plant(t.new[k].format(v=new), on=changed))
        text, overlap = wording(t, k)
        q("update", text, (new,), stale=(old,), overlap=overlap, dates=(changed,), kind=t.key)
        distract(t.distractors, rng.randint(1, 2))
    # temporal: the event on its date, a same-kind event with another value far from it
    for t in rng.sample(events, PER_HAYSTACK["temporal"]):
        spec = rng.choice(sorted(t.questions))
        v, other = rng.sample(t.values, 2)
        when = _event_date(spec, today, rng)
        plants.append(_Plant(rng.choice(t.evidence).format(v=v), on=when))
        if spec != "when":  # "when did I last …": a second event would be the answer's rival
            plants.append(_Plant(rng.choice(t.evidence).format(v=other), on=_far_from(when, today, rng)))
        text = rng.choice(t.questions[spec]).format(month=months[when.month - 1])
        q("temporal", text, (v,), dates=(when,), kind=f"{t.key}/{spec}")
        distract(t.distractors, rng.randint(1, 2))
    # aggregation: 2–4 items in different sessions
    for t in rng.sample(aggs, PER_HAYSTACK["aggregation"]):
        items = rng.sample(t.values, rng.randint(2, min(4, len(t.values))))
        chosen: set[date] = set()
        while len(chosen) < len(items):
            chosen.add(_far_from(today, today, rng))
        days = sorted(chosen)
        for v, d in zip(items, days, strict=True):
            plants.append(_Plant(rng.choice(t.evidence).format(v=v), on=d))
        q("aggregation", rng.choice(t.questions), tuple(items), dates=tuple(days), kind=t.key)
        distract(t.distractors, rng.randint(1, 2))

    # sessions: one per dated plant, the rest at random dates; undated plants go anywhere fitting
    n_sessions = rng.randint(30, 60)
    dated = sorted({p.on for p in plants if p.on is not None})
    days = list(dated)
    while len(days) < n_sessions:
        days.append(start + timedelta(days=rng.randint(0, HISTORY_DAYS - 2)))
    days.sort()
    sessions: list[tuple[date, list[str]]] = [(d, []) for d in days]
    for p in plants:
        if p.on is not None:
            idx = next(i for i, (d, asides_) in enumerate(sessions) if d == p.on)
        else:
            lo, hi = p.after or start, p.before or today
            fits = [i for i, (d, _) in enumerate(sessions) if lo <= d <= hi]
            idx = rng.choice(fits or list(range(len(sessions))))
        sessions[idx][1].append(p.text)

    out: list[Session] = []
    smalltalk = LANG[lang][4]
    for i, (d, asides_here) in enumerate(sessions):
        topic = rng.choice(topics)
        exchanges = max(rng.randint(3, 8), len(asides_here) + 1)
        slots = rng.sample(range(exchanges), len(asides_here))
        t0 = _at(d, rng)
        turns: list[Turn] = []
        minute = 0
        for k in range(exchanges):
            text = user_opener(rng, lang, topic, first=k == 0)
            if k > 0 and rng.random() < 0.2:
                text = rng.choice(smalltalk) + (" " if lang == "en" else "") + text
            if k in slots:
                aside = asides_here[slots.index(k)]
                lead = rng.choice(asides)
                aside = lead + (aside[0].upper() + aside[1:] if lang == "en" and not lead else aside)
                sep = " " if lang == "en" else ""
                text = sep.join([text, aside] if rng.random() < 0.5 else [aside, text])
                if lang == "en":
                    text = text[0].upper() + text[1:]
            turns.append(Turn("user", text, t0 + timedelta(minutes=minute)))
            minute += rng.randint(1, 4)
            turns.append(Turn("assistant", assistant_reply(rng, lang, topic), t0 + timedelta(minutes=minute)))
            minute += rng.randint(1, 6)
        out.append(Session(f"{user}-s{i:03d}", topic.name, t0, turns))

    hay = Haystack(user, lang, seed, now, out, questions)
    check(hay)
    users = [t.text for s in out for t in s.turns if t.role == "user"]
    for qu in questions:  # measured, not declared: the wording chosen above only sets the odds
        evidence = [u for u in users if any(v.lower() in u.lower() for v in qu.needed)]
        qu.overlap = word_overlap(qu.text, evidence, lang)
    return hay


_EN_STOP = frozenset(
    """about after again also and any are been before but can could did does doing for from had has have
    how into its just last like more most much now off once only other our out over own same should some
    such than that the their them then there these they this those through too very was were what when
    where which while who whom why will with would you your yours tell told say said remember know
    please mine ago every each take took get got one two three few weeks week month months today
    yesterday tonight morning day days time times lately recently""".split()
)
_ZH_STOP = frozenset(
    "我的 什么 现在 目前 一下 上个 个月 哪个 哪些 哪儿 哪里 一个 是什 么时 时候 最近 一共 多少 我们 你们 因为 "
    "应该 可以 还是 已经 每个 每天 今天 昨天 今晚 上周 周末 大约 三周 周前 我说 说过 我在 我是 我现 我上 "
    "我一 我喜 喜欢 我对 我每 我开 我去 我老 我妹 在哪".split()
)


def content_words(text: str, lang: str) -> set[str]:
    """Words that carry content: English words of 3+ letters minus function words (a plural
    ``s`` dropped); Chinese character bigrams minus question and function bigrams."""
    if lang == "en":
        words = {w.rstrip("s") for w in re.findall(r"[a-z]{3,}", text.lower()) if w not in _EN_STOP}
        return {w for w in words if len(w) >= 3}
    out = set()
    for run in re.findall(r"[\u4e00-\u9fff]+", text):
        out |= {run[i : i + 2] for i in range(len(run) - 1)}
    return out - _ZH_STOP


def word_overlap(question: str, evidence: list[str], lang: str) -> str:
    """How many content words the question shares with (the best-matching piece of) its
    evidence: "none", "one" (typically the topic noun only), or "several"."""
    q = content_words(question, lang)
    shared = max(len(q & content_words(e, lang)) for e in evidence)
    return "none" if shared == 0 else "one" if shared == 1 else "several"


def check(hay: Haystack) -> None:
    """Each answer string is in exactly the messages that were planted for it, in none of the
    questions; a stale value is not in the newer evidence."""
    texts = [t.text.lower() for s in hay.sessions for t in s.turns]
    for qu in hay.questions:
        for v in (*qu.needed, *qu.stale):
            if v.lower() in qu.text.lower():
                raise AssertionError(f"{qu.qid}: the question contains its answer {v!r}")
            hits = sum(1 for t in texts if v.lower() in t)
            if hits == 0 or (qu.category != "preference" and hits > 2) or (qu.category == "preference" and hits > 1):
                raise AssertionError(f"{qu.qid}: {v!r} is in {hits} messages")


def dataset(lang: str, users: int, now: datetime, first_seed: int = 1) -> list[Haystack]:
    return [build(lang, seed, now) for seed in range(first_seed, first_seed + users)]


if __name__ == "__main__":  # a look at one haystack
    import sys

    lang = sys.argv[1] if len(sys.argv) > 1 else "en"
    hay = build(lang, int(sys.argv[2]) if len(sys.argv) > 2 else 1, datetime.now(UTC))
    words = sum(_words(t.text, lang) for s in hay.sessions for t in s.turns if t.role == "assistant")
    replies = sum(1 for s in hay.sessions for t in s.turns if t.role == "assistant")
    print(f"{hay.user}: {len(hay.sessions)} sessions, {hay.messages} messages, {words / replies:.0f} words per reply")
    for qu in hay.questions:
        print(f"  {qu.category:<12} {qu.overlap:<10} {qu.text!r} -> {qu.needed} stale={qu.stale} {qu.dates}")
    s = hay.sessions[len(hay.sessions) // 2]
    print(f"\n--- {s.name} {s.created:%Y-%m-%d} ({s.topic})")
    for t in s.turns[:4]:
        print(f"[{t.role}] {t.text}\n")
