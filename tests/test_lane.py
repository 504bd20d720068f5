"""The turn's path in a server under load: the turns' lane (``memchat/lane.py``) and the async
turn's use of it — a turn that is starting goes before work other turns can wait for, a job's
error reaches its caller, the reply's stream never waits for a checkpoint being written (its
final write does) — and a turn's events on their way to the SSE readers (``server/runs.py``)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from memchat.agent import Agent
from memchat.domain import Status
from memchat.lane import URGENT_IN_A_ROW, Lane
from memchat.stores.sqlite import SQLiteStore
from memchat.testing import ScriptedProvider

entered = threading.Event()


def hold(gate: threading.Event) -> None:
    entered.set()
    gate.wait(5)
    entered.clear()


def test_a_turn_that_starts_goes_before_waiting_work_that_is_not_urgent() -> None:
    async def main() -> list[str]:
        lane = Lane(workers=1)
        gate, ran = threading.Event(), []
        busy = asyncio.ensure_future(lane.run(lambda: hold(gate)))
        await asyncio.to_thread(entered.wait, 5)  # the worker is busy
        jobs = [
            asyncio.ensure_future(lane.run(lambda: ran.append("finish a"))),
            asyncio.ensure_future(lane.run(lambda: ran.append("checkpoint b"))),
            asyncio.ensure_future(lane.run(lambda: ran.append("start c"), urgent=True)),
            asyncio.ensure_future(lane.run(lambda: ran.append("start d"), urgent=True)),
        ]
        await asyncio.sleep(0)  # all four are queued behind the busy worker
        gate.set()
        await asyncio.gather(busy, *jobs)
        return ran

    assert asyncio.run(main()) == ["start c", "start d", "finish a", "checkpoint b"]


def test_work_that_is_not_urgent_is_never_starved() -> None:
    async def main() -> list[str]:
        lane = Lane(workers=1)
        gate, ran = threading.Event(), []
        busy = asyncio.ensure_future(lane.run(lambda: hold(gate)))
        await asyncio.to_thread(entered.wait, 5)  # the worker is busy
        jobs = [asyncio.ensure_future(lane.run(lambda: ran.append("finish")))]
        for k in range(URGENT_IN_A_ROW + 2):
            jobs.append(asyncio.ensure_future(lane.run(lambda k=k: ran.append(f"start {k}"), urgent=True)))
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(busy, *jobs)
        return ran

    ran = asyncio.run(main())
    assert ran.index("finish") == URGENT_IN_A_ROW  # after that many starts, not after all of them
    assert len(ran) == URGENT_IN_A_ROW + 3


def test_a_job_s_result_and_error_reach_its_caller() -> None:
    async def main() -> None:
        lane = Lane()
        assert await lane.run(lambda: 6 * 7) == 42
        with pytest.raises(ZeroDivisionError):
            await lane.run(lambda: 1 / 0)

    asyncio.run(main())


class SlowCheckpoints(SQLiteStore):
    """A database whose checkpoints wait for ``gate`` (a disk that stalls a moment)."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.gate = threading.Event()
        self.checkpoints = 0

    def checkpoint_turn(self, turn, content):  # type: ignore[no-untyped-def]
        self.checkpoints += 1
        if not self.gate.wait(5):
            raise AssertionError("the stream waited for a checkpoint")
        super().checkpoint_turn(turn, content)


def test_the_stream_does_not_wait_for_a_checkpoint_and_the_final_write_does() -> None:
    store = SlowCheckpoints()
    agent = Agent(store, ScriptedProvider(["one two three four five six"]), checkpoint_every=0.0, date_line=False)

    async def main() -> tuple[list[str], int]:
        turn = agent.astream("s", "hello")
        texts = []
        async for chunk in turn:
            if chunk.text:
                texts.append(chunk.text)
            if len(texts) == 6:  # every word arrived while the first checkpoint was still stalled
                stalled = store.checkpoints
                store.gate.set()
        assert turn.reply is not None and turn.reply.status is Status.COMPLETE
        return texts, stalled

    texts, stalled = asyncio.run(main())
    assert "".join(texts) == "one two three four five six"
    assert stalled <= 1  # one checkpoint at a time; the stream went on meanwhile
    stored = store.messages(store.find_session("s").id)  # type: ignore[union-attr]
    assert [m.content for m in stored] == ["hello", "one two three four five six"]
    assert stored[-1].status is Status.COMPLETE


def test_a_turn_s_readers_get_what_came_meanwhile_together_and_a_ping_when_nothing_comes() -> None:
    """The events of a turn go to its SSE readers in order, those that came while a reader was
    busy in one write, and an idle stream gets a keep-alive (an empty batch: ``: ping``)."""
    from memchat.server.runs import Run

    async def main() -> list[list[int]]:
        run = Run(1, turn=None)  # type: ignore[arg-type]
        seen: list[list[int]] = []
        await run.add("delta", {"text": "a"})
        await run.add("delta", {"text": "b"})  # both before the reader looks: one batch
        reader = run.batches(keepalive=0.01)
        seen.append([e.id for e in await reader.__anext__()])
        seen.append([e.id for e in await reader.__anext__()])  # nothing came: a ping
        late = asyncio.ensure_future(reader.__anext__())
        await asyncio.sleep(0)
        await run.add("done", {"status": "complete"})
        seen.append([e.id for e in await late])
        with pytest.raises(StopAsyncIteration):
            await reader.__anext__()  # the run ended: so does the stream
        replay = [e.id async for e in run.follow(after=1)]  # a reload replays without duplicates
        seen.append(replay)
        return seen

    assert asyncio.run(main()) == [[1, 2], [], [3], [2, 3]]


def test_a_job_that_outlives_its_event_loop_leaves_the_lane_working() -> None:
    """An agent outlives the event loops that used it (a script's ``asyncio.run`` per call): a
    job still running when its loop closed must not take a worker down with it."""
    lane = Lane(workers=1)
    gate, done = threading.Event(), threading.Event()

    def slow() -> None:
        entered.set()
        gate.wait(5)
        done.set()

    async def first() -> None:
        running = asyncio.ensure_future(lane.run(slow))
        await asyncio.to_thread(entered.wait, 5)  # the loop ends with the job still running
        assert not running.done()

    asyncio.run(first())
    entered.clear()
    gate.set()
    assert done.wait(5)

    async def second() -> int:
        return await asyncio.wait_for(lane.run(lambda: 42), 5)

    assert asyncio.run(second()) == 42
