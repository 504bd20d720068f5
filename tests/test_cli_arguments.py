"""Bad input on the command line (issue 8): random argument lists built from ``memchat --help``'s
commands, options and values (and plain random text) never give a traceback. Parsing alone, for
every command, ends in a namespace, ``--help``/``--version`` or a one-line usage error (exit 2);
and run for real (in this process, against a temporary database and the loopback fake model),
the commands that need no terminal, no server socket and no image service either work or print
one line on stderr with exit code 1 or 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import campaign
from fakeserver import FakeServer
from memchat.cli.common import UsageError
from memchat.cli.main import build_parser
from test_export_roundtrip import run

#: command paths, and whether the fuzz may run them (chat needs a terminal, serve a socket for
#: ever, image an image service, users add/remove and db copy are run too: they touch only the
#: temporary database)
COMMANDS: list[tuple[tuple[str, ...], bool]] = [
    (("chat",), False),
    (("ask",), True),
    (("sessions", "list"), True),
    (("sessions", "show"), True),
    (("sessions", "rename"), True),
    (("sessions", "fork"), True),
    (("sessions", "delete"), True),
    (("sessions", "export"), True),
    (("sessions", "import"), True),
    (("sessions", "truncate"), True),
    (("sessions", "context"), True),
    (("image",), False),
    (("serve",), False),
    (("users", "add"), True),
    (("users", "list"), True),
    (("users", "remove"), True),
    (("db", "migrate"), True),
    (("db", "status"), True),
    (("db", "copy"), True),
    (("models",), True),
    (("config",), True),
    (("sessions",), True),
    (("users",), True),
    (("db",), True),
    ((), True),
]
FLAGS = [
    "--help", "-h", "--version", "--json", "--yes", "-y", "--show-context", "-c", "--continue", "--no-date",
    "--no-migrate", "--memory", "--context-window", "--recall", "--tools", "--tool", "--max-steps", "--timezone",
    "--format", "-o", "--output", "--name", "--at", "--keep", "--text", "-s", "--session", "--system", "--model",
    "--lang", "--provider", "--base-url", "--size", "--seed", "--steps", "--guidance", "-n", "--port", "--host",
    "--workers", "--allow-host", "--image-provider", "--", "-", "--nope", "-x", "--memory=window", "--at=-1",
]  # fmt: skip
VALUES = [
    "", " ", "-", "--", "0", "-1", "1", "7", "99999999999999999999", "1.5", "nan", "abc", "中文", "🙂",
    "a\nb", "\x00", "auto", "full", "window", "summary", "recall", "all", "session", "none", "now", "jsonl", "md",
    "en", "zh", "xx", "UTC", "Asia/Shanghai", "Mars/Olympus", "compat", "openai", "bogus", "json:dumps",
    "nonexistent_module_x:f", ":", "memchat:nope", "trip", "out.txt", "missing.jsonl", "fuzz.db", "sub/x.db",
    "/nonexistent/dir/x.db", "not a url", "ftp://x",
]  # fmt: skip
#: values never passed when running for real: a provider or model path that would load the embedded model
RUN_UNSAFE = {"local"}

ARGV = campaign.size(150, 3000)


@st.composite
def argvs(draw: st.DrawFn) -> tuple[list[str], bool]:
    path, runnable = draw(st.sampled_from(COMMANDS))
    words = draw(st.lists(st.sampled_from(FLAGS) | st.sampled_from(VALUES) | st.text(max_size=8), max_size=8))
    argv = [*path, *words]
    if draw(st.booleans()):  # global flags before the command too
        argv = draw(st.lists(st.sampled_from(["--lang", "--model", "--db", *VALUES]), max_size=3)) + argv
    return argv, runnable


def test_parsing_alone_never_raises_anything_but_a_usage_error() -> None:
    @settings(max_examples=ARGV, deadline=None, database=None)
    @given(generated=argvs())
    def parse(generated: tuple[list[str], bool]) -> None:
        argv, _ = generated
        try:
            build_parser().parse_args(argv)
        except UsageError as exc:
            assert str(exc).endswith("--help)"), str(exc)
        except SystemExit as exc:  # --help, --version
            assert exc.code in (0, None)

    parse()


@pytest.mark.campaign
def test_random_command_lines_never_give_a_traceback(
    fake: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEMCHAT_BASE_URL", fake.url)  # the model: the loopback fake (compat provider)
    monkeypatch.setenv("MEMCHAT_API_KEY", "sk-fuzz")
    monkeypatch.setenv("MEMCHAT_DB", str(tmp_path / "fuzz.db"))
    run("ask", "-s", "trip", "hello")  # a session to find
    tally = {"commands": 0, "ok": 0, "failed": 0, "usage_errors": 0}

    @settings(max_examples=ARGV, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(generated=argvs())
    def try_it(generated: tuple[list[str], bool]) -> None:
        argv, runnable = generated
        if not runnable or RUN_UNSAFE & set(argv):
            return
        ran = run(*argv, stdin="a question 你好\n".encode())  # an exception escaping main fails the test
        tally["commands"] += 1
        assert "Traceback" not in ran.err
        if ran.code == 0:
            tally["ok"] += 1
            return
        assert ran.code in (1, 2), ran
        tally["failed" if ran.code == 1 else "usage_errors"] += 1
        lines = ran.err.splitlines()
        # "memchat: …" — ask may print tool lines (→ …) first; the error is one line, the last
        assert lines and lines[-1].startswith("memchat: "), ran
        assert all(not line.startswith("memchat: ") for line in lines[:-1]), ran

    try_it()
    campaign.record("cli_argv", {"examples": ARGV, **tally})


def test_a_usage_error_quoting_a_newline_is_still_one_line() -> None:
    """Regression: argparse quotes unrecognized arguments as they are, so ``memchat config 'a<LF>b'``
    printed its usage error over two lines (and a control character raw to the terminal)."""
    ran = run("config", "a\nb", "\x1b[31m")
    assert ran.code == 2
    assert ran.err == "memchat: unrecognized arguments: a\\nb \\x1b[31m (see: memchat --help)\n"
