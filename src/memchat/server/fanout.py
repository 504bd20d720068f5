"""Turn events shared by every server worker through Redis (``MEMCHAT_REDIS_URL``).

The worker that runs a turn claims the session (``SET NX``), appends each event to the session's
Redis stream, and releases the claim when the turn ends; any worker replays and follows a turn
with ``XRANGE``/``XREAD``, so ``GET …/stream?after=N`` works wherever the load balancer sends it.
Stop requests are published, and also left in a key the running worker reads with each event it
appends (a published message reaches only the subscribers of that moment); the worker running the
turn stops it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from memchat.errors import MemchatError
from memchat.server.runs import Event


class FanoutUnavailable(MemchatError):
    """Redis does not answer: turns cannot be shared between workers right now."""

    kind = "fanout_unavailable"


async def _answer(call: Awaitable[Any]) -> Any:
    """``call``'s result; a Redis that cannot be reached is one clear error (503 by the app)."""
    import redis.exceptions

    try:
        return await call
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise FanoutUnavailable(f"Redis is not reachable ({str(exc).splitlines()[0]}); try again shortly") from exc


#: a claim outlives a crashed worker by at most this long
CLAIM_SECONDS = 3600
#: how long one blocking read waits before the follower looks again
BLOCK_MS = 15_000
STOP_CHANNEL = "memchat:stop"
log = logging.getLogger("memchat.server")
#: how long a stop request waits in its key for the running worker's next event
STOP_SECONDS = 30


class RedisFanout:
    def __init__(self, url: str, worker: str, namespace: str = "") -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self.worker = worker
        #: the database's identity: servers of different databases share a Redis without mixing
        self._ns = namespace
        self._listener: asyncio.Task[None] | None = None

    def _stream(self, session_id: int) -> str:
        return f"memchat:{self._ns}:events:{session_id}"

    def _claim_key(self, session_id: int) -> str:
        return f"memchat:{self._ns}:busy:{session_id}"

    def _stop_key(self, session_id: int) -> str:
        return f"memchat:{self._ns}:stop:{session_id}"

    async def claim(self, session_id: int) -> bool:
        """This worker runs the session's next turn (False: one runs elsewhere)."""
        got = await _answer(self._redis.set(self._claim_key(session_id), self.worker, nx=True, ex=CLAIM_SECONDS))
        if got:  # event ids start again at 1; a stop asked of an earlier turn is not this one's
            await _answer(self._redis.delete(self._stream(session_id), self._stop_key(session_id)))
        return bool(got)

    async def release(self, session_id: int) -> None:
        with contextlib.suppress(MemchatError):  # Redis down: the claim expires by itself
            await _answer(self._redis.delete(self._claim_key(session_id)))

    async def running(self, session_id: int) -> bool:
        return bool(await _answer(self._redis.exists(self._claim_key(session_id))))

    async def publish(self, session_id: int, event: Event) -> bool:
        """Append ``event`` to the session's stream; whether a stop of the turn was asked (read in
        the same round trip)."""
        fields: dict[Any, Any] = {
            "id": event.id,
            "kind": event.kind,
            "data": json.dumps(event.data, ensure_ascii=False),
        }
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(self._stream(session_id), fields, maxlen=10_000, approximate=True)
        pipe.exists(self._stop_key(session_id))
        _, stop = await _answer(pipe.execute())
        return bool(stop)

    async def has_events(self, session_id: int) -> bool:
        return bool(await _answer(self._redis.exists(self._stream(session_id))))

    async def follow(self, session_id: int, after: int = 0) -> AsyncIterator[Event]:
        """The turn's events after ``after``, then the live ones until it ends."""
        key = self._stream(session_id)
        cursor = "0-0"
        while True:
            batch: Any = await self._redis.xread({key: cursor}, block=BLOCK_MS, count=500)
            for _, entries in batch or []:
                for entry_id, fields in entries:
                    cursor = entry_id
                    event = Event(int(fields["id"]), fields["kind"], json.loads(fields["data"]))
                    if event.id > after:
                        yield event
                    if event.kind in ("done", "error"):
                        return
            if not batch and not await self.running(session_id):
                return  # nothing more will come (the worker died, or the turn ended long ago)

    async def request_stop(self, session_id: int) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._stop_key(session_id), "1", ex=STOP_SECONDS)
        pipe.publish(f"{STOP_CHANNEL}:{self._ns}", str(session_id))
        await _answer(pipe.execute())

    async def listen(self, on_stop: Callable[[int], Awaitable[Any]]) -> None:
        """Run ``on_stop(session_id)`` for every stop request (from any worker), in the
        background; while Redis is down it keeps trying, so a worker starts and serves anyway."""
        import redis.exceptions

        async def loop() -> None:
            while True:
                try:
                    pubsub = self._redis.pubsub()
                    await pubsub.subscribe(f"{STOP_CHANNEL}:{self._ns}")
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            with contextlib.suppress(ValueError):
                                await on_stop(int(message["data"]))
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                    await asyncio.sleep(1.0)
                except Exception:  # anything else ends this subscription, never the listening
                    log.exception("memchat: the stop listener failed; subscribing again")
                    await asyncio.sleep(1.0)

        self._listener = asyncio.get_running_loop().create_task(loop())

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
        await self._redis.aclose()
