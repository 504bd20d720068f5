"""The user's date and time zone: for the date line of the context and the ``now`` tool."""

from __future__ import annotations

import os
import time
from datetime import datetime, tzinfo
from pathlib import Path

from memchat.errors import ConfigError

WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "zh": ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
}


def timezone(name: str | None) -> tzinfo | None:
    """The zone called ``name`` (IANA, e.g. ``Asia/Shanghai``); None for the system's."""
    if not name or name.lower() in ("local", "system"):
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai or UTC)") from exc


def now(zone: tzinfo | None = None) -> datetime:
    return datetime.now(zone) if zone is not None else datetime.now().astimezone()


def zone_name(moment: datetime) -> str:
    """An IANA name where one is known (``Asia/Shanghai``), else the abbreviation (``UTC``)."""
    key = getattr(moment.tzinfo, "key", None)
    if key:
        return str(key)
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz:
        return tz
    return _system_zone() or moment.tzname() or "local time"


_SYSTEM_ZONE: tuple[float, str | None] = (-1.0, None)
#: seconds the system's zone name is kept (resolving /etc/localtime is a few system calls a turn)
SYSTEM_ZONE_KEPT = 60.0


def _system_zone() -> str | None:
    """The IANA name /etc/localtime links to (None: not a link into a zoneinfo tree)."""
    global _SYSTEM_ZONE
    checked, name = _SYSTEM_ZONE
    clock = time.monotonic()
    if checked >= 0 and clock - checked < SYSTEM_ZONE_KEPT:
        return name
    name = None
    try:
        target = Path("/etc/localtime").resolve()
        if "zoneinfo" in target.parts:
            name = "/".join(target.parts[target.parts.index("zoneinfo") + 1 :])
    except OSError:
        pass
    _SYSTEM_ZONE = (clock, name)
    return name


def utc_offset(moment: datetime) -> str:
    offset = moment.strftime("%z") or "+0000"
    return f"UTC{offset[:3]}:{offset[3:]}"


def date_line(moment: datetime, lang: str = "en") -> str:
    """One line telling the model today's date (the date only: the line, and so the cached
    prompt prefix, changes once a day; the ``now`` tool gives the time)."""
    day = moment.strftime("%Y-%m-%d")
    zone, offset = zone_name(moment), utc_offset(moment)
    if lang == "zh":
        return f"今天是 {day}，{WEEKDAYS['zh'][moment.weekday()]}（时区 {zone}，{offset}）。"
    return f"Today is {WEEKDAYS['en'][moment.weekday()]}, {day} (time zone {zone}, {offset})."
