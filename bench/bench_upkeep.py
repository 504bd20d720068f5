"""A long chat on the embedded model with the defaults: does any turn wait on memory upkeep?

Run:  .venv/bin/python bench/bench_upkeep.py [--turns 60] [--think 2.0] [--max-tokens 96]

One session on the embedded SmolLM2-135M (llama-cpp-python), configured as a new user's
``memchat chat`` is (``make_agent`` with no settings: memory ``auto``, the model's 8,192-token
window, the date line, recall; a temporary ``MEMCHAT_HOME``). Each turn sends the next of a
fixed list of varied user messages and times the first streamed text (TTFT) and the whole
reply; between turns the "user" reads for ``--think`` seconds (memory upkeep — summaries,
the window moved ahead, the cache warmed — runs then, in the background). Replies are capped
at ``--max-tokens`` so that a 200-turn run takes minutes, not an hour; the history still
outgrows the window (the first fold comes after ~45 turns).

Prints every turn (TTFT, prompt tokens evaluated vs reused, summaries so far) and the verdict
against the targets (issue 16): no turn's TTFT above 2× the median of turns 2–10, and the
median of every later stretch of 10 turns ≤ 1.5× it. ``--json FILE`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TOPICS = [
    "my sister Alexandra, who moved to Reykjavik last spring",
    "the garden: tomatoes, basil and a lemon tree in a pot",
    "my job as a nurse on night shifts at the city hospital",
    "learning the cello at forty-two",
    "a trip to Kyoto planned for April with two friends",
    "our dog Biscuit, a beagle who steals socks",
    "the book club reading Middlemarch this month",
    "fixing the old bicycle my grandfather left me",
    "cooking for twelve people at my daughter's birthday",
    "running a half marathon in October",
]
ASKS = [
    "Tell me something useful about {t}.",
    "I keep thinking about {t}. Any advice?",
    "What should I remember about {t}?",
    "Give me one idea related to {t}.",
    "Do you recall what I said about {t}?",
]


def message(k: int) -> str:
    topic = TOPICS[(k * 7) % len(TOPICS)]
    return ASKS[k % len(ASKS)].format(t=topic) + f" (This is message {k + 1}.)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--think", type=float, default=2.0, help="seconds between a reply and the next message")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--context-window", type=int, default=None, help="a smaller window: the window moves and summaries fold sooner"
    )
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="memchat-bench-upkeep-")
    os.environ["MEMCHAT_HOME"] = home
    for name in ("MEMCHAT_PROVIDER", "MEMCHAT_BASE_URL", "MEMCHAT_MEMORY", "MEMCHAT_CONTEXT_WINDOW"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT / "src"))
    from memchat.config import resolve
    from memchat.factory import make_agent
    from memchat.providers.base import ChatOptions

    agent = make_agent(resolve({"context_window": args.context_window} if args.context_window else {}))
    agent.options = ChatOptions(max_tokens=args.max_tokens)
    provider = agent.provider
    session = agent.session("bench").id
    rows = []
    started = time.perf_counter()
    for k in range(args.turns):
        text = message(k)
        t0 = time.perf_counter()
        ttft = None
        turn = agent.stream(session, text)
        for chunk in turn:
            if chunk.text and ttft is None:
                ttft = time.perf_counter() - t0
        total = time.perf_counter() - t0
        stats = getattr(provider, "last_stats", None)
        summaries = len(agent.store.summaries(session))
        row = {
            "turn": k + 1,
            "ttft": round(ttft if ttft is not None else total, 3),
            "reply_s": round(total, 3),
            "prompt_tokens": stats.prompt_tokens if stats else None,
            "evaluated": stats.evaluated_tokens if stats else None,
            "summaries": summaries,
            "upkeep_pending": agent.upkeep_pending(session),
            "moved": getattr(stats, "moved_tokens", 0),
            "apart": getattr(stats, "apart_tokens", 0),
            "summary": next((s.note for s in turn.plan.sections if s.kind == "summary"), ""),
        }
        rows.append(row)
        print(
            f"turn {row['turn']:>3}  TTFT {row['ttft']:6.2f} s  reply {row['reply_s']:6.2f} s  "
            f"prompt {row['prompt_tokens']}  evaluated {row['evaluated']}  summaries {summaries}"
            f"{'  (upkeep running)' if row['upkeep_pending'] else ''}"
            f"  [summary {row['summary'] or '-'}, moved {row['moved']}, apart {row['apart']}]",
            flush=True,
        )
        time.sleep(args.think)
    agent.close()

    ttfts = [r["ttft"] for r in rows]
    base = statistics.median(ttfts[1:10])
    worst = max(range(len(ttfts)), key=lambda i: ttfts[i])
    stretches = []
    for start in range(10, len(ttfts), 10):
        part = ttfts[start : start + 10]
        stretches.append((start + 1, start + len(part), statistics.median(part)))
    print(
        f"\nmedian TTFT of turns 2–10: {base:.3f} s; worst turn {worst + 1}: {ttfts[worst]:.2f} s "
        f"({ttfts[worst] / base:.2f}× the median; target ≤ 2×)"
    )
    for first, last, med in stretches:
        print(f"  turns {first:>3}–{last:<3} median {med:.3f} s ({med / base:.2f}×; target ≤ 1.5×)")
    ok = ttfts[worst] <= 2 * base and all(med <= 1.5 * base for _, _, med in stretches)
    print(
        f"summaries written: {rows[-1]['summaries']}; whole run {time.perf_counter() - started:.0f} s; "
        f"targets {'met' if ok else 'MISSED'}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json)},
                    "turns": rows,
                    "median_2_10": base,
                    "stretches": stretches,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
