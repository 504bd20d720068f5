"""Work done when the turns leave room for it: ``QuietWorker`` runs a job, a batch at a time, in
a daemon thread once ``quiet`` seconds passed without a turn (``notice``).

A person reads the reply before the next message: the work fits there and no turn waits on it.
Turns in quick succession (a script's) never leave that room, so after ``burst`` notices without
it a batch runs anyway: what waits stays bounded. Used for the search indexes' backlog
(``SQLiteStore.settle_search``); a search does whatever is still waiting itself, first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: seconds without a turn before the job runs
QUIET = 1.0
#: turns without a quiet moment after which a batch runs anyway
BURST = 200


class QuietWorker:
    def __init__(
        self, step: Callable[[], bool], *, name: str, quiet: float | None = None, burst: int | None = None
    ) -> None:
        """``step`` does one batch and says whether more is left."""
        self._step = step
        self._name = name
        self._quiet = QUIET if quiet is None else quiet
        self._burst = BURST if burst is None else burst
        self._cond = threading.Condition()
        self._last = 0.0
        self._notices = 0  # since the job last ran to its end
        self._thread: threading.Thread | None = None
        self._closed = False

    def notice(self) -> None:
        """A turn ended: there may be work, and another turn may follow at once."""
        with self._cond:
            if self._closed:
                return
            self._last = time.monotonic()
            self._notices += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Stop (a batch running ends first, within ``timeout``); what is left waits for later."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if not self._notices:
                        self._cond.wait()
                        continue
                    left = self._last + self._quiet - time.monotonic()
                    if left <= 0 or self._notices >= self._burst:
                        break
                    self._cond.wait(left)
                if self._closed:
                    self._thread = None
                    return
                seen = self._notices
            try:
                more = self._step()
            except Exception:  # never a turn's failure: a search does what is left itself
                log.warning("%s failed", self._name, exc_info=True)
                more = False
            with self._cond:
                if not more:
                    self._notices -= seen  # the notices that came meanwhile call for another run
                elif self._notices >= self._burst:
                    self._notices = max(1, self._burst - 1)  # one batch per turn until a quiet moment
