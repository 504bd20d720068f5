"""The server's own words, in English and Chinese. Each request is answered in the language its
``Accept-Language`` prefers (the page sends the language it shows): the ``Guard`` sets it for the
request's context (``i18n.use_lang``), so errors and a failed turn's words come in it; a request
that names neither language gets the process's (``MEMCHAT_LANG``, the locale)."""

from __future__ import annotations

from memchat import i18n

i18n.add(
    en={
        "http.no_session": "no session {id}",
        "http.no_attachment": "no such attachment",
        "http.empty_turn": "a message needs text or a file",
        "http.no_image": "no such image",
        "http.not_found": "not found",
        "http.busy": "a reply is already being generated in this session",
        "http.too_large": "the body is over {limit:,} bytes",
        "http.too_large_body": "the body is too large",
        "http.unknown_host": "this server does not answer for that Host",
        "http.cross_origin": "cross-site requests are refused",
        "http.unauthorized": "a token is required (Authorization: Bearer …)",
        "http.unknown_token": "unknown token",
        "http.json_only": "send JSON (Content-Type: application/json)",
        "http.invalid_json": "the body is not valid JSON: {reason}",
        "http.invalid": "{where}: {reason}",
        "err.memory_ended": "{detail}",
        "err.bad_import": "cannot import: {detail}",
    },
    zh={
        "http.no_session": "没有会话 {id}",
        "http.no_attachment": "没有这个附件",
        "http.empty_turn": "消息需要文字或文件",
        "http.no_image": "没有这张图片",
        "http.not_found": "找不到",
        "http.busy": "这个会话正在生成回复，请等它结束或先停止",
        "http.too_large": "内容超过 {limit:,} 字节",
        "http.too_large_body": "内容太大",
        "http.unknown_host": "这个服务器不响应这个 Host",
        "http.cross_origin": "拒绝来自其他网站的请求",
        "http.unauthorized": "需要 token（Authorization: Bearer …）",
        "http.unknown_token": "token 不对",
        "http.json_only": "请发送 JSON（Content-Type: application/json）",
        "http.invalid_json": "内容不是有效的 JSON：{reason}",
        "http.invalid": "参数无效：{where}（{reason}）",
        "err.memory_ended": "这条记忆已不再使用（已忘记或已被替换）；请先恢复它",
        "err.bad_import": "无法导入：{detail}",
    },
)
