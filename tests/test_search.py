"""Search the words, not just names (issue 17, finding 6: "haiku" and "长城", both in messages,
found nothing): sessions found by the words of their messages through the store's full-text
index, on every backend (SQLite in memory and on disk, PostgreSQL), with snippets, paged, and
through the HTTP API."""

from __future__ import annotations

from typing import Any

from memchat.domain import Message, Role
from memchat.search import snippet, terms_of
from memchat.service import Sessions

CHATS = [
    ("chat-20250101-090000", "Write me a haiku about the sea", "Waves fold into foam, the gull turns — a haiku."),
    ("trip", "长城有多长？", "长城全长两万多公里，最有名的一段在北京。"),
    ("cooking", "How long do I boil an egg?", "About nine minutes for a hard-boiled egg."),
    ("poems", "Any poem about spring?", "Spring rain on the roof; a haiku would say it in seventeen syllables."),
]


def seed(store: Any) -> dict[str, list[Message]]:
    made = {}
    for name, question, answer in CHATS:
        store.create_session(name)
        made[name] = store.append_messages(name, [Message(Role.USER, question), Message(Role.ASSISTANT, answer)])
    return made


def test_the_words_of_messages_are_found_on_every_store(store: Any) -> None:
    made = seed(store)
    sessions = Sessions(store)

    found = sessions.search("haiku")
    assert found.total == 2
    [sea, poems] = found.sessions  # the session whose messages hold it more often first
    assert sea.session.name == "chat-20250101-090000" and poems.session.name == "poems"
    assert {s.message_id for s in sea.snippets} == {m.id for m in made["chat-20250101-090000"]}
    first = sea.snippets[0]
    assert all(first.text[a:b].lower() == "haiku" for a, b in first.marks)

    found = sessions.search("长城")
    assert [m.session.name for m in found.sessions] == ["trip"]
    texts = {s.role: s.text for s in found.sessions[0].snippets}
    assert texts[Role.USER] == "长城有多长？" and texts[Role.ASSISTANT].startswith("长城全长")

    assert sessions.search("HAIKU").total == 2  # any case
    assert sessions.search("nothing like this").total == 0
    assert sessions.search("   ").sessions == []


def test_every_word_before_some_and_pages(store: Any) -> None:
    seed(store)
    sessions = Sessions(store)
    both = sessions.search("spring haiku")
    assert [m.session.name for m in both.sessions][0] == "poems"  # holds both words
    assert both.total == 2
    page = sessions.search("haiku", limit=1, offset=1)
    assert page.total == 2 and [m.session.name for m in page.sessions] == ["poems"]


def test_a_name_or_title_alone_is_found_too(store: Any) -> None:
    seed(store)
    store.create_session("chat-20250102-080000", settings={"title": "Egg timer"})
    found = Sessions(store).search("egg")
    names = [m.session.name for m in found.sessions]
    assert set(names) == {"cooking", "chat-20250102-080000"}
    titled = next(m for m in found.sessions if m.session.name == "chat-20250102-080000")
    assert titled.snippets == [] and titled.session.label == "Egg timer"


def test_another_users_sessions_are_never_found(store: Any) -> None:
    seed(store)
    bob_id, _ = store.add_user("bob")
    bob = store.for_owner(bob_id)
    assert Sessions(bob).search("haiku").total == 0
    bob.create_session("mine")
    bob.append_messages("mine", [Message(Role.USER, "my haiku"), Message(Role.ASSISTANT, "nice")])
    assert [m.session.name for m in Sessions(bob).search("haiku").sessions] == ["mine"]
    assert Sessions(store).search("haiku").total == 2


def test_snippets_show_the_words_in_context() -> None:
    long = "word " * 40 + "the Great Wall 长城 is long " + "more " * 40
    text, marks = snippet(long, terms_of("长城 great"))
    assert text.startswith("…") and text.endswith("…") and len(text) < 200
    assert [text[a:b] for a, b in marks] == ["Great", "长城"]
    assert terms_of('"old pond" frog Frog') == ["old pond", "frog"]


def test_the_api_searches_messages_with_snippets_and_pages(serve: Any) -> None:
    _, client, agent = serve()
    made = seed(agent.store)
    data = client.get("/api/sessions", params={"q": "haiku"}).json()
    assert data["total"] == 2
    first = data["sessions"][0]
    assert first["name"] == "chat-20250101-090000"
    ids = {m["message_id"] for m in first["matches"]}
    assert ids == {m.id for m in made["chat-20250101-090000"]}
    match = first["matches"][0]
    assert [match["snippet"][a:b].lower() for a, b in match["marks"]] == ["haiku"]
    assert client.get("/api/sessions", params={"q": "长城"}).json()["sessions"][0]["name"] == "trip"
    page = client.get("/api/sessions", params={"q": "haiku", "limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [s["name"] for s in page["sessions"]] == ["poems"]
    assert client.get("/api/sessions", params={"q": "zzz"}).json() == {"sessions": [], "total": 0}
    listed = client.get("/api/sessions").json()  # without q: every session, newest first
    assert listed["total"] == 4 and "matches" not in listed["sessions"][0]
