"""Provider presets as data: OpenAI-compatible services differ only in these values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    base_url: str | None
    model: str
    key_env: str | None = None  # the service's usual key variable, read after MEMCHAT_API_KEY
    needs_key: bool = True
    context_window: int | None = None
    description: str = ""
    #: a hosted API (it says nothing of its window: memchat does not ask it)
    hosted: bool = False


LOCAL = "local"

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            LOCAL,
            None,
            "SmolLM2-135M-Instruct",
            needs_key=False,
            context_window=8192,
            description="embedded SmolLM2-135M-Instruct (llama-cpp-python), offline",
        ),
        Preset(
            "modelscope",
            "https://api-inference.modelscope.cn/v1",
            "Qwen/Qwen3-Next-80B-A3B-Instruct",
            key_env="MODELSCOPE_API_KEY",
            context_window=262_144,
            description="ModelScope API-Inference",
            hosted=True,
        ),
        Preset(
            "openai",
            "https://api.openai.com/v1",
            "gpt-4.1-mini",
            key_env="OPENAI_API_KEY",
            context_window=1_047_576,
            description="OpenAI",
            hosted=True,
        ),
        Preset(
            "deepseek",
            "https://api.deepseek.com/v1",
            "deepseek-chat",
            key_env="DEEPSEEK_API_KEY",
            context_window=65_536,
            description="DeepSeek",
            hosted=True,
        ),
        Preset(
            "ollama",
            "http://127.0.0.1:11434/v1",
            "llama3.2",
            needs_key=False,
            description="a local Ollama server",
        ),
        Preset(
            "vllm",
            "http://127.0.0.1:8000/v1",
            "",
            needs_key=False,
            description="a local vLLM server",
        ),
        Preset(
            "compat",
            None,
            "",
            needs_key=False,
            description="any OpenAI-compatible server (set MEMCHAT_BASE_URL)",
        ),
    )
}
