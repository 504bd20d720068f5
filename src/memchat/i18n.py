"""UI strings in English and Chinese.

The language comes from ``MEMCHAT_LANG`` (``en``/``zh``), else the locale (``LC_ALL``,
``LC_MESSAGES``, ``LANG``): any ``zh*`` locale gives Chinese. A server answers each request in
the language it asks for (``use_lang`` with ``Accept-Language``, for the request's context
only). Modules add their strings with ``add(en={...}, zh={...})``; ``t(key, **fields)`` formats one.
"""

from __future__ import annotations

import os
from contextvars import ContextVar, Token

from memchat.errors import MemchatError, RateLimited

_CATALOG: dict[str, dict[str, str]] = {"en": {}, "zh": {}}
_lang: str | None = None
#: the language of the request being answered (a server's), over the process's own
_asked: ContextVar[str | None] = ContextVar("memchat_lang", default=None)


def detect_lang(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    explicit = (env.get("MEMCHAT_LANG") or "").strip().lower()
    if explicit:
        return "zh" if explicit.startswith(("zh", "cn")) else "en"
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def lang() -> str:
    global _lang
    asked = _asked.get()
    if asked is not None:
        return asked
    if _lang is None:
        _lang = detect_lang()
    return _lang


def set_lang(value: str | None) -> None:
    global _lang
    _lang = None if value is None else ("zh" if value.lower().startswith(("zh", "cn")) else "en")


def accepted(header: str | None) -> str | None:
    """The language an ``Accept-Language`` header prefers among ours (``en``/``zh``), by its
    q-values; None when it names neither."""
    best: tuple[float, int, str] | None = None
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ours = "zh" if tag.startswith("zh") else "en" if tag.startswith("en") else None
        if ours is None or quality <= 0:
            continue
        if best is None or (quality, -position) > (best[0], best[1]):
            best = (quality, -position, ours)
    return best[2] if best else None


def use_lang(value: str | None) -> Token[str | None]:
    """Speak ``value`` (``en``/``zh``; None: the process's language) in this context only, as a
    server does for one request; ``reset_lang`` with the token returned ends it."""
    return _asked.set(value)


def reset_lang(token: Token[str | None]) -> None:
    _asked.reset(token)


def add(en: dict[str, str], zh: dict[str, str]) -> None:
    missing = set(en) ^ set(zh)
    if missing:
        raise ValueError(f"i18n keys missing a translation: {sorted(missing)}")
    _CATALOG["en"].update(en)
    _CATALOG["zh"].update(zh)


def t(key: str, **fields: object) -> str:
    text = _CATALOG[lang()].get(key) or _CATALOG["en"].get(key) or key
    return text.format(**fields) if fields else text


add(
    en={
        "err.error": "{detail}",
        "err.config": "configuration: {detail}",
        "err.store": "{detail}",
        "err.session_not_found": "{detail} (see: memchat sessions list)",
        "err.memory_not_found": "{detail} (see: memchat memory list --all)",
        "err.session_exists": "{detail}; choose another name",
        "err.session_exists.named": "a session named {name!r} already exists; choose another name",
        "err.import_format": "cannot import: {detail}",
        "err.turn_in_progress": "{detail}",
        "err.provider": "the model call failed: {detail}",
        "err.unavailable": "cannot reach the model server ({detail}); check the network or MEMCHAT_BASE_URL",
        "err.timeout": "the model server did not answer in time ({detail}); try again",
        "err.auth": "the API key was refused ({detail}); check MEMCHAT_API_KEY or the provider's key variable",
        "err.rate_limited": "rate limited by the provider ({detail}); wait a little and try again",
        "err.quota": "the provider's quota is used up ({detail}); wait for the reset or switch model/provider",
        "err.bad_request": "the server refused the request ({detail})",
        "err.context_length": "the conversation is longer than the model's context window ({detail}); "
        "use /undo, /clear or a new session",
        "err.server": "the model server had an error ({detail}); try again later",
        "err.stream": "the reply stream broke ({detail}); try again",
        "err.reply_too_long": "the reply passed memchat's limit of {detail} characters and was cut there "
        "(kept, marked interrupted)",
        "err.context_too_long": "{detail}",
        "err.unknown_model": "{detail}",
        "err.bad_image_request": "{detail}",
        "err.attachment": "cannot attach: {detail}",
        "err.images_not_accepted.embedded": "the embedded model {model} takes text only, so {name} (an image) "
        "was not sent and nothing was stored; use a provider with a vision model (e.g. --provider openai "
        "--model gpt-4o)",
        "err.attachment.named_as": "cannot attach {name}: it is named as {named} but its bytes are {found}",
        "err.attachment.not_named_type": "cannot attach {name}: it is not an {named} file (its bytes do not "
        "start as one)",
        "err.attachment.declared": "cannot attach {name}: it was sent as {declared} but its bytes are {found}",
        "err.attachment.unknown_type": "cannot attach {name}: it is neither text (UTF-8) nor an image (PNG, "
        "JPEG, GIF, WebP) or a PDF",
        "err.attachment.declared_not": "cannot attach {name}: it was sent as {declared} but its bytes are not",
        "err.attachment.empty": "cannot attach {name}: it is empty",
        "err.attachment.bad_base64": "cannot attach {name}: its data is not valid base64",
        "err.attachment.bad_uri": "cannot attach {name}: a data URI must be data:<type>;base64,<data>",
        "err.attachment.unreadable": "cannot attach {name}: {detail}",
        "err.attachment.needs_pypdf": "cannot attach {name}: reading a PDF's text needs pypdf: "
        "pip install 'memchat[pdf]'",
        "err.attachment.too_many_tokens": "cannot attach {name}: it needs about {tokens} tokens, more than the "
        "{limit} the model's context window leaves for messages; attach a part of it",
        "err.attachment_too_large": "cannot attach {name}: it is {size}, over the limit of {limit} "
        "(set max_attachment or MEMCHAT_MAX_ATTACHMENT to raise it)",
        "err.images_not_accepted": "the model {model} takes text only, so {name} (an image) was not sent and "
        "nothing was stored; use a vision model (e.g. gpt-4o, Qwen/Qwen2.5-VL-72B-Instruct) or mark this one "
        "with --vision / vision = true",
        "err.image_failed": "the image could not be generated ({detail})",
        "err.image_timeout": "{detail}",
        "err.image_download": "the generated image could not be fetched safely ({detail})",
        "err.cancelled": "{detail}",
        "err.fanout_unavailable": "{detail}",
        "err.retry_after": " (retry after {seconds:.0f} s)",
        "err.dropped": "your message was not kept; send it again when ready",
        # the image service's own failures (``info["service"] == "image"``): its own settings
        "err.image.unavailable": "cannot reach the image service ({detail}); check the network or "
        "MEMCHAT_IMAGE_BASE_URL",
        "err.image.timeout": "the image service did not answer in time ({detail}); try again",
        "err.image.auth": "the image service refused the API key ({detail}); check MEMCHAT_IMAGE_API_KEY "
        "(it defaults to the chat provider's key)",
        "err.image.server": "the image service had an error ({detail}); try again later",
    },
    zh={
        "err.error": "{detail}",
        "err.config": "配置错误：{detail}",
        "err.store": "{detail}",
        "err.session_not_found": "{detail}（查看：memchat sessions list）",
        "err.memory_not_found": "{detail}（查看：memchat memory list --all）",
        "err.session_exists": "{detail}；请换一个名字",
        "err.session_exists.named": "已有名为“{name}”的会话；请换一个名字",
        "err.import_format": "无法导入：{detail}",
        "err.turn_in_progress": "{detail}",
        "err.provider": "模型调用失败：{detail}",
        "err.unavailable": "无法连接模型服务（{detail}）；请检查网络或 MEMCHAT_BASE_URL",
        "err.timeout": "模型服务响应超时（{detail}）；请重试",
        "err.auth": "API 密钥被拒绝（{detail}）；请检查 MEMCHAT_API_KEY 或服务商的密钥变量",
        "err.rate_limited": "请求过于频繁，被服务商限流（{detail}）；请稍后重试",
        "err.quota": "服务商额度已用完（{detail}）；请等待额度重置，或换模型/服务商",
        "err.bad_request": "服务端拒绝了请求（{detail}）",
        "err.context_length": "对话超出了模型的上下文窗口（{detail}）；可用 /undo、/clear 或新建会话",
        "err.server": "模型服务出错（{detail}）；请稍后再试",
        "err.stream": "回复流中断（{detail}）；请重试",
        "err.reply_too_long": "回复超过了 memchat 的上限（{detail} 个字符），已在此截断（已保留，标记为中断）",
        "err.context_too_long": "上下文放不下：{detail}",
        "err.unknown_model": "{provider} 服务商只有 {offered}，没有 {model}；"
        "要用其他模型请换服务商（--provider …，见 memchat models）",
        "err.bad_image_request": "{detail}",
        "err.attachment": "无法附加文件：{detail}",
        "err.images_not_accepted.embedded": "内置模型 {model} 只接受文本，图片 {name} 没有发送，也没有保存任何内容；"
        "请换用带视觉模型的服务商（如 --provider openai --model gpt-4o）",
        "err.attachment.named_as": "无法附加 {name}：文件名表明是 {named}，但内容是 {found}",
        "err.attachment.not_named_type": "无法附加 {name}：它不是 {named} 文件（文件头不符）",
        "err.attachment.declared": "无法附加 {name}：声明的类型是 {declared}，但内容是 {found}",
        "err.attachment.unknown_type": "无法附加 {name}：既不是文本（UTF-8），也不是图片（PNG、JPEG、GIF、WebP）或 PDF",
        "err.attachment.declared_not": "无法附加 {name}：声明的类型是 {declared}，但内容不是",
        "err.attachment.empty": "无法附加 {name}：文件是空的",
        "err.attachment.bad_base64": "无法附加 {name}：数据不是有效的 base64",
        "err.attachment.bad_uri": "无法附加 {name}：data URI 的格式应为 data:<类型>;base64,<数据>",
        "err.attachment.unreadable": "无法附加 {name}：{detail}",
        "err.attachment.needs_pypdf": "无法附加 {name}：读取 PDF 文本需要 pypdf：pip install 'memchat[pdf]'",
        "err.attachment.too_many_tokens": "无法附加 {name}：它大约需要 {tokens} 个 token，"
        "超过了模型上下文窗口留给消息的 {limit}；请只附加其中一部分",
        "err.attachment_too_large": "无法附加 {name}：文件大小 {size}，超过上限 {limit}"
        "（可用 max_attachment 或 MEMCHAT_MAX_ATTACHMENT 调高）",
        "err.images_not_accepted": "模型 {model} 只接受文本，图片 {name} 没有发送，也没有保存任何内容；"
        "请换用视觉模型（如 gpt-4o、Qwen/Qwen2.5-VL-72B-Instruct），或用 --vision / vision = true 标记该模型",
        "err.image_failed": "图片生成失败（{detail}）",
        "err.image_timeout": "{detail}",
        "err.image_download": "无法安全地下载生成的图片（{detail}）",
        "err.cancelled": "{detail}",
        "err.fanout_unavailable": "{detail}",
        "err.retry_after": "（{seconds:.0f} 秒后可重试）",
        "err.dropped": "这条消息没有保留；准备好后请重新发送",
        "err.image.unavailable": "无法连接图片服务（{detail}）；请检查网络或 MEMCHAT_IMAGE_BASE_URL",
        "err.image.timeout": "图片服务响应超时（{detail}）；请重试",
        "err.image.auth": "图片服务拒绝了 API 密钥（{detail}）；"
        "请检查 MEMCHAT_IMAGE_API_KEY（默认与对话服务的密钥相同）",
        "err.image.server": "图片服务出错（{detail}）；请稍后再试",
    },
)


def describe_error(exc: MemchatError) -> str:
    """One line for the user: what went wrong and what to do."""
    detail = " ".join(str(exc.detail or exc.kind).split())
    key = f"err.{exc.kind}"
    service = exc.info.get("service")  # a service other than the chat model: its own wording
    if service and f"err.{service}.{exc.kind}" in _CATALOG["en"]:
        key = f"err.{service}.{exc.kind}"
    reason = exc.info.get("reason")  # a case of its own, worded in each language
    if isinstance(reason, str) and f"{key}.{reason}" in _CATALOG["en"]:
        key = f"{key}.{reason}"
    name = exc.info.get("name")
    if isinstance(name, str) and f"{key}.named" in _CATALOG["en"]:  # the name alone, in the user's words
        line = t(f"{key}.named", name=name)
    else:
        fields = {k: v for k, v in exc.info.items() if isinstance(v, str | int | float) and k != "detail"}
        line = t(key, **fields, detail=detail)
    if isinstance(exc, RateLimited) and exc.retry_after and not exc.quota:
        line += t("err.retry_after", seconds=exc.retry_after)
    return line
