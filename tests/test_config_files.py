"""Bad input, the config file (issue 8): ``config.toml`` that is not TOML, not UTF-8, a directory,
holds unknown keys or values of the wrong type — every command that reads it says what is wrong
in one line on stderr (exit 1, no traceback) and changes nothing: not the file, not the database,
and no stray files from a value misread as a path."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import campaign
from memchat.config import _KEYS, config_path
from memchat.factory import open_store
from test_export_roundtrip import Ran, run


def dump(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


def write(data: bytes, mode: int = 0o600) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def one_line(ran: Ran) -> str:
    assert "Traceback" not in ran.err, ran.err
    lines = ran.err.splitlines()
    assert ran.code == 1 and len(lines) == 1 and lines[0].startswith("memchat: "), ran
    return lines[0]


#: commands that read the settings without a model: what each bad file is tried with (the last
#: without ``--db``, so that a ``db`` setting is used)
COMMANDS = [
    ("config",),
    ("sessions", "export", "kept", "--db", "{db}"),
    ("db", "status", "--db", "{db}"),
    ("sessions", "list"),
]
QUICK = [("sessions", "list")]


def check_refused_or_fine(
    data: bytes, db: Path, cwd: Path, commands: list[tuple[str, ...]] = COMMANDS
) -> tuple[int, int]:
    """Every command either works or says what is wrong in one line; nothing changes either way."""
    path = write(data)
    before = dump(db)
    files = sorted(p.name for p in cwd.iterdir())
    refused = fine = 0
    for command in commands:
        ran = run(*(arg.format(db=db) for arg in command))
        if ran.code == 0:
            fine += 1
        else:
            line = one_line(ran)
            assert str(path) in line or "config" in line.lower(), line
            refused += 1
    assert path.read_bytes() == data
    assert dump(db) == before
    assert sorted(p.name for p in cwd.iterdir()) == files  # no database made from a misread value
    return refused, fine


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A database with one session, and an empty working directory."""
    db = tmp_path / "data" / "memchat.db"
    db.parent.mkdir()
    with open_store(db) as store:
        store.create_session("kept", persona="p")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return db, cwd


WRONG_VALUES = [
    "[]",
    "[1, 2]",
    '["a", 1]',
    "{}",
    "{ a = 1 }",
    "true",
    "false",
    "1.5",
    "-3",
    "0",
    "99999999999999999999" if False else "9223372036854775807",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    '""',
    '" "',
    '"nonsense"',
    '"-1"',
    '"中文 🙂"',
    '"\\u0000"',
    '"a\\nb"',
]


@pytest.mark.parametrize("key", _KEYS)
def test_every_setting_with_a_wrong_value_is_refused_in_one_line_or_harmless(
    key: str, place: tuple[Path, Path]
) -> None:
    db, cwd = place
    for value in WRONG_VALUES:
        if key == "db" and value.startswith('"'):
            continue  # a string is a path, and a database is made there (that is what it is for)
        check_refused_or_fine(f"{key} = {value}\n".encode(), db, cwd, QUICK)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("context_window = [1, 2]", "context_window must be a string or a whole number, not a list"),
        ("max_steps = { a = 1 }", "max_steps must be a string or a whole number, not a table"),
        ("db = 5", "db must be a string, not a number"),
        ("system = true", "system must be a string, not true/false"),
        ("model = 1979-05-27", "model must be a string, not a date or time"),
        ('tool = ["a:b", 3]', "tool must be a list of strings"),
        ("context_window = true", "context_window must be a string or a whole number, not true/false"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_not_misread(text: str, expected: str, place: tuple[Path, Path]) -> None:
    """Regression: ``context_window = [1, 2]`` was a traceback (TypeError from int()), and
    ``db = 5`` made a database file named 5 in the working directory."""
    db, cwd = place
    path = write(text.encode() + b"\n")
    assert one_line(run("sessions", "list")) == f"memchat: configuration: {path}: {expected}"
    assert list(cwd.iterdir()) == []


BROKEN_FILES = [
    b"provider = [unclosed\n",
    b"provider = 'openai'\nprovider = 'openai'\n",  # a key twice
    b"= 1\n",
    b"[provider]\nname = 'x'\n",
    b"memory = 'auto'\nnot_a_setting = 1\n",
    b"\xff\xfe p r o v i d e r",  # UTF-16, not UTF-8
    b"model = '\xc3'\n",
    b"\x00\x01\x02",
    b"a" * 100_000,
]


@pytest.mark.parametrize("data", BROKEN_FILES, ids=range(len(BROKEN_FILES)))
def test_a_broken_config_file_is_refused_in_one_line_changing_nothing(data: bytes, place: tuple[Path, Path]) -> None:
    db, cwd = place
    refused, _ = check_refused_or_fine(data, db, cwd)
    assert refused == len(COMMANDS)


def test_a_config_file_that_is_a_directory_or_unreadable(place: tuple[Path, Path]) -> None:
    db, _ = place
    path = config_path()
    path.mkdir(parents=True)
    line = one_line(run("config", "--db", str(db)))
    assert str(path) in line
    path.rmdir()
    if os.geteuid() != 0:  # root reads anything
        write(b"model = 'm'\n", mode=0o000)
        assert str(path) in one_line(run("config", "--db", str(db)))


_toml_value = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.booleans().map(lambda b: str(b).lower()),
    st.floats(allow_nan=False).map(repr).filter(lambda s: "e" not in s and "inf" not in s),
    st.text(max_size=20)
    .map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
    .filter(lambda s: all(c >= " " or c == "\t" for c in s)),
    st.sampled_from(WRONG_VALUES),
)


CONFIGS = campaign.size(40, 800)


@pytest.mark.campaign
def test_random_config_files(place: tuple[Path, Path]) -> None:
    db, cwd = place
    tally: dict[str, Any] = {"files": 0, "refused": 0, "fine": 0}

    @settings(max_examples=CONFIGS, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        data=st.one_of(
            st.dictionaries(
                st.sampled_from([*(k for k in _KEYS if k != "db"), "unknown", "Model"]), _toml_value, max_size=4
            ).map(lambda d: "".join(f"{k} = {v}\n" for k, v in d.items()).encode()),
            st.binary(max_size=200),
            st.text(max_size=200).map(lambda s: s.encode()),
        )
    )
    def try_config(data: bytes) -> None:
        refused, fine = check_refused_or_fine(data, db, cwd)
        tally["files"] += 1
        tally["refused"] += refused
        tally["fine"] += fine

    try_config()
    campaign.record("bad_config", {"examples": CONFIGS, "commands_per_file": len(COMMANDS), **tally})
