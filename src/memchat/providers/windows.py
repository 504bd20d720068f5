"""The context window a server says it serves, asked rather than guessed.

Self-hosted servers say it where they can: llama.cpp's server in ``GET /props`` (``n_ctx``),
vLLM in ``GET /v1/models`` (``max_model_len``), Ollama in ``POST /api/show`` (``num_ctx`` when
the model sets it, else Ollama's default). llama-cpp-python's server says it nowhere but in its
context-length error ("maximum context length is 2048 tokens"), which is read too. What is
found is kept per base URL and model: in the process, and in a small JSON file when one is
given (so each ``memchat ask`` does not ask again); a server that says nothing is asked again
after a day. Callers that need a window nobody knows yet share one question: while it is in
flight the others wait for its answer (concurrent turns on a fresh server ask once, not each).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from memchat.providers._httpx import httpx

#: seconds each question may take (a server that does not answer is not asked again today)
ASK_TIMEOUT = 2.0
#: how long "this server does not say" is believed
UNKNOWN_FOR = 24 * 3600.0
#: how long a server that could not be reached is not asked again (in this process only)
UNREACHABLE_FOR = 60.0
#: seconds a caller waits for the answer to a question another caller asked (three questions at most)
ANSWER_WAIT = 3 * ASK_TIMEOUT + 1.0
#: Ollama's context when neither the request nor the model sets ``num_ctx``
OLLAMA_DEFAULT_CTX = 4096

_IN_ERROR = (
    re.compile(r"maximum context length is ([\d,]+)", re.IGNORECASE),  # OpenAI, vLLM, llama-cpp-python
    re.compile(r"context window of ([\d,]+)", re.IGNORECASE),  # llama-cpp-python's own ValueError
    re.compile(r'"n_ctx"\s*:\s*(\d+)'),  # llama.cpp's server: exceed_context_size_error carries n_ctx
)


def window_in_error(text: str) -> int | None:
    """The window a context-length error names, if it names one."""
    for pattern in _IN_ERROR:
        match = pattern.search(text)
        if match:
            value = int(match.group(1).replace(",", ""))
            if value > 0:
                return value
    return None


class WindowBook:
    """Windows per (base URL, model), in memory and, with ``path``, in a JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._known: dict[str, tuple[int | None, float]] = {}
        #: servers that could not be reached, and when (not written to the file)
        self._unreachable: dict[str, float] = {}
        self._loaded = False
        #: the questions in flight: the others asking for the same key wait for the answer
        self._asking: dict[str, threading.Event] = {}

    @staticmethod
    def key(base_url: str, model: str) -> str:
        return f"{base_url.rstrip('/')} {model}"

    def get(self, base_url: str, model: str) -> tuple[bool, int | None]:
        """(whether there is an answer, the window): False when the server should be asked."""
        with self._lock:
            self._load()
            key = self.key(base_url, model)
            found = self._known.get(key)
            missed = self._unreachable.get(key)
        if found is None:
            return missed is not None and time.time() - missed < UNREACHABLE_FOR, None
        window, at = found
        if window is None and time.time() - at > UNKNOWN_FOR:
            return False, None
        return True, window

    def answer(self, base_url: str, model: str, ask: Callable[[], tuple[bool, int | None]]) -> int | None:
        """The window kept for (``base_url``, ``model``), else what ``ask()`` — (whether the
        server answered, the window) — finds, kept: one question at a time per key, whose answer
        the callers meanwhile share (they wait for it, at most ``ANSWER_WAIT`` seconds)."""
        known, window = self.get(base_url, model)
        if known:
            return window
        key = self.key(base_url, model)
        with self._lock:
            pending = self._asking.get(key)
            if pending is None:
                mine = self._asking[key] = threading.Event()
        if pending is not None:
            pending.wait(ANSWER_WAIT)
            return self.get(base_url, model)[1]
        try:
            answered, window = ask()
            if answered:
                self.put(base_url, model, window)
            else:
                self.unreachable(base_url, model)
            return window
        finally:
            with self._lock:
                self._asking.pop(key, None)
            mine.set()

    def put(self, base_url: str, model: str, window: int | None) -> None:
        with self._lock:
            self._load()
            self._known[self.key(base_url, model)] = (window, time.time())
            self._save()

    def unreachable(self, base_url: str, model: str) -> None:
        """The server could not be asked: not again for a minute (the chat call says why)."""
        with self._lock:
            self._unreachable[self.key(base_url, model)] = time.time()

    def _load(self) -> None:
        if self._loaded or self.path is None:
            self._loaded = True
            return
        self._loaded = True
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(raw, dict):
            for k, v in raw.items():
                if isinstance(v, dict) and isinstance(v.get("at"), int | float):
                    window = v.get("window")
                    self._known[str(k)] = (window if isinstance(window, int) and window > 0 else None, float(v["at"]))

    def _save(self) -> None:
        """Written whole to a temporary file, then renamed over (never half a file); a cache
        that cannot be written is only a cache."""
        if self.path is None:
            return
        data = {k: {"window": w, "at": round(at)} for k, (w, at) in self._known.items()}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)


def ask_server(
    base_url: str, model: str, headers: Mapping[str, str], *, transport: httpx.BaseTransport | None = None
) -> tuple[bool, int | None]:
    """(whether the server answered, the window it says it serves ``model`` with or None).
    Never raises: a server that cannot be reached is asked again next time."""
    root = re.sub(r"/v\d+$", "", base_url.rstrip("/"))
    plain = base_url.lower().startswith("http://")
    try:
        with httpx.Client(headers=dict(headers), timeout=ASK_TIMEOUT, transport=transport, verify=not plain) as client:
            for ask in (_llama_cpp, _vllm, _ollama):
                try:
                    found = ask(client, root, base_url.rstrip("/"), model)
                except httpx.TransportError:  # the server cannot be reached: the chat call will say so
                    return False, None
                except (httpx.HTTPError, ValueError, TypeError, KeyError, AttributeError):
                    found = None
                if found:
                    return True, found
    except httpx.HTTPError:
        return False, None
    return True, None


def _json(response: httpx.Response) -> Any:
    if response.status_code != 200 or "json" not in response.headers.get("content-type", "").lower():
        return None
    return response.json()


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _llama_cpp(client: httpx.Client, root: str, base: str, model: str) -> int | None:
    props = _json(client.get(root + "/props"))
    if not isinstance(props, dict):
        return None
    settings = props.get("default_generation_settings")
    nested = settings.get("n_ctx") if isinstance(settings, dict) else None
    return _positive(props.get("n_ctx")) or _positive(nested)


def _vllm(client: httpx.Client, root: str, base: str, model: str) -> int | None:
    listed = _json(client.get(base + "/models"))
    items = listed.get("data") if isinstance(listed, dict) else None
    if not isinstance(items, list):
        return None
    entries = [m for m in items if isinstance(m, dict)]
    chosen = next((m for m in entries if m.get("id") == model), entries[0] if len(entries) == 1 else None)
    return _positive(chosen.get("max_model_len")) if chosen is not None else None


def _ollama(client: httpx.Client, root: str, base: str, model: str) -> int | None:
    if not model:
        return None
    shown = _json(client.post(root + "/api/show", json={"model": model}))
    if not isinstance(shown, dict) or "model_info" not in shown and "parameters" not in shown:
        return None
    match = re.search(r"^\s*num_ctx\s+(\d+)", str(shown.get("parameters") or ""), re.MULTILINE)
    if match:
        return int(match.group(1))
    info = shown.get("model_info")
    trained = [v for k, v in info.items() if k.endswith(".context_length")] if isinstance(info, dict) else []
    limit = _positive(trained[0]) if trained else None
    return min(limit, OLLAMA_DEFAULT_CTX) if limit else OLLAMA_DEFAULT_CTX
