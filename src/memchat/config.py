"""Settings, resolved once: flags > environment > config file > preset defaults.

Environment: ``MEMCHAT_PROVIDER``, ``MEMCHAT_BASE_URL``, ``MEMCHAT_API_KEY`` (else the
preset's own variable, e.g. ``MODELSCOPE_API_KEY``), ``MEMCHAT_MODEL``, ``MEMCHAT_HOME``
(all data and config under it), ``MEMCHAT_DB``, ``MEMCHAT_LANG``, ``MEMCHAT_MODEL_PATH``,
``MEMCHAT_TOOLS`` (``now,search_history`` or ``none``), ``MEMCHAT_MAX_STEPS``, ``MEMCHAT_TIMEZONE``,
``MEMCHAT_DATE_LINE`` (``off`` drops the date line from the context), ``MEMCHAT_IMAGE_PROVIDER``
(``modelscope`` or ``openai``), ``MEMCHAT_IMAGE_BASE_URL``, ``MEMCHAT_IMAGE_API_KEY``,
``MEMCHAT_IMAGE_MODEL``: the image provider follows the chat provider's settings unless these say
otherwise.
The config file is TOML (``config.toml`` in the config directory). A file that holds an
``api_key`` must be private to its owner (mode 0600), or it is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from memchat.errors import ConfigError
from memchat.mcp_config import MCPServerConfig, has_secrets, parse_servers
from memchat.presets import LOCAL, PRESETS, Preset

APP = "memchat"
_KEYS = (
    "provider",
    "base_url",
    "api_key",
    "model",
    "db",
    "lang",
    "model_path",
    "system",
    "context_window",
    "memory",
    "recall",
    "memories",
    "learn",
    "titles",
    "embeddings",
    "client_tools",
    "tools",
    "tool",
    "max_steps",
    "seed",
    "timezone",
    "date_line",
    "image_provider",
    "image_base_url",
    "image_api_key",
    "image_model",
    "vision",
    "max_attachment",
    "mcp",
)
#: image providers and their defaults: (base URL, model, the key variable read after MEMCHAT_IMAGE_API_KEY)
IMAGE_PROVIDERS = {
    "modelscope": ("https://api-inference.modelscope.cn/v1", "Qwen/Qwen-Image", "MODELSCOPE_API_KEY"),
    "openai": ("https://api.openai.com/v1", "gpt-image-1", "OPENAI_API_KEY"),
}
_FALSE = ("0", "off", "false", "no", "none")
#: what the config file may hold for a setting besides a string: a TOML value of another type
#: (``db = 5``, ``context_window = [1]``) is refused, not misread as a path or a crash
_ALSO = {
    "context_window": int,
    "max_steps": int,
    "seed": int,
    "date_line": bool,
    "vision": bool,
    "max_attachment": int,
    "memories": bool,
    "tools": list,
    "tool": list,
}
#: how long-term memories are learned (the one list: the agent, the learner and the settings
#: read it): ``auto`` (the model extracts them after each turn, and
#: explicit requests), ``explicit`` (only when the user asks), ``off``
LEARN_MODES = ("auto", "explicit", "off")
#: how a session the user did not name gets its title from its first exchange: the chat ``model``
#: writes one in the background (the first ``words`` of the question until then, and if it fails),
#: the first ``words`` only, or ``off`` (the generated name stays)
TITLE_MODES = ("model", "words", "off")
#: semantic recall's embedding model: ``auto`` (the offline one when it is installed, else
#: none: recall by words only), ``local`` (the offline one, an error when it is missing), ``off``
EMBEDDINGS = ("auto", "local", "off")
#: when an OpenAI client of ``memchat serve`` sends its own ``tools``: they ``replace`` memchat's
#: for that request (the default), or are offered beside them (``add``; the client's win a name)
CLIENT_TOOLS = ("replace", "add")


def check_base_url(url: str, what: str, where: str) -> str:
    """``url`` if it can be an API's base URL (http or https, a host), else one line that says
    what is wrong and what was probably meant."""
    from urllib.parse import urlsplit

    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"the {what} {url!r} is not a URL ({exc}): check {where}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        local = text.split("/", 1)[0].split(":", 1)[0] in ("127.0.0.1", "localhost", "0.0.0.0", "[::1]")
        rest = text.split("://", 1)[-1]
        meant = f" (did you mean {'http' if local else 'https'}://{rest}?)" if rest.strip("/") else ""
        raise ConfigError(
            f"the {what} {url!r} must start with http:// or https:// and name a host{meant}: check {where}"
        )
    del port
    return text


def home_dir() -> Path | None:
    home = os.environ.get("MEMCHAT_HOME")
    return Path(home).expanduser() if home else None


def config_dir() -> Path:
    home = home_dir()
    if home is not None:
        return home
    import platformdirs

    return Path(platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    home = home_dir()
    if home is not None:
        return home
    import platformdirs

    return Path(platformdirs.user_data_dir(APP))


def cache_dir() -> Path:
    """What memchat may forget and learn again (servers' context windows)."""
    home = home_dir()
    if home is not None:
        return home / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP))


def config_path() -> Path:
    return config_dir() / "config.toml"


def default_db_path() -> Path:
    db = os.environ.get("MEMCHAT_DB")
    return Path(db).expanduser() if db else data_dir() / "memchat.db"


def check_db_path(target: str) -> None:
    """A SQLite file named by ``--db``, ``MEMCHAT_DB`` or a caller must be in a folder that exists:
    a typo is refused (``ConfigError``, saying what to do), not made into new folders and an empty
    database. Only the default location (``memchat.db`` in the data directory) is made when
    missing. URLs and ``:memory:`` pass."""
    if target.startswith(("postgresql://", "postgres://")) or target in ("", ":memory:"):
        return
    for prefix in ("sqlite:///", "sqlite://"):
        if target.startswith(prefix):
            target = target[len(prefix) :] or ":memory:"
            if target == ":memory:":
                return
    path = Path(target).expanduser()
    if path.is_dir():
        raise ConfigError(f"the database {target} is a folder; name a file in it, e.g. {path / 'memchat.db'}")
    if path.absolute() == (data_dir() / "memchat.db").absolute():
        return
    folder = path.parent
    if folder.is_dir():
        return
    if folder.exists():
        raise ConfigError(
            f"cannot make the database {target}: {folder} is not a folder; give --db (or MEMCHAT_DB) a file in a folder"
        )
    raise ConfigError(
        f"the folder {folder} does not exist, so the database {target} is not made there; check the path, "
        f"or create the folder first (mkdir -p {folder})"
    )


def mask(secret: str | None) -> str:
    if not secret:
        return "(not set)"
    if len(secret) <= 8:
        return "****"
    return f"{secret[:3]}…{secret[-4:]}"


@dataclass(frozen=True)
class Settings:
    provider: str = LOCAL
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str = ""
    db: str = ""
    lang: str | None = None
    model_path: str | None = None
    system: str | None = None
    context_window: int | None = None
    memory: str | None = None
    #: where recall searches: ``all`` of the user's sessions (default) or this ``session`` only
    recall: str = "all"
    #: long-term memory: what the agent learns about the user, recalled in every session
    memories: bool = True
    #: how memories are learned (None: ``auto``, but ``explicit`` on the embedded model)
    learn: str | None = None
    #: how sessions get titles (one of ``TITLE_MODES``; None: ``model``, but ``words`` on the
    #: embedded model, too small to write a good one)
    titles: str | None = None
    #: semantic recall's embedding model (one of ``EMBEDDINGS``)
    embeddings: str = "auto"
    #: what a client's own tools do to memchat's (one of ``CLIENT_TOOLS``)
    client_tools: str = "replace"
    #: tools switched on (None: each session's own; () none)
    tools: tuple[str, ...] | None = None
    #: the user's own tools, ``module:function``
    tool: tuple[str, ...] = ()
    max_steps: int = 8
    #: sample every reply with this seed (None: a new sample each time, so a regenerate differs)
    seed: int | None = None
    #: IANA time zone for the date line and the ``now`` tool (None: the system's)
    timezone: str | None = None
    #: a line with today's date in the context
    date_line: bool = True
    #: text-to-image: ``modelscope`` or ``openai`` (None: none configured)
    image_provider: str | None = None
    image_base_url: str | None = None
    image_api_key: str | None = field(default=None, repr=False)
    image_model: str | None = None
    #: the model takes images (None: as the known-models table says; ``attachments/vision.py``)
    vision: bool | None = None
    #: the largest file a message may carry, in bytes (``20MB``, ``500KB`` or bytes in config)
    max_attachment: int = 20 * 1024 * 1024
    #: the MCP servers of the config file (``[mcp.servers.NAME]``), and which this run uses
    #: (None: the enabled ones; see ``memchat.mcp_config``)
    mcp_servers: tuple[MCPServerConfig, ...] = ()
    mcp: tuple[str, ...] | None = None
    #: where each value came from: flag, env, config, default
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def preset(self) -> Preset:
        return PRESETS[self.provider]

    def __repr__(self) -> str:
        return (
            f"Settings(provider={self.provider!r}, base_url={self.base_url!r}, api_key={mask(self.api_key)!r}, "
            f"model={self.model!r}, db={self.db!r})"
        )

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, value, source) rows with the key masked, for ``memchat config``."""
        rows = []
        for f in fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            if f.name == "mcp_servers":
                value = ", ".join(f"{s.name} ({s.transport}: {s.target()})" for s in value) or None
            shown = mask(value) if f.name in ("api_key", "image_api_key") else ("" if value is None else str(value))
            rows.append((f.name, shown, self.sources.get(f.name, "default")))
        rows.append(("config_file", str(config_path()), "-"))
        return rows

    def with_overrides(self, **values: Any) -> Settings:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    import tomllib  # only when a config file exists

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    secret: str | None = next((k for k in ("api_key", "image_api_key") if k in data), None)
    if secret is None and has_secrets(data.get("mcp")):
        secret = "MCP server's env or headers"
    if secret and os.name == "posix":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"{path} holds an {secret} but is readable by others (mode {mode:o}); run: chmod 600 {path}"
            )
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(_KEYS)}")
    for key, value in data.items():
        if key == "mcp":
            data[key] = parse_servers(value, path)
            continue
        _check_type(path, key, value)
    return data


_TOML_TYPES = {str: "a string", int: "a whole number", bool: "true or false", list: "a list of strings"}


def _check_type(path: Path, key: str, value: Any) -> None:
    also = _ALSO.get(key)
    if isinstance(value, str) or (also is not None and type(value) is also):
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: {key} must be a list of strings")
        return
    wanted = " or ".join(_TOML_TYPES[t] for t in (str, also) if t is not None)
    kind = {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "a table"}.get(
        type(value), "a date or time"
    )
    raise ConfigError(f"{path}: {key} must be {wanted}, not {kind}")


def resolve(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings with the documented precedence."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if env is None else env
    file = read_config_file()
    sources: dict[str, str] = {}

    def pick(name: str, env_name: str | None = None) -> Any:
        if name in flags:
            sources[name] = "flag"
            return flags[name]
        if env_name and env.get(env_name):
            sources[name] = f"env {env_name}"
            return env[env_name]
        if name in file:
            sources[name] = "config"
            return file[name]
        return None

    base_url = pick("base_url", "MEMCHAT_BASE_URL")
    provider = pick("provider", "MEMCHAT_PROVIDER")
    if provider is None:
        provider = "compat" if base_url else LOCAL
        sources["provider"] = "default"
    provider = str(provider).strip().lower()
    if provider not in PRESETS:
        raise ConfigError(f"unknown provider {provider!r}; choose one of: {', '.join(PRESETS)}")
    preset = PRESETS[provider]

    api_key = pick("api_key", "MEMCHAT_API_KEY")
    if api_key is None and preset.key_env and env.get(preset.key_env):
        api_key = env[preset.key_env]
        sources["api_key"] = f"env {preset.key_env}"

    if base_url is None and preset.base_url:
        base_url = preset.base_url
    if provider != LOCAL and not base_url:
        raise ConfigError(f"provider {provider!r} needs a base URL: set MEMCHAT_BASE_URL or --base-url")
    if base_url is not None and provider != LOCAL:
        base_url = check_base_url(str(base_url), "base URL", "MEMCHAT_BASE_URL or --base-url")

    model = pick("model", "MEMCHAT_MODEL") or preset.model
    db = pick("db", "MEMCHAT_DB") or str(default_db_path())
    lang = pick("lang", "MEMCHAT_LANG")
    model_path = pick("model_path", "MEMCHAT_MODEL_PATH")
    system = pick("system")
    window = pick("context_window", "MEMCHAT_CONTEXT_WINDOW")
    try:
        context_window = int(window) if window is not None else preset.context_window
    except ValueError as exc:
        raise ConfigError(f"context_window must be a number of tokens, not {window!r}") from exc
    if context_window is not None and context_window <= 0:
        raise ConfigError(f"the context window must be a positive number of tokens, not {context_window}")
    memories_value = pick("memories", "MEMCHAT_MEMORIES")
    memories = True if memories_value is None else str(memories_value).strip().lower() not in _FALSE
    # without long-term memory, recall stays in the session unless asked
    recall = str(pick("recall", "MEMCHAT_RECALL") or ("all" if memories else "session")).strip().lower()
    if recall not in ("session", "all"):
        raise ConfigError(f"recall must be 'session' or 'all', not {recall!r}")
    learn = pick("learn", "MEMCHAT_LEARN")
    if learn is not None:
        learn = str(learn).strip().lower()
        if learn not in LEARN_MODES:
            raise ConfigError(f"learn must be one of {', '.join(LEARN_MODES)}, not {learn!r}")
    titles = pick("titles", "MEMCHAT_TITLES")
    if titles is not None:
        titles = str(titles).strip().lower()
        if titles not in TITLE_MODES:
            raise ConfigError(f"titles must be one of {', '.join(TITLE_MODES)}, not {titles!r}")
    embeddings = str(pick("embeddings", "MEMCHAT_EMBEDDINGS") or "auto").strip().lower()
    if embeddings in _FALSE:
        embeddings = "off"
    if embeddings not in EMBEDDINGS:
        raise ConfigError(f"embeddings must be one of {', '.join(EMBEDDINGS)}, not {embeddings!r}")
    client_tools = str(pick("client_tools", "MEMCHAT_CLIENT_TOOLS") or "replace").strip().lower()
    if client_tools not in CLIENT_TOOLS:
        raise ConfigError(f"client_tools must be one of {', '.join(CLIENT_TOOLS)}, not {client_tools!r}")
    memory = pick("memory", "MEMCHAT_MEMORY")
    if memory is not None:
        from memchat.memory.plan import STRATEGIES

        memory = str(memory).strip().lower()
        if memory not in STRATEGIES:
            raise ConfigError(f"unknown memory strategy {memory!r}; choose one of: {', '.join(STRATEGIES)}")
    tools_value = pick("tools", "MEMCHAT_TOOLS")
    tools: tuple[str, ...] | None = None
    if tools_value is not None:
        items = tools_value if isinstance(tools_value, list | tuple) else str(tools_value).split(",")
        tools = tuple(n.strip() for n in map(str, items) if n.strip() and n.strip().lower() not in _FALSE)
    tool_value = pick("tool")
    tool = tuple(map(str, tool_value if isinstance(tool_value, list | tuple) else [tool_value])) if tool_value else ()
    steps = pick("max_steps", "MEMCHAT_MAX_STEPS")
    try:
        max_steps = int(steps) if steps is not None else 8
    except ValueError as exc:
        raise ConfigError(f"max_steps must be a whole number, not {steps!r}") from exc
    if not 1 <= max_steps <= 100:
        raise ConfigError(f"max_steps must be between 1 and 100, not {max_steps}")
    seed_value = pick("seed", "MEMCHAT_SEED")
    try:
        seed = int(seed_value) if seed_value is not None else None
    except ValueError as exc:
        raise ConfigError(f"seed must be a whole number, not {seed_value!r}") from exc
    if seed is not None and not 0 <= seed <= 2**31 - 1:
        raise ConfigError(f"seed must be between 0 and 2147483647, not {seed}")
    timezone = pick("timezone", "MEMCHAT_TIMEZONE")
    if timezone is not None:
        from memchat.clock import timezone as zone

        zone(str(timezone))  # an unknown zone is a one-line error now, not at the first turn
    date_value = pick("date_line", "MEMCHAT_DATE_LINE")
    date_line = True if date_value is None else str(date_value).strip().lower() not in _FALSE
    image = _image_settings(pick, env, provider, base_url, api_key, sources)
    vision_value = pick("vision", "MEMCHAT_VISION")
    vision = None if vision_value is None else str(vision_value).strip().lower() not in _FALSE
    max_attachment = _size(pick("max_attachment", "MEMCHAT_MAX_ATTACHMENT"))
    mcp_value = pick("mcp", "MEMCHAT_MCP") if "mcp" in flags or env.get("MEMCHAT_MCP") else None
    mcp: tuple[str, ...] | None = None
    if mcp_value is not None:
        items = mcp_value if isinstance(mcp_value, list | tuple) else [mcp_value]
        mcp = tuple(n.strip() for item in map(str, items) for n in item.split(",") if n.strip())
    mcp_servers: tuple[MCPServerConfig, ...] = file.get("mcp", ())
    if mcp_servers:
        sources["mcp_servers"] = "config"
    if mcp is not None:
        from memchat.mcp_config import choose

        choose(mcp_servers, mcp)  # an unknown server's name: one line now, before anything starts
    return Settings(
        mcp_servers=mcp_servers,
        mcp=mcp,
        vision=vision,
        max_attachment=max_attachment,
        **image,
        tools=tools,
        tool=tool,
        max_steps=max_steps,
        seed=seed,
        timezone=str(timezone) if timezone is not None else None,
        date_line=date_line,
        memory=memory,
        recall=recall,
        memories=memories,
        learn=learn,
        titles=titles,
        embeddings=embeddings,
        client_tools=client_tools,
        provider=provider,
        base_url=str(base_url).rstrip("/") if base_url else None,
        api_key=str(api_key) if api_key else None,
        model=str(model),
        db=str(db),
        lang=lang,
        model_path=model_path,
        system=system,
        context_window=context_window,
        sources=sources,
    )


def _size(value: Any) -> int:
    """A size in bytes from ``20MB``, ``500 KB``, ``1048576`` (None: the default, 20 MB)."""
    if value is None:
        return 20 * 1024 * 1024
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?i?b?)?\s*", str(value).lower())
    if m is None or float(m.group(1)) <= 0:
        raise ConfigError(f"max_attachment must be a size such as 20MB or 500KB, not {value!r}")
    unit = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[(m.group(2) or "").rstrip("ib")[:1]]
    return int(float(m.group(1)) * unit)


def _image_settings(
    pick: Any, env: Mapping[str, str], provider: str, base_url: Any, api_key: Any, sources: dict[str, str]
) -> dict[str, Any]:
    """The image provider: its own settings, else the chat provider's when that has an image
    API (ModelScope, OpenAI; a ModelScope key and base URL serve both)."""
    chosen = pick("image_provider", "MEMCHAT_IMAGE_PROVIDER")
    image_url = pick("image_base_url", "MEMCHAT_IMAGE_BASE_URL")
    image_key = pick("image_api_key", "MEMCHAT_IMAGE_API_KEY")
    model = pick("image_model", "MEMCHAT_IMAGE_MODEL")
    if chosen is None:
        if provider not in IMAGE_PROVIDERS:
            return {}
        chosen = provider
        sources["image_provider"] = "chat provider"
    chosen = str(chosen).strip().lower()
    if chosen in ("", "none", "off"):
        return {}
    if chosen not in IMAGE_PROVIDERS:
        raise ConfigError(f"unknown image provider {chosen!r}; choose one of: {', '.join(IMAGE_PROVIDERS)}")
    default_url, default_model, key_env = IMAGE_PROVIDERS[chosen]
    same = chosen == provider
    if image_url is None:
        image_url = base_url if same and base_url else default_url
    if image_key is None:
        image_key = api_key if same and api_key else env.get(key_env) or None
    image_url = check_base_url(str(image_url), "image base URL", "MEMCHAT_IMAGE_BASE_URL")
    return {
        "image_provider": chosen,
        "image_base_url": str(image_url).rstrip("/"),
        "image_api_key": str(image_key) if image_key else None,
        "image_model": str(model) if model else default_model,
    }
