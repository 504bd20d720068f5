// The page's words in English and Chinese: the browser's language by default, switchable
// (kept in localStorage). Elements name their text with data-i18n, data-i18n-label (aria-label),
// data-i18n-placeholder and data-i18n-title.
"use strict";
(function () {
  const WORDS = {
    en: {
      attach_file: "Attach a file", attached_files: "Files for the next message", remove_file: "Remove {name}",
      sessions: "Sessions", new_chat: "+ New chat", search: "Search sessions", import: "Import",
      other_language: "中文", theme: "Theme", rename: "Rename", fork: "Fork", delete: "Delete", export: "Export",
      model: "Model", memory: "Memory", branches: "Branches", persona: "Persona", save_persona: "Save persona",
      context: "Context", budget: "Token budget", messages: "Messages", message: "Message",
      input: "Message (Enter sends, Shift+Enter new line, Esc stops)", send: "Send", stop: "Stop",
      regenerate: "Regenerate", edit: "Edit", copy: "Copy", tool_result: "tool result", original: "original",
      fork_n: "fork {n}", branches_label: "Branches:", tokens: "{used} / {limit} tokens",
      role_user: "you", role_assistant: "assistant", role_tool: "tool", role_system: "system",
      no_key: "no API key is configured on the server", persona_saved: "persona saved",
      new_name: "New name", confirm_delete: "Delete {name}?", edit_label: "Edit your message",
      edit_hint: "Enter saves, Shift+Enter new line, Esc cancels; the old text and its reply stay as a version",
      versions: "Versions", version_of: "version {n} of {count}", previous_version: "Previous version",
      next_version: "Next version", no_reply: "No reply yet.", stopped_kept: "stopped before a reply: your message is kept",
      sign_in: "This memchat server needs your token", imported: "imported {name}", lost: "connection lost: {why}",
      status_stopped: "stopped", status_interrupted: "interrupted", retry: "Retry", server_default: "(server default)",
      tools: "Tools", tools_builtin: "memchat’s own", tools_none: "No tools.", tools_asks: "asks first",
      memories_button: "Memories", memories_title: "What memchat remembers", close: "Close",
      memory_search: "Search memories", show_forgotten: "Show forgotten and replaced",
      memory_new: "Something to remember", memory_kind: "Kind", memory_date: "Date (of an event)",
      kind_auto: "(guess the kind)", kind_fact: "fact", kind_preference: "preference",
      kind_instruction: "instruction", kind_event: "event", add: "Add", save: "Save", cancel: "Cancel",
      forget: "Forget", restore: "Restore", undo: "Undo", history: "History", edit_memory: "Edit memory",
      learned: "learned {date}", origin_explicit: "you told it", origin_auto: "picked up in a chat",
      origin_import: "imported", on_date: "on {date}", from_session: "from “{name}”",
      session_gone: "from a deleted chat", ended_forgotten: "forgotten {date}", ended_superseded: "replaced {date}",
      ended_reverted: "reverted {date}", current: "current", forgotten_note: "Forgot “{text}”.",
      restored_note: "Restored “{text}”.", added_note: "Remembered “{text}”.", saved_note: "Saved.",
      imported_memories: "Imported {n} memories.",
      no_memories: "Nothing remembered yet. Say “remember …” in a chat, or add something here.",
      no_matches: "No memory matches.", used_memories_1: "used 1 memory", used_memories: "used {n} memories",
      recalled_turns_1: "1 earlier turn", recalled_turns: "{n} earlier turns",
      used_in_reply: "Memories used in this reply:", show_all: "Show all",
      incognito: "Incognito", incognito_hint: "Nothing is learned from this chat, and nothing is recalled into it",
      incognito_on: "incognito: nothing is learned from this chat, nothing recalled into it",
      action_edit: "Edit: {text}", action_forget: "Forget: {text}", action_restore: "Restore: {text}",
      action_history: "History of: {text}",
      new_chat_title: "New chat",
      retry_now: "Retry now", import_as: "Import", more: "More: this chat's tools", jump: "↓ Jump to latest",
      welcome_title: "What shall we talk about?",
      welcome_text: "Type a message below to start a chat. Your chats are kept in the sidebar; tell memchat to remember something and every chat will know it.",
      offline: "Cannot reach the memchat server. Retrying…",
      offline_short: "the server cannot be reached",
      back_online: "Connected to the server again.",
      theme_named: "Theme: {name}", theme_auto: "auto", theme_light: "light", theme_dark: "dark",
      no_chats: "No chats yet.", no_results: "No chats match “{q}”.",
      import_conflict: "A chat named “{name}” already exists. Import this one as:",
      server_shutdown: "The server stopped during the reply; what arrived so far is kept.",
      stream_lost: "The reply's connection was lost; reconnecting…",
      session_gone: "That chat no longer exists.", replying: "Replying…", renamed: "Renamed to “{name}”.",
    },
    zh: {
      attach_file: "附加文件", attached_files: "随下一条消息发送的文件", remove_file: "移除 {name}",
      sessions: "会话", new_chat: "+ 新对话", search: "搜索会话", import: "导入",
      other_language: "English", theme: "主题", rename: "重命名", fork: "复制", delete: "删除", export: "导出",
      model: "模型", memory: "记忆", branches: "分支", persona: "角色", save_persona: "保存角色",
      context: "上下文", budget: "token 预算", messages: "消息", message: "消息",
      input: "输入消息（Enter 发送，Shift+Enter 换行，Esc 停止）", send: "发送", stop: "停止",
      regenerate: "重新生成", edit: "编辑", copy: "复制", tool_result: "工具结果", original: "原始",
      fork_n: "副本 {n}", branches_label: "分支：", tokens: "{used} / {limit} token",
      role_user: "你", role_assistant: "助手", role_tool: "工具", role_system: "系统",
      no_key: "服务器没有配置 API 密钥", persona_saved: "角色已保存",
      new_name: "新名字", confirm_delete: "删除 {name}？", edit_label: "编辑你的消息",
      edit_hint: "Enter 保存，Shift+Enter 换行，Esc 取消；原来的文字和回复会作为版本保留",
      versions: "版本", version_of: "第 {n} 个版本，共 {count} 个", previous_version: "上一个版本",
      next_version: "下一个版本", no_reply: "还没有回复。", stopped_kept: "在回复前停止：你的消息已保留",
      sign_in: "这个 memchat 服务器需要你的 token", imported: "已导入 {name}", lost: "连接中断：{why}",
      status_stopped: "已停止", status_interrupted: "已中断", retry: "重试", server_default: "（服务器默认）",
      tools: "工具", tools_builtin: "memchat 自带", tools_none: "没有工具。", tools_asks: "先询问",
      memories_button: "长期记忆", memories_title: "memchat 记得什么", close: "关闭",
      memory_search: "搜索记忆", show_forgotten: "显示已忘记和已替换的",
      memory_new: "要记住的事", memory_kind: "类型", memory_date: "日期（事件）",
      kind_auto: "（自动判断类型）", kind_fact: "事实", kind_preference: "偏好",
      kind_instruction: "指示", kind_event: "事件", add: "添加", save: "保存", cancel: "取消",
      forget: "忘记", restore: "恢复", undo: "撤销", history: "历史", edit_memory: "编辑记忆",
      learned: "{date} 记下", origin_explicit: "你让它记的", origin_auto: "从对话中学到",
      origin_import: "导入的", on_date: "日期 {date}", from_session: "来自“{name}”",
      session_gone: "来自已删除的对话", ended_forgotten: "{date} 已忘记", ended_superseded: "{date} 已被替换",
      ended_reverted: "{date} 已还原", current: "当前", forgotten_note: "已忘记“{text}”。",
      restored_note: "已恢复“{text}”。", added_note: "已记住“{text}”。", saved_note: "已保存。",
      imported_memories: "已导入 {n} 条记忆。",
      no_memories: "还没有记住任何事。在对话里说“记住……”，或在这里添加。",
      no_matches: "没有匹配的记忆。", used_memories_1: "用了 1 条记忆", used_memories: "用了 {n} 条记忆",
      recalled_turns_1: "1 段过往对话", recalled_turns: "{n} 段过往对话",
      used_in_reply: "这条回复用到的记忆：", show_all: "显示全部",
      incognito: "无痕", incognito_hint: "不从这个对话学习，也不把记忆带进这个对话",
      incognito_on: "无痕：不从这个对话学习，也不把记忆带进来",
      action_edit: "编辑：{text}", action_forget: "忘记：{text}", action_restore: "恢复：{text}",
      action_history: "历史：{text}",
      new_chat_title: "新对话",
      retry_now: "立即重试", import_as: "导入", more: "更多：这个对话的工具", jump: "↓ 回到最新",
      welcome_title: "想聊点什么？",
      welcome_text: "在下面输入消息就能开始对话。对话保存在侧栏里；让 memchat 记住的事，每个对话都会知道。",
      offline: "连不上 memchat 服务器，正在重试…",
      offline_short: "连不上服务器",
      back_online: "已重新连上服务器。",
      theme_named: "主题：{name}", theme_auto: "自动", theme_light: "浅色", theme_dark: "深色",
      no_chats: "还没有对话。", no_results: "没有与“{q}”匹配的对话。",
      import_conflict: "已有名为“{name}”的对话。把这个导入为：",
      server_shutdown: "服务器在回复途中停止了；已收到的部分已保存。",
      stream_lost: "回复的连接断了，正在重新连接…",
      session_gone: "这个对话已经不存在了。", replying: "正在回复…", renamed: "已重命名为“{name}”。",
    },
  };

  function pick() {
    const kept = localStorage.getItem("memchat.lang");
    if (kept && WORDS[kept]) return kept;
    return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  }

  let lang = pick();

  function t(key, values) {
    let text = (WORDS[lang] && WORDS[lang][key]) || WORDS.en[key] || key;
    for (const [k, v] of Object.entries(values || {})) text = text.replace("{" + k + "}", String(v));
    return text;
  }

  function apply() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
    for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
    for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  }

  function toggle() {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("memchat.lang", lang);
    apply();
  }

  window.memchatI18n = { t, apply, toggle, get lang() { return lang; } };
})();
