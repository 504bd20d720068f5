"""An incremental Server-Sent Events decoder (bytes in, events out); no I/O, no dependencies.

Follows the WHATWG rules the OpenAI-compatible servers rely on: lines end in ``\\n``,
``\\r\\n`` or ``\\r``; ``data:`` with or without the space; several ``data`` lines of one
event are joined with ``\\n``; lines starting with ``:`` are comments (``: ping``); a blank
line ends the event. Unlike the spec, an event still open when the stream ends is
delivered by ``flush`` (some servers omit the blank line after ``data: [DONE]``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    data: str
    event: str = "message"


class SSEDecoder:
    """Feed raw bytes as they arrive; get back the events they complete."""

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event = ""

    def feed(self, chunk: bytes) -> list[Event]:
        buf = self._buf + chunk if self._buf else chunk
        events: list[Event] = []
        start = 0
        n = len(buf)
        while start < n:
            nl = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, nl if nl >= 0 else n)
            if cr >= 0:
                if cr + 1 == n:  # a lone \r at the end: maybe the first half of \r\n
                    break
                end, nxt = cr, cr + 2 if buf[cr + 1] == 0x0A else cr + 1
            elif nl >= 0:
                end, nxt = nl, nl + 1
            else:
                break
            self._line(buf[start:end], events)
            start = nxt
        self._buf = buf[start:]
        return events

    @property
    def pending(self) -> bool:
        """Whether bytes of an unfinished line or event are held (``flush`` would give them)."""
        return bool(self._buf.strip() or self._data)

    def flush(self) -> list[Event]:
        """End of stream: the last line and any event left open."""
        events: list[Event] = []
        if self._buf:
            line, self._buf = self._buf.rstrip(b"\r"), b""
            self._line(line, events)
        if self._data:
            self._dispatch(events)
        return events

    def _line(self, raw: bytes, events: list[Event]) -> None:
        if not raw:
            if self._data:
                self._dispatch(events)
            else:
                self._event = ""
            return
        if raw[0] == 0x3A:  # ":" comment / keep-alive
            return
        line = raw.decode("utf-8", errors="replace")
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # "id" and "retry" mean nothing to a single chat completion

    def _dispatch(self, events: list[Event]) -> None:
        events.append(Event("\n".join(self._data), self._event or "message"))
        self._data = []
        self._event = ""
