"""The schema's change-counting rules, declared once and made into triggers for both engines.

Readers cache what they read and ask a counter whether it is still true: a session's
``version`` moves with every change to its messages, summaries or pins, its ``rewrites`` only
when settled history changed (anything but an append at the end), ``settled_count`` counts its
settled messages, and ``users.memory_version`` moves with every change to the user's memories.
A summary stands for the messages it covers as they were, so it goes when one of them is
deleted or its text changes. The database keeps all of this itself, by triggers, so every
writer (another process, ``memchat db``, a hand-made edit) keeps it too.

``RULES`` says it once: each ``CounterRule`` names the table and event it watches, the counters
that move and the row that holds them; each ``StaleRule`` names the rows that stop being true.
Their conditions and amounts are SQL both engines read alike (``CASE`` rather than SQLite's
booleans as numbers, no subquery in a condition: PostgreSQL refuses one in a trigger's
``WHEN``). ``sqlite_triggers`` makes SQLite's ``CREATE TRIGGER`` statements from them,
``pg_triggers`` PostgreSQL's functions and triggers (one PL/pgSQL function per rule, named
``memchat_<rule>``); migrations m012 and pg005 put them in place of the hand-written ones.
Changing a rule is a new migration on each side that drops the triggers of the rules then in
force and creates them again from ``RULES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

#: 1 (or -1) when the row is settled (not a reply still streaming), else 0
SETTLED_OLD = "CASE WHEN OLD.status != 'streaming' THEN 1 ELSE 0 END"
SETTLED_NEW = "CASE WHEN NEW.status != 'streaming' THEN 1 ELSE 0 END"
UNSETTLED_OLD = "CASE WHEN OLD.status != 'streaming' THEN -1 ELSE 0 END"
#: a status change rewrites history when the row was settled, or settles after newer settled rows
_STATUS_REWRITES = (
    "CASE WHEN OLD.status != 'streaming' OR EXISTS (SELECT 1 FROM messages m WHERE m.session_id = NEW.session_id "
    "AND m.seq > NEW.seq AND m.status != 'streaming') THEN 1 ELSE 0 END"
)
_STATUS_SETTLES = (
    "CASE WHEN (OLD.status = 'streaming') = (NEW.status = 'streaming') THEN 0 "
    "WHEN NEW.status = 'streaming' THEN -1 ELSE 1 END"
)


@dataclass(frozen=True, slots=True)
class CounterRule:
    """After ``event`` on a row of ``table`` (when ``when`` holds), each counter of ``moves``
    grows by its amount (an SQL expression over ``OLD``/``NEW``) in the row of ``target`` whose
    id is ``row``."""

    name: str
    table: str
    event: str
    target: str
    row: str
    moves: tuple[tuple[str, str], ...]
    when: str | None = None

    @property
    def statement(self) -> str:
        sets = ", ".join(f"{counter} = {counter} + {amount}" for counter, amount in self.moves)
        return f"UPDATE {self.target} SET {sets} WHERE id = {self.row}"


@dataclass(frozen=True, slots=True)
class StaleRule:
    """After ``event`` on a row of ``table`` (when ``when`` holds), the rows of ``target`` that
    ``where`` names no longer hold and are deleted."""

    name: str
    table: str
    event: str
    target: str
    where: str
    when: str | None = None

    @property
    def statement(self) -> str:
        return f"DELETE FROM {self.target} WHERE {self.where}"


Rule: TypeAlias = CounterRule | StaleRule


def _session(name: str, table: str, event: str, row: str, *moves: tuple[str, str], when: str | None = None) -> Rule:
    return CounterRule(name, table, event, "sessions", f"{row}.session_id", moves, when)


RULES: tuple[Rule, ...] = (
    # a session's messages
    _session("messages_insert_counts", "messages", "INSERT", "NEW", ("version", "1"), ("settled_count", SETTLED_NEW)),
    _session(
        "messages_delete_counts",
        "messages",
        "DELETE",
        "OLD",
        ("version", "1"),
        ("rewrites", SETTLED_OLD),
        ("settled_count", UNSETTLED_OLD),
    ),
    _session(
        "messages_content_counts",
        "messages",
        "UPDATE OF content",
        "NEW",
        ("version", "1"),
        ("rewrites", SETTLED_OLD),
        when="OLD.content != NEW.content",
    ),
    _session(
        "messages_status_counts",
        "messages",
        "UPDATE OF status",
        "NEW",
        ("version", "1"),
        ("rewrites", _STATUS_REWRITES),
        ("settled_count", _STATUS_SETTLES),
        when="OLD.status != NEW.status",
    ),
    StaleRule(
        "messages_delete_stale_summaries",
        "messages",
        "DELETE",
        "summaries",
        "session_id = OLD.session_id AND OLD.seq BETWEEN first_seq AND last_seq",
        when="OLD.status != 'streaming'",
    ),
    StaleRule(
        "messages_content_stale_summaries",
        "messages",
        "UPDATE OF content",
        "summaries",
        "session_id = NEW.session_id AND OLD.seq BETWEEN first_seq AND last_seq",
        when="OLD.status != 'streaming' AND OLD.content != NEW.content",
    ),
    # a session's summaries and pins
    _session("summaries_insert_counts", "summaries", "INSERT", "NEW", ("version", "1")),
    _session("summaries_delete_counts", "summaries", "DELETE", "OLD", ("version", "1")),
    _session("pins_insert_counts", "pins", "INSERT", "NEW", ("version", "1")),
    _session("pins_delete_counts", "pins", "DELETE", "OLD", ("version", "1")),
    # a user's memories
    CounterRule("memories_insert_counts", "memories", "INSERT", "users", "NEW.owner_id", (("memory_version", "1"),)),
    CounterRule("memories_delete_counts", "memories", "DELETE", "users", "OLD.owner_id", (("memory_version", "1"),)),
    CounterRule("memories_update_counts", "memories", "UPDATE", "users", "OLD.owner_id", (("memory_version", "1"),)),
    CounterRule(
        "memories_owner_counts",
        "memories",
        "UPDATE OF owner_id",
        "users",
        "NEW.owner_id",
        (("memory_version", "1"),),
        when="NEW.owner_id != OLD.owner_id",
    ),
)


def sqlite_trigger(rule: Rule) -> str:
    """The rule as one SQLite ``CREATE TRIGGER`` statement."""
    when = f" WHEN {rule.when}" if rule.when else ""
    return f"CREATE TRIGGER {rule.name} AFTER {rule.event} ON {rule.table}{when} BEGIN\n    {rule.statement};\nEND;"


def pg_trigger(rule: Rule) -> str:
    """The rule as a PostgreSQL trigger function (``memchat_<rule>``) and its trigger."""
    function = f"memchat_{rule.name}"
    when = f" WHEN ({rule.when})" if rule.when else ""
    return (
        f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n    {rule.statement};\n    RETURN NULL;\nEND $$;\n"
        f"CREATE TRIGGER {rule.name} AFTER {rule.event} ON {rule.table}\n"
        f"    FOR EACH ROW{when} EXECUTE FUNCTION {function}();"
    )


def sqlite_triggers(rules: tuple[Rule, ...] = RULES) -> str:
    """Every rule's SQLite trigger, as one script."""
    return "\n".join(sqlite_trigger(r) for r in rules) + "\n"


def pg_triggers(rules: tuple[Rule, ...] = RULES) -> str:
    """Every rule's PostgreSQL function and trigger, as one script."""
    return "\n".join(pg_trigger(r) for r in rules) + "\n"
