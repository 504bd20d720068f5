// The page's words in English and Chinese: the browser's language by default, switchable
// (kept in localStorage). Elements name their text with data-i18n, data-i18n-label (aria-label)
// and data-i18n-placeholder.
"use strict";
(function () {
  const WORDS = {
    en: {
      sessions: "Sessions", new_chat: "+ New chat", search: "Search sessions", import: "Import",
      other_language: "中文", theme: "Theme", rename: "Rename", fork: "Fork", delete: "Delete", export: "Export",
      model: "Model", memory: "Memory", branches: "Branches", persona: "Persona", save_persona: "Save persona",
      context: "Context", budget: "Token budget", messages: "Messages", message: "Message",
      input: "Message (Enter sends, Shift+Enter new line, Esc stops)", send: "Send", stop: "Stop",
      regenerate: "Regenerate", edit: "Edit", copy: "Copy", tool_result: "tool result", original: "original",
      edit_n: "edit {n}", branches_label: "Branches:", tokens: "{used} / {limit} tokens",
      role_user: "you", role_assistant: "assistant", role_tool: "tool", role_system: "system",
      no_key: "no API key is configured on the server", persona_saved: "persona saved",
      new_name: "New name", confirm_delete: "Delete {name}?", edit_prompt: "Edit your message (a new branch keeps the old one)",
      sign_in: "This memchat server needs your token", imported: "imported {name}", lost: "connection lost: {why}",
      status_stopped: "stopped", status_interrupted: "interrupted", retry: "Retry", server_default: "(server default)",
    },
    zh: {
      sessions: "会话", new_chat: "+ 新对话", search: "搜索会话", import: "导入",
      other_language: "English", theme: "主题", rename: "重命名", fork: "复制", delete: "删除", export: "导出",
      model: "模型", memory: "记忆", branches: "分支", persona: "角色", save_persona: "保存角色",
      context: "上下文", budget: "token 预算", messages: "消息", message: "消息",
      input: "输入消息（Enter 发送，Shift+Enter 换行，Esc 停止）", send: "发送", stop: "停止",
      regenerate: "重新生成", edit: "编辑", copy: "复制", tool_result: "工具结果", original: "原始",
      edit_n: "编辑 {n}", branches_label: "分支：", tokens: "{used} / {limit} token",
      role_user: "你", role_assistant: "助手", role_tool: "工具", role_system: "系统",
      no_key: "服务器没有配置 API 密钥", persona_saved: "角色已保存",
      new_name: "新名字", confirm_delete: "删除 {name}？", edit_prompt: "编辑消息（新分支会保留原来的对话）",
      sign_in: "这个 memchat 服务器需要你的 token", imported: "已导入 {name}", lost: "连接中断：{why}",
      status_stopped: "已停止", status_interrupted: "已中断", retry: "重试", server_default: "（服务器默认）",
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
  }

  function toggle() {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("memchat.lang", lang);
    apply();
  }

  window.memchatI18n = { t, apply, toggle, get lang() { return lang; } };
})();
