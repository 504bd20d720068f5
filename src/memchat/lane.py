"""A lane: a turn's blocking work (planning, the database), run off the event loop by a few
worker threads of its own, the turns that are starting first.

``asyncio.to_thread`` sends every job to the loop's default pool, first come first served: under
load a turn that has streamed its reply waits to be finished behind nobody, while a turn that
has not said its first word waits behind everyone — each of its steps (plan, store the question)
queueing again behind the other turns' work. A lane takes a turn's start as one job, and runs the
``urgent`` ones (a turn's start, a context planned again) before the others (checkpoints, a
reply's final write), whose readers already have their text. So that those are never starved,
one waiting job that is not urgent runs after every ``URGENT_IN_A_ROW`` urgent ones.

Jobs that may take long (a tool: an image can take minutes) do not belong in a lane.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # imported where it is used: the sync paths (``memchat ask``) never pay for it
    import asyncio

T = TypeVar("T")

#: worker threads of a lane: two, so that one job waiting (a database busy elsewhere) does not
#: stop the others, and few, so that the turns' jobs do not split the interpreter between many
WORKERS = 2
#: urgent jobs run in a row while others wait, at most
URGENT_IN_A_ROW = 8
#: seconds an idle worker waits for a job before it ends (a new job starts one)
IDLE_SECONDS = 30.0


class Lane:
    def __init__(self, name: str = "memchat-lane", workers: int = WORKERS) -> None:
        self.name = name
        self.workers = max(1, workers)
        self._cond = threading.Condition()
        self._jobs: list[tuple[int, int, Callable[[], None]]] = []  # (0 urgent | 1, order, job)
        self._order = itertools.count()
        self._threads = 0
        self._idle = 0
        self._in_a_row = 0

    async def run(self, fn: Callable[[], T], *, urgent: bool = False) -> T:
        """``fn()`` in a worker of this lane; its result or its exception. Cancelling the caller
        does not stop a job that has begun (like ``asyncio.to_thread``)."""
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        context = contextvars.copy_context()

        def job() -> None:
            try:
                result = context.run(fn)
            except BaseException as exc:  # handed to the caller, whatever it is
                _hand(loop, _fail, future, exc)
            else:
                _hand(loop, _succeed, future, result)

        self.submit(job, urgent=urgent)
        return await future

    def submit(self, job: Callable[[], None], *, urgent: bool = False) -> None:
        with self._cond:
            heapq.heappush(self._jobs, (0 if urgent else 1, next(self._order), job))
            if self._idle == 0 and self._threads < self.workers:
                self._threads += 1
                threading.Thread(target=self._work, name=self.name, daemon=True).start()
            else:
                self._cond.notify()

    def _next(self) -> Callable[[], None] | None:
        """The next job (None: none came for a while, the worker ends)."""
        with self._cond:
            while not self._jobs:
                self._idle += 1
                try:
                    woken = self._cond.wait(IDLE_SECONDS)
                finally:
                    self._idle -= 1
                if not woken and not self._jobs:
                    self._threads -= 1
                    return None
            if self._jobs[0][0] == 0 and self._in_a_row >= URGENT_IN_A_ROW:
                waiting = [j for j in self._jobs if j[0] == 1]
                if waiting:  # one that is not urgent, so that those are never starved
                    chosen = min(waiting)
                    self._jobs.remove(chosen)
                    heapq.heapify(self._jobs)
                    self._in_a_row = 0
                    return chosen[2]
            priority, _, job = heapq.heappop(self._jobs)
            self._in_a_row = self._in_a_row + 1 if priority == 0 else 0
            return job

    def _work(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            job()


def _hand(loop: asyncio.AbstractEventLoop, settle: Callable[..., None], future: Any, value: Any) -> None:
    """Settle the caller's future in its loop; a loop closed meanwhile has nobody waiting (and the
    worker must live on for the lane's other callers)."""
    try:
        loop.call_soon_threadsafe(settle, future, value)
    except RuntimeError:
        pass


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
