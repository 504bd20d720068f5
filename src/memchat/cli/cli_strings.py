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
}
