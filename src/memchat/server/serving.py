"""uvicorn, stopping the turns first when the server stops.

uvicorn's graceful shutdown waits for every open response to end before the app hears of it
(the lifespan's shutdown comes last), and a turn's event stream ends only with the turn: a
reader would keep the stream until the whole reply was written, or, past uvicorn's timeout, see
it cut with no word of why. ``GracefulServer`` first stops the turns running here (each kept as
``stopped``, its readers' last event a ``done`` with ``"reason": "shutdown"``), so their streams
end at once and the page can say the server stopped mid-reply; then uvicorn's own shutdown."""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from memchat.server.app import turn_runs_of

#: seconds uvicorn waits for other open responses (a /v1 stream, a slow download) once the turns
#: have stopped, before it cuts them
GRACE = 5


class GracefulServer(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        runs = turn_runs_of(self.config.loaded_app)
        if runs is not None:
            await runs.close(reason="shutdown")
        await super().shutdown(sockets)


def serve(app: Any, **options: Any) -> None:
    """``uvicorn.run(app, **options)`` for one process, on a ``GracefulServer``."""
    options.setdefault("timeout_graceful_shutdown", GRACE)
    server = GracefulServer(uvicorn.Config(app, **options))
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:  # as uvicorn.run: the port is taken, the app failed to start…
        sys.exit(STARTUP_FAILURE)
