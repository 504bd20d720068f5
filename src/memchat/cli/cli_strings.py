"""What the command line (``memchat ask``, ``sessions``, ``config``…) says, in English and Chinese.

Unlike ``repl_strings``, importing this module registers nothing and imports nothing: ``t``
registers the strings on first use, so a successful ``memchat ask`` (which says nothing of its
own) never pays for them.
"""

from __future__ import annotations

__all__ = ["t"]

_registered = False


def t(key: str, **fields: object) -> str:
    """A CLI string in the user's language (registered on first use: ``ask`` needs few)."""
    global _registered
    from memchat import i18n

    if not _registered:
        i18n.add(en=_EN, zh=_ZH)
        _registered = True
    return i18n.t(key, **fields)


_EN = {
    "cli.interrupted": "interrupted",
    "cli.persona_kept": "note: session {name!r} keeps its persona; --system only applies to a new session",
    "cli.no_question": "no question: pass it as arguments, or pipe it on stdin (or use '-')",
    "cli.no_sessions": "no sessions yet (start one: memchat chat)",
    "cli.renamed": "renamed {old!r} to {new!r}",
    "cli.forked": "forked {old!r} into {new!r} (messages: {count})",
    "cli.deleted": "deleted {name!r}",
    "cli.delete_prompt": "delete session {name!r} and its {count} messages? [y/N] ",
    "cli.delete_kept": "kept {name!r}",
    "cli.delete_refused": "refusing to delete {name!r} without confirmation: stdin is not a terminal; "
    "pass --yes to delete it",
    "cli.exported": "exported {name!r} to {path}",
    "cli.imported": "imported {name!r} ({count} messages)",
    "cli.truncated": "truncated {name!r}: kept {keep} messages, removed {removed}",
    "cli.cannot_read": "cannot read {path}: {reason}",
    "cli.cannot_write": "cannot write {path}: {reason}",
    "cli.not_utf8": "{path} is not UTF-8 text",
    "cli.database": "cannot use the database {path}: {reason}",
    "cli.col_name": "NAME",
    "cli.col_messages": "MESSAGES",
    "cli.col_model": "MODEL",
    "cli.col_updated": "UPDATED",
    "cli.col_setting": "SETTING",
    "cli.col_value": "VALUE",
    "cli.col_source": "SOURCE",
    "ctx.label.session": "session",
    "ctx.label.memory": "memory",
    "ctx.label.model": "model",
    "ctx.label.budget": "budget",
    "ctx.gauge": "{used} / {limit} tokens ({percent}%)",
    "ctx.window": "window {window} − {reserve} reserved for the reply{tools} = {limit} for messages",
    "ctx.window_tools": " − {tools} for tool schemas",
    "ctx.window_primer": " − {primer} for the chat template",
    "ctx.tokens": "{count} tokens",
    "ctx.message": "message {number}",
    "cli.image_no_prompt": "say what the image shows: memchat image 'a cat in ink wash style'",
    "cli.image_no_provider": "no image provider is configured: set MEMCHAT_IMAGE_PROVIDER=modelscope (with "
    "MODELSCOPE_API_KEY) or openai (with OPENAI_API_KEY); there is no offline image model",
    "cli.image_one_file": "-o names one file but -n asks for several images; give a directory",
    "cli.image_submitting": "submitting…",
    "cli.image_progress": "{status} · {seconds} s · task {task}",
    "ctx.kind.persona": "persona",
    "ctx.kind.date": "date",
    "ctx.kind.system": "system",
    "ctx.kind.verbatim": "verbatim",
    "ctx.kind.new": "new message",
    "ctx.kind.summary": "summary",
    "ctx.kind.pinned": "pinned",
    "ctx.kind.recall": "recalled",
    "ctx.covers": "covers messages {first}–{last}",
    "ctx.pinned": "messages {numbers}",
    "ctx.matched": "matched {matches}",
    "ctx.match": "message {number} (score {score})",
    "ctx.match_other": "{session} message {number} (score {score})",
    "ctx.omitted": "not sent verbatim: {total} older messages ({summarized} summarized, {pinned} pinned, "
    "{recalled} recalled, {dropped} left out)",
    "ctx.omitted_none": "every stored message is sent verbatim",
    "ctx.needs_summary": "messages {first}–{last} will be folded into the summary before the call",
    "ctx.note": "note: {note}",
    "ctx.empty": "(empty: no persona and no messages yet)",
}
_ZH = {
    "cli.interrupted": "已中断",
    "cli.persona_kept": "提示：会话 {name!r} 保留原有人设；--system 只作用于新建的会话",
    "cli.no_question": "没有问题：请作为参数传入，或通过标准输入管道传入（或使用 '-'）",
    "cli.no_sessions": "还没有会话（开始一个：memchat chat）",
    "cli.renamed": "已将 {old!r} 重命名为 {new!r}",
    "cli.forked": "已从 {old!r} 分叉出 {new!r}（{count} 条消息）",
    "cli.deleted": "已删除 {name!r}",
    "cli.delete_prompt": "删除会话 {name!r} 及其 {count} 条消息？[y/N] ",
    "cli.delete_kept": "保留了 {name!r}",
    "cli.delete_refused": "拒绝在未确认的情况下删除 {name!r}：标准输入不是终端；如确需删除请加 --yes",
    "cli.exported": "已将 {name!r} 导出到 {path}",
    "cli.imported": "已导入 {name!r}（{count} 条消息）",
    "cli.truncated": "已截断 {name!r}：保留 {keep} 条消息，删除 {removed} 条",
    "cli.cannot_read": "无法读取 {path}：{reason}",
    "cli.cannot_write": "无法写入 {path}：{reason}",
    "cli.not_utf8": "{path} 不是 UTF-8 文本",
    "cli.database": "无法使用数据库 {path}：{reason}",
    "cli.col_name": "名称",
    "cli.col_messages": "消息数",
    "cli.col_model": "模型",
    "cli.col_updated": "更新时间",
    "cli.col_setting": "设置",
    "cli.col_value": "值",
    "cli.col_source": "来源",
    "ctx.label.session": "会话",
    "ctx.label.memory": "记忆",
    "ctx.label.model": "模型",
    "ctx.label.budget": "预算",
    "ctx.gauge": "{used} / {limit} token（{percent}%）",
    "ctx.window": "窗口 {window} − 为回复预留 {reserve}{tools} = 消息可用 {limit}",
    "ctx.window_tools": " − 工具定义 {tools}",
    "ctx.window_primer": " − 聊天模板 {primer}",
    "ctx.tokens": "{count} token",
    "ctx.message": "第 {number} 条消息",
    "cli.image_no_prompt": "请描述图片内容：memchat image '水墨风格的猫'",
    "cli.image_no_provider": "没有配置图片服务：设置 MEMCHAT_IMAGE_PROVIDER=modelscope（和 MODELSCOPE_API_KEY）"
    "或 openai（和 OPENAI_API_KEY）；没有离线的图片模型",
    "cli.image_one_file": "-o 指定了一个文件，但 -n 要多张图片；请给一个目录",
    "cli.image_submitting": "正在提交……",
    "cli.image_progress": "{status} · {seconds} 秒 · 任务 {task}",
    "ctx.kind.persona": "角色",
    "ctx.kind.date": "日期",
    "ctx.kind.system": "系统",
    "ctx.kind.verbatim": "原文",
    "ctx.kind.new": "新消息",
    "ctx.kind.summary": "摘要",
    "ctx.kind.pinned": "置顶",
    "ctx.kind.recall": "检索",
    "ctx.covers": "涵盖第 {first}–{last} 条消息",
    "ctx.pinned": "第 {numbers} 条消息",
    "ctx.matched": "匹配 {matches}",
    "ctx.match": "第 {number} 条（得分 {score}）",
    "ctx.match_other": "{session} 第 {number} 条（得分 {score}）",
    "ctx.omitted": "未原文发送：{total} 条较早的消息（摘要 {summarized}，置顶 {pinned}，检索 {recalled}，"
    "舍弃 {dropped}）",
    "ctx.omitted_none": "所有保存的消息都原文发送",
    "ctx.needs_summary": "第 {first}–{last} 条消息将在调用前并入摘要",
    "ctx.note": "注意：{note}",
    "ctx.empty": "（空：还没有角色设定和消息）",
}
