"""A command run in a real pseudo-terminal (stdlib ``pty``), typed into and read as a person
would: the program sees a terminal on stdin, stdout and stderr (its controlling terminal, so
Ctrl-C is a SIGINT from the terminal driver, and the driver echoes what is typed).

    with Terminal(["memchat", "chat"], env=env, columns=80) as term:
        term.expect("You: ")
        term.type("hello\\r")
        term.expect("echo: hello")
        term.ctrl("c")

``output`` is everything the program wrote (and the driver echoed), as received; ``text``
the same without escape sequences (colours, cursor moves), to search.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from typing import Any

#: CSI and OSC sequences, and the few single-character escapes rich and prompt_toolkit write
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>()78][0-9A-Za-z]?|\r")


_LEADER = "import os, sys; os.close(os.open(os.ttyname(0), os.O_RDWR)); os.execvp(sys.argv[1], sys.argv[1:])"


def plain(text: str) -> str:
    """``text`` without escape sequences and carriage returns."""
    return ANSI.sub("", text)


class Terminal:
    def __init__(
        self, argv: Sequence[str], *, env: dict[str, str], columns: int = 100, rows: int = 30, cwd: str | None = None
    ) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        # a new session whose leader opens the pty (so it becomes the controlling terminal: Ctrl-C
        # is the driver's SIGINT), then runs the command; no fork() of this threaded process
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LEADER, *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        os.close(slave)
        self.fd = master
        self.raw = b""
        self.status: int | None = None

    # -- reading ------------------------------------------------------------------------------

    @property
    def output(self) -> str:
        return self.raw.decode("utf-8", "replace")

    @property
    def text(self) -> str:
        return plain(self.output)

    def _read(self, timeout: float) -> bool:
        """Read what arrives within ``timeout`` seconds; whether anything did."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # the program ended (EIO on Linux)
            data = b""
        if not data:
            time.sleep(timeout)  # nothing more will come
            return False
        self.raw += data
        return True

    def expect(self, pattern: str, timeout: float = 30, *, after: int = 0) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) appears in ``text`` past character ``after``."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.compile(pattern).search(self.text, after)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} did not appear; the terminal shows:\n{self.text[-3000:]}")
            self._read(min(left, 0.2))

    def wait(self, timeout: float = 30) -> int:
        """Read until the program ends; its exit code."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            self._read(0.1)
            if time.monotonic() > deadline:
                raise AssertionError(f"the program did not end; the terminal shows:\n{self.text[-3000:]}")
        while self._read(0.05):
            pass
        self.status = self.process.returncode
        return self.status

    # -- typing -------------------------------------------------------------------------------

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def line(self, text: str) -> None:
        """A line typed and Enter."""
        self.type(text + "\r")

    def ctrl(self, key: str) -> None:
        self.type(chr(ord(key.lower()) - ord("a") + 1))

    def mark(self) -> int:
        """Where ``text`` ends now (``expect(..., after=term.mark())`` looks only at what follows)."""
        while self._read(0.05):
            pass
        return len(self.text)

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        os.close(self.fd)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
