"""Hardening campaigns (issue 8): tests marked ``campaign`` run at a reduced size in the normal
suite (and CI) and at full size with ``MEMCHAT_CAMPAIGN=full``:

    MEMCHAT_CAMPAIGN=full .venv/bin/python -m pytest -m campaign

A campaign sizes itself with ``size(reduced, full)`` and reports its figures with
``record(name, figures)``: printed always, and written to ``bench/campaigns/<name>.json`` on a
full run (the README's "Reliability" section quotes those files).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FULL = os.environ.get("MEMCHAT_CAMPAIGN", "").lower() == "full"
RESULTS = Path(__file__).resolve().parent.parent / "bench" / "campaigns"


def size(reduced: int, full: int) -> int:
    """How many rounds this run makes of a campaign."""
    return full if FULL else reduced


def record(name: str, figures: dict[str, Any]) -> None:
    """Print a campaign's figures; on a full run also keep them in ``bench/campaigns/``."""
    print(f"\ncampaign {name}: {json.dumps(figures, ensure_ascii=False, sort_keys=True)}")
    if FULL:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamped = {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), **figures}
        (RESULTS / f"{name}.json").write_text(json.dumps(stamped, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
