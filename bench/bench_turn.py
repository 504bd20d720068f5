"""What one more turn costs, as history grows — and the embedded model's time to first token.

Run:  .venv/bin/python bench/bench_turn.py [--turns 20] [--procs 10] [--skip-local]

Against one loopback OpenAI-compatible server (tests/fakeserver.py, in its own process,
streaming a fixed 4-chunk reply), at H = 0, 100 and 1,000 prior turns, it times:

- ``library``: ``Agent.ask`` with the SQLite store (file) and ``OpenAICompatible``, memory
  ``full`` (the whole history each turn, as the floor sends it; steady state: successive turns
  of one session in one process; the history grows by one turn per sample, as in a real chat);
- ``floor``: bare httpx + json: post the whole history, read the SSE stream, append the reply
  (what any client must do; no storage);
- ``same``: the floor sending what the library sends besides the history — its system message
  (persona and date line) and its four tool schemas (~2.4 KB the server also parses each turn);
- ``openai``: the official openai SDK doing the same as the floor;
- ``memchat ask``: the whole CLI process (start, load the session, call, store, exit).

Then the embedded model (SmolLM2-135M via llama-cpp-python): time to first token at turns 1
and 20 of one conversation, which shows whether the KV cache of the shared prefix is reused.

Cells are taken in ``--rounds`` alternating rounds (floor, same, library) and the median of the
rounds' medians is printed: this machine's speed drifts between seconds, and a ratio of two cells
taken minutes apart measured the drift. Prints median milliseconds. Targets: library ≤ 1.2× floor
at every H (issue 16); ``memchat ask`` ≤ 200 ms
at H=100; embedded TTFT at turn 20 ≤ 1.5× turn 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HISTORIES = (0, 100, 1000)


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fakeserver.py"), "--port", "0", "--reply", "The answer is forty-two."],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


def history(h: int) -> list[dict[str, str]]:
    msgs: list[dict[str, str]] = []
    for i in range(h):
        msgs.append({"role": "user", "content": f"Question number {i}: what do you remember about turn {i - 1}?"})
        msgs.append({"role": "assistant", "content": f"Answer number {i}: I remember everything we said so far."})
    return msgs


def seed_db(path: Path, name: str, h: int) -> None:
    from memchat.domain import Message, Role
    from memchat.stores.sqlite import SQLiteStore

    store = SQLiteStore(path)
    store.create_session(name, persona="You are a concise assistant.")
    store.append_messages(name, [Message(Role(m["role"]), m["content"]) for m in history(h)])
    store.close()


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_library(url: str, db: Path, h: int, n: int) -> tuple[float, dict[str, Any]]:
    """The median turn, and the body of the last request (what the ``same`` floor sends too)."""
    from memchat import Agent, OpenAICompatible
    from memchat.stores.sqlite import SQLiteStore

    class Recording(OpenAICompatible):
        last = b""

        def _payload(self, *args: Any, **kwargs: Any) -> bytes:
            self.last = super()._payload(*args, **kwargs)
            return self.last

    seed_db(db, "lib", h)
    provider = Recording(base_url=url, model="bench")
    # the whole history every turn, as the floor sends it (memory "full", a window that holds it)
    agent = Agent(store=SQLiteStore(db), provider=provider, memory="full", context_window=10_000_000)
    agent.ask("lib", "warm up")
    samples = []
    for i in range(n):
        t = time.perf_counter()
        agent.ask("lib", f"question {i}")
        samples.append(time.perf_counter() - t)
    agent.close()
    return median_ms(samples), json.loads(provider.last)


def _read_sse_text(lines: Any) -> str:
    parts = []
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        event = json.loads(data)
        for choice in event.get("choices") or []:
            parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts)


def bench_floor(url: str, h: int, n: int, like: dict[str, Any] | None = None) -> float:
    """``like``: a library request whose system message and tools the floor sends too."""
    import httpx

    system = like["messages"][0]["content"] if like else "You are a concise assistant."
    extra = {"tools": like["tools"]} if like and like.get("tools") else {}
    msgs = [{"role": "system", "content": system}, *history(h)]
    client = httpx.Client(base_url=url)
    samples = []
    for i in range(n + 1):
        t = time.perf_counter()
        msgs.append({"role": "user", "content": f"question {i}"})
        body = {"model": "bench", "messages": msgs, "stream": True, "stream_options": {"include_usage": True}, **extra}
        with client.stream("POST", "/chat/completions", json=body) as resp:
            resp.raise_for_status()
            text = _read_sse_text(resp.iter_lines())
        msgs.append({"role": "assistant", "content": text})
        if i:
            samples.append(time.perf_counter() - t)
    client.close()
    return median_ms(samples)


def bench_openai(url: str, h: int, n: int) -> float:
    import openai

    msgs: list[Any] = [{"role": "system", "content": "You are a concise assistant."}, *history(h)]
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    samples = []
    for i in range(n + 1):
        t = time.perf_counter()
        msgs.append({"role": "user", "content": f"question {i}"})
        stream = client.chat.completions.create(
            model="bench", messages=msgs, stream=True, stream_options={"include_usage": True}
        )
        text = "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
        msgs.append({"role": "assistant", "content": text})
        if i:
            samples.append(time.perf_counter() - t)
    client.close()
    return median_ms(samples)


def bench_cli(url: str, home: Path, h: int, n: int) -> float:
    exe = Path(sys.executable).with_name("memchat")
    env = {
        **os.environ,
        "MEMCHAT_HOME": str(home),
        "MEMCHAT_PROVIDER": "compat",
        "MEMCHAT_BASE_URL": url,
        "MEMCHAT_MODEL": "bench",
    }
    seed_db(home / "memchat.db", f"cli{h}", h)
    samples = []
    for i in range(n + 1):
        t = time.perf_counter()
        subprocess.run([str(exe), "ask", "-s", f"cli{h}", f"question {i}"], env=env, check=True, capture_output=True)
        if i:
            samples.append(time.perf_counter() - t)
    return median_ms(samples)


def bench_local(turns: int = 20) -> tuple[float, float, list[float]]:
    from memchat import Agent, LocalLlama, open_store
    from memchat.providers.base import ChatOptions

    provider = LocalLlama()
    provider.count_tokens("load the model before timing")  # TTFT excludes the one-off model load
    agent = Agent(store=open_store(":memory:"), provider=provider, options=ChatOptions(max_tokens=24))
    agent.store.create_session("local", persona="You are a helpful assistant. Answer briefly.")
    ttft = []
    for i in range(turns):
        t = time.perf_counter()
        first = None
        for chunk in agent.stream("local", f"Tell me one fact about the number {i + 1}."):
            if chunk.text and first is None:
                first = time.perf_counter() - t
        ttft.append((first or 0.0) * 1000)
    agent.close()
    return ttft[0], ttft[-1], ttft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=20, help="measured turns per cell (library, floor, openai)")
    parser.add_argument("--procs", type=int, default=10, help="measured `memchat ask` processes per H")
    parser.add_argument("--skip-local", action="store_true", help="skip the embedded-model TTFT")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of floor, same and library")
    parser.add_argument("--skip-cli", action="store_true", help="skip the openai SDK and `memchat ask` columns")
    args = parser.parse_args()

    # as an install does: compiled bytecode, so processes do not recompile memchat each start
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=True, capture_output=True)
    baseline = []
    for _ in range(10):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - t)
    print(f"machine reference: `python -c pass` takes {median_ms(baseline):.1f} ms")
    server, url = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"loopback server {url}; median ms per turn ({args.turns} turns, {args.procs} processes)")
            head = f"{'H':>6} {'floor':>8} {'same':>8} {'library':>8} {'lib/floor':>10} {'lib/same':>9}"
            print(head + f" {'openai':>9} {'memchat ask':>12}")
            for h in HISTORIES:
                floors, sames, libs = [], [], []
                for r in range(args.rounds):
                    floors.append(bench_floor(url, h, args.turns))
                    lib, like = bench_library(url, Path(tmp) / f"lib{h}-{r}.db", h, args.turns)
                    sames.append(bench_floor(url, h, args.turns, like))
                    libs.append(lib)
                floor, same, lib = (statistics.median(x) for x in (floors, sames, libs))
                sdk = bench_openai(url, h, args.turns) if not args.skip_cli else float("nan")
                cli = bench_cli(url, Path(tmp) / "home", h, args.procs) if not args.skip_cli else float("nan")
                line = f"{h:>6} {floor:>8.2f} {same:>8.2f} {lib:>8.2f} {lib / floor:>9.2f}x {lib / same:>8.2f}x"
                print(line + f" {sdk:>9.2f} {cli:>12.1f}", flush=True)
    finally:
        server.terminate()
        server.wait()
    if not args.skip_local:
        first, last, all_ttft = bench_local()
        print(f"embedded TTFT: turn 1 {first:.0f} ms, turn 20 {last:.0f} ms, ratio {last / first:.2f}x")
        print("  per turn: " + " ".join(f"{v:.0f}" for v in all_ttft))


if __name__ == "__main__":
    main()
