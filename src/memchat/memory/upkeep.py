"""Memory upkeep off the reply's path: summaries are written in one background thread after the
turn that made them due, never between the user's Enter and the first token.

Jobs are keyed (one per session): a newer job for a key replaces one still waiting, so a burst
of turns costs one summary. ``pending`` says whether a key has work queued or running (``/context``
shows it); ``wait`` lets a process that is about to exit (``memchat ask``) finish the work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)

Job = Callable[[], None]


class Upkeep:
    def __init__(self) -> None:
        self._jobs: dict[Hashable, Job] = {}
        self._running: Hashable | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, key: Hashable, job: Job) -> None:
        """Run ``job`` in the background (replacing one still waiting under ``key``)."""
        with self._cond:
            if self._closed:
                return
            self._jobs[key] = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="memchat-upkeep", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def pending(self, key: Hashable) -> bool:
        with self._cond:
            return key in self._jobs or self._running == key

    @property
    def idle(self) -> bool:
        with self._cond:
            return not self._jobs and self._running is None

    def wait(self, timeout: float | None = None) -> bool:
        """Until every job is done (True) or ``timeout`` seconds passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs and self._running is None, timeout)

    def close(self) -> None:
        """Drop what waits; a job already running finishes on its own (its thread is a daemon)."""
        with self._cond:
            self._closed = True
            self._jobs.clear()
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                self._running = None
                self._cond.notify_all()
                while not self._jobs and not self._closed:
                    if not self._cond.wait(timeout=30):
                        if not self._jobs:  # idle a while: the thread ends (a new job starts one)
                            self._thread = None
                            return
                if self._closed:
                    self._thread = None
                    return
                key = next(iter(self._jobs))
                job = self._jobs.pop(key)
                self._running = key
            try:
                job()
            except Exception:  # upkeep never fails a turn; what it could not do waits for the next one
                log.warning("memory upkeep failed", exc_info=True)
