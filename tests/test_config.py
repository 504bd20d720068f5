"""Settings precedence (flag > env > config file > default) and key secrecy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memchat.config import config_path, resolve
from memchat.errors import ConfigError
from memchat.factory import make_provider


def write_config(text: str, mode: int = 0o600) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def test_nothing_configured_means_the_embedded_model(clean_env: Path) -> None:
    s = resolve()
    assert s.provider == "local" and s.api_key is None
    assert Path(s.db) == clean_env / "memchat.db"


def test_modelscope_preset_and_its_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMCHAT_PROVIDER", "modelscope")
    monkeypatch.setenv("MODELSCOPE_API_KEY", "ms-abcdef123456")
    s = resolve()
    assert s.base_url == "https://api-inference.modelscope.cn/v1"
    assert s.model == "Qwen/Qwen3-Next-80B-A3B-Instruct"
    assert s.api_key == "ms-abcdef123456" and s.sources["api_key"] == "env MODELSCOPE_API_KEY"
    assert "abcdef123456" not in repr(s)
    assert all("abcdef123456" not in v for _, v, _ in s.describe())


def test_precedence_flag_env_file_default(monkeypatch: pytest.MonkeyPatch) -> None:
    write_config('provider = "openai"\nmodel = "from-file"\napi_key = "sk-file-key-0000"\n')
    assert resolve().model == "from-file"
    monkeypatch.setenv("MEMCHAT_MODEL", "from-env")
    assert resolve().model == "from-env"
    s = resolve({"model": "from-flag"})
    assert s.model == "from-flag" and s.sources["model"] == "flag"
    assert s.api_key == "sk-file-key-0000" and s.sources["api_key"] == "config"
    monkeypatch.setenv("MEMCHAT_API_KEY", "sk-env-key-1111")
    assert resolve().api_key == "sk-env-key-1111"


def test_a_key_in_a_world_readable_config_file_is_refused() -> None:
    write_config('api_key = "sk-secret-999999"\n', mode=0o644)
    with pytest.raises(ConfigError, match="chmod 600") as info:
        resolve()
    assert "sk-secret" not in str(info.value)


def test_bad_config_files_give_one_clear_error() -> None:
    write_config("provider = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve()
    write_config('colour = "blue"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        resolve()


def test_unknown_provider_and_missing_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown provider"):
        resolve({"provider": "skynet"})
    with pytest.raises(ConfigError, match="base URL"):
        resolve({"provider": "compat"})
    with pytest.raises(ConfigError, match="MODELSCOPE_API_KEY"):
        make_provider(resolve({"provider": "modelscope"}))
    monkeypatch.setenv("MEMCHAT_BASE_URL", "http://127.0.0.1:9/v1/")
    s = resolve()
    assert s.provider == "compat" and s.base_url == "http://127.0.0.1:9/v1"


def test_language_from_memchat_lang_or_locale() -> None:
    from memchat.i18n import detect_lang

    assert detect_lang({"MEMCHAT_LANG": "zh"}) == "zh"
    assert detect_lang({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert detect_lang({"LANG": "en_US.UTF-8", "LC_ALL": "zh_TW.UTF-8"}) == "zh"
    assert detect_lang({"LANG": "de_DE.UTF-8"}) == "en"
    assert detect_lang({}) == "en"


def test_the_image_provider_follows_the_chat_provider_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve().image_provider is None  # the embedded model: no image API, nothing offline
    monkeypatch.setenv("MEMCHAT_PROVIDER", "modelscope")
    monkeypatch.setenv("MODELSCOPE_API_KEY", "ms-chat-key-123456")
    s = resolve()
    assert (s.image_provider, s.image_base_url, s.image_model) == (
        "modelscope",
        "https://api-inference.modelscope.cn/v1",
        "Qwen/Qwen-Image",
    )
    assert s.image_api_key == "ms-chat-key-123456"  # one ModelScope key serves both
    assert all("123456" not in v for _, v, _ in s.describe())
    monkeypatch.setenv("MEMCHAT_IMAGE_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-images-999999")
    monkeypatch.setenv("MEMCHAT_IMAGE_MODEL", "dall-e-3")
    s = resolve()
    assert (s.image_provider, s.image_base_url, s.image_api_key, s.image_model) == (
        "openai",
        "https://api.openai.com/v1",
        "sk-images-999999",
        "dall-e-3",
    )
    monkeypatch.setenv("MEMCHAT_IMAGE_PROVIDER", "midjourney")
    with pytest.raises(ConfigError, match="unknown image provider 'midjourney'; choose one of: modelscope, openai"):
        resolve()


def test_an_image_key_in_a_world_readable_config_file_is_refused() -> None:
    write_config('image_api_key = "ms-secret-777777"\n', mode=0o640)
    with pytest.raises(ConfigError, match="holds an image_api_key but is readable by others") as info:
        resolve()
    assert "777777" not in str(info.value)


def test_a_seed_pins_sampling_only_when_the_user_sets_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from memchat.factory import make_agent

    assert resolve().seed is None  # by default every reply is a new sample (a regenerate differs)
    monkeypatch.setenv("MEMCHAT_SEED", "7")
    settings = resolve()
    assert settings.seed == 7 and settings.sources["seed"] == "env MEMCHAT_SEED"
    assert resolve({"seed": 11}).seed == 11
    agent = make_agent(dataclasses.replace(settings, db=":memory:"))
    try:
        assert agent.options is not None and agent.options.seed == 7
    finally:
        agent.close()
    for bad, said in (("x", "seed must be a whole number"), ("-1", "seed must be between 0 and 2147483647")):
        monkeypatch.setenv("MEMCHAT_SEED", bad)
        with pytest.raises(ConfigError, match=said):
            resolve()
