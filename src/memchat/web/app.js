// The memchat page: it uses only the HTTP API (/api), reads turns as Server-Sent Events over
// fetch (EventSource cannot POST), and re-attaches to a reply still being generated after a
// reload. No framework, no CDN; model output is rendered by markdown.js as text, never HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const t = (key, values) => window.memchatI18n.t(key, values);
  const state = { session: null, sessions: [], controller: null, lastEvent: 0, streaming: false };

  async function api(path, options = {}) {
    const init = { credentials: "same-origin", ...options };
    if (options.body !== undefined) {
      init.headers = { "Content-Type": "application/json", ...(options.headers || {}) };
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(path, init);
    if (!response.ok && response.status !== 204) {
      let message = response.statusText;
      try {
        message = (await response.json()).error.message;
      } catch (_) { /* not JSON */ }
      throw new Error(message);
    }
    return response;
  }

  const say = (text) => { $("status").textContent = text || ""; };

  // -- sessions ----------------------------------------------------------------------------------

  async function loadSessions() {
    const q = $("search").value.trim();
    const data = await (await api("/api/sessions" + (q ? "?q=" + encodeURIComponent(q) : ""))).json();
    state.sessions = data.sessions;
    const list = $("sessions");
    list.replaceChildren();
    for (const s of data.sessions) {
      const li = document.createElement("li");
      li.textContent = s.name;
      li.title = s.name;
      li.dataset.id = s.id;
      if (state.session && s.id === state.session.id) li.className = "current";
      li.addEventListener("click", () => { $("sidebar").classList.remove("open"); openSession(s.id); });
      list.appendChild(li);
    }
  }

  async function openSession(id) {
    if (state.controller) state.controller.abort();  // leave the old stream; its turn goes on
    const info = await (await api("/api/sessions/" + id)).json();
    state.session = info;
    showIncognito();
    localStorage.setItem("memchat.session", String(id));
    $("title").textContent = info.name;
    $("persona").value = info.persona || "";
    $("memory").value = info.memory;
    if (info.model) ensureOption($("model"), info.model);
    $("model").value = info.model || $("model").dataset.default || "";
    $("export").href = "/api/sessions/" + id + "/export";
    await loadMessages();
    await loadSessions();
    await loadBranches();
    refreshContext();
    if (info.running) follow(await api("/api/sessions/" + id + "/stream?after=0"), null);
  }

  async function loadMessages() {
    const data = await (await api("/api/sessions/" + state.session.id + "/messages")).json();
    const box = $("messages");
    box.replaceChildren();
    const images = data.images.slice().sort((a, b) => a.after - b.after);
    for (const m of data.messages) {
      if (m.status === "streaming") continue;
      while (images.length && images[0].after < m.seq) box.appendChild(imageNode(images.shift()));
      box.appendChild(messageNode(m));
    }
    for (const im of images) box.appendChild(imageNode(im));
    box.scrollTop = box.scrollHeight;
  }

  async function loadBranches() {
    const nav = $("branches");
    nav.replaceChildren();
    const data = await (await api("/api/sessions/" + state.session.id + "/branches")).json();
    if (data.sessions.length < 2) return;
    nav.appendChild(document.createTextNode(t("branches_label")));
    data.sessions.forEach((s, k) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = k === 0 ? t("original") : t("edit_n", { n: k });
      b.title = s.name;
      if (s.id === state.session.id) b.className = "current";
      b.addEventListener("click", () => openSession(s.id));
      nav.appendChild(b);
    });
  }

  async function editMessage(m) {
    if (state.streaming) return;
    const text = prompt(t("edit_prompt"), m.content);
    if (!text || !text.trim()) return;
    try {
      const response = await api("/api/sessions/" + state.session.id + "/edit", {
        method: "POST", body: { message_id: m.id, text },
      });
      const branch = Number(response.headers.get("X-Memchat-Session-Id"));
      const info = await (await api("/api/sessions/" + branch)).json();
      state.session = info;
      showIncognito();
      $("title").textContent = info.name;
      await loadMessages();
      $("messages").appendChild(messageNode({ role: "user", content: text }));
      await loadBranches();
      await loadSessions();
      follow(response, null);
    } catch (e) { say(e.message); }
  }

  function messageNode(m) {
    const div = document.createElement("div");
    div.className = "msg " + m.role;
    const who = document.createElement("div");
    who.className = "who";
    who.textContent = t("role_" + m.role);
    if (m.status && m.status !== "complete") {
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.textContent = "[" + t("status_" + m.status) + "]";
      mark.dataset.status = m.status;
      who.appendChild(mark);
      if (m.status === "interrupted" && m.role === "assistant") {
        const again = document.createElement("button");  // a reply cut short (a crash, a lost stream)
        again.type = "button";
        again.className = "edit";
        again.textContent = t("retry");
        again.addEventListener("click", () => $("regenerate").click());
        who.appendChild(again);
      }
    }
    const body = document.createElement("div");
    body.className = "body";
    if (m.role === "tool") {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = t("tool_result");
      const pre = document.createElement("pre");
      pre.textContent = m.content;
      details.append(summary, pre);
      body.appendChild(details);
    } else {
      window.memchatMarkdown.render(m.content, body);
    }
    const used = m.role === "assistant" && m.id ? usedMarks()[m.id] : null;
    if (used) who.appendChild(usedNode(used.m || [], used.r || 0));
    if (m.role === "user" && m.id) {
      const edit = document.createElement("button");
      edit.type = "button";
      edit.className = "edit";
      edit.textContent = t("edit");
      edit.addEventListener("click", () => editMessage(m));
      who.appendChild(edit);
    }
    div.append(who, body);
    for (const call of m.tool_calls || []) div.appendChild(toolNode(call.function.name, call.function.arguments));
    return div;
  }

  function toolNode(name, args, result) {
    const details = document.createElement("details");
    details.className = "toolcall";
    const summary = document.createElement("summary");
    summary.textContent = "→ " + name + "(" + args + ")";
    details.appendChild(summary);
    if (result !== undefined) {
      const pre = document.createElement("pre");
      pre.textContent = result;
      details.appendChild(pre);
    }
    return details;
  }

  function imageNode(im) {
    const div = document.createElement("div");
    div.className = "msg image";
    const img = document.createElement("img");
    img.src = im.url;
    img.alt = im.prompt;
    div.appendChild(img);
    return div;
  }

  // -- turns -------------------------------------------------------------------------------------

  async function send(text) {
    if (!state.session) await newSession();
    const box = $("messages");
    box.appendChild(messageNode({ role: "user", content: text }));
    const controller = new AbortController();
    let response;
    try {
      response = await api("/api/sessions/" + state.session.id + "/turns", {
        method: "POST", body: { text }, signal: controller.signal,
      });
    } catch (e) {
      say(e.message);
      box.lastChild.remove();
      return false;
    }
    follow(response, controller);
    return true;
  }

  async function follow(response, controller) {
    if (response.status === 204) return;
    state.controller = controller || new AbortController();
    state.streaming = true;
    $("stop").disabled = false;
    say("…");
    const box = $("messages");
    const div = messageNode({ role: "assistant", content: "" });
    box.appendChild(div);
    const body = div.querySelector(".body");
    let text = "";
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let ended = false;
    const handle = (kind, data) => {
      if (kind === "delta") {
        text += data.text;
        window.memchatMarkdown.render(text, body);  // the whole text each time, never appended HTML
        box.scrollTop = box.scrollHeight;
      } else if (kind === "tool_call") {
        div.appendChild(toolNode(data.name, data.arguments));
      } else if (kind === "tool_result") {
        const calls = div.querySelectorAll("details.toolcall");
        const pre = document.createElement("pre");
        pre.textContent = data.content;
        if (calls.length) calls[calls.length - 1].appendChild(pre);
      } else if (kind === "image") {
        box.appendChild(imageNode(data));
      } else if (kind === "done") {
        ended = true;
        const memories = data.memories || [];
        keepUsed(data.message_id, memories, data.recalled || 0);
        if (memories.length || data.recalled) div.querySelector(".who").appendChild(usedNode(memories, data.recalled || 0));
        say(data.status === "complete" ? "" : t("status_" + data.status));
      } else if (kind === "error") {
        ended = true;
        say(data.message);
      }
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let kind = "message";
          let data = "";
          for (const line of frame.split("\n")) {
            if (line.startsWith("id: ")) state.lastEvent = Number(line.slice(4));
            else if (line.startsWith("event: ")) kind = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) handle(kind, JSON.parse(data));
        }
      }
    } catch (e) {
      if (e.name !== "AbortError") say(t("lost", { why: e.message }));
    } finally {
      state.streaming = false;
      $("stop").disabled = true;
      if (ended) {
        await loadMessages();
        await loadSessions();
        refreshContext();
      }
    }
  }

  async function stop() {
    if (!state.session) return;
    await api("/api/sessions/" + state.session.id + "/stop", { method: "POST", body: {} });
  }

  async function newSession() {
    const info = await (await api("/api/sessions", { method: "POST", body: {} })).json();
    await openSession(info.id);
  }

  async function refreshContext() {
    if (!state.session) return;
    try {
      const view = await (await api("/api/sessions/" + state.session.id + "/context")).json();
      const b = view.budget;
      const percent = b.limit ? Math.min(100, Math.round((100 * b.used) / b.limit)) : 100;
      $("gauge-fill").style.width = percent + "%";
      $("gauge-text").textContent = t("tokens", { used: b.used, limit: b.limit });
      const chosen = [];  // what long-term memory brought, and why
      for (const section of view.sections || []) {
        for (const item of section.items || []) {
          const what = item.kind === "memory" ? "memory #" + item.memory_id : (item.session || "") + " #" + item.seq;
          chosen.push("· " + what + " · " + item.tokens + (item.why ? " · " + item.why : "") + "\n  " + item.text);
        }
      }
      const entries = view.entries.map((e) => "[" + e.index + "] " + e.role + " · " + e.kind + " · " + e.tokens + "\n" + e.content);
      $("context").textContent = (chosen.length ? chosen.join("\n") + "\n\n" : "") + entries.join("\n\n");
    } catch (e) {
      $("gauge-text").textContent = e.message;
    }
  }

  // -- long-term memories: "What memchat remembers" ---------------------------------------------

  const mem = { only: null, undo: null };
  const USED = "memchat.used";  // message id → {m: memory ids, r: earlier turns} (the page's marks)

  function usedMarks() {
    try { return JSON.parse(localStorage.getItem(USED) || "{}") || {}; } catch (_) { return {}; }
  }

  function keepUsed(messageId, memories, recalled) {
    if (!messageId || (!memories.length && !recalled)) return;
    const marks = usedMarks();
    marks[messageId] = { m: memories, r: recalled };
    const ids = Object.keys(marks);
    for (const old of ids.slice(0, Math.max(0, ids.length - 500))) delete marks[old];
    localStorage.setItem(USED, JSON.stringify(marks));
  }

  function usedNode(memories, recalled) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "used";
    const parts = [];
    if (memories.length) parts.push(memories.length === 1 ? t("used_memories_1") : t("used_memories", { n: memories.length }));
    if (recalled) parts.push(recalled === 1 ? t("recalled_turns_1") : t("recalled_turns", { n: recalled }));
    b.textContent = parts.join(" · ");
    b.dataset.memories = memories.join(",");
    b.addEventListener("click", () => {
      if (memories.length) openMemories(memories);
      else { $("context-panel").open = true; $("context-panel").scrollIntoView(); }
    });
    return b;
  }

  function day(value) {
    if (!value) return "";
    const locale = window.memchatI18n.lang === "zh" ? "zh-CN" : "en";
    const options = { year: "numeric", month: "short", day: "numeric" };
    const parts = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);  // a date alone: that day, wherever we are
    const when = parts ? new Date(Number(parts[1]), Number(parts[2]) - 1, Number(parts[3])) : new Date(value);
    return isNaN(when) ? value : when.toLocaleDateString(locale, options);
  }

  function short(text) {
    return text.length > 60 ? text.slice(0, 59) + "…" : text;
  }

  function memSay(text, undo) {
    const box = $("memory-status");
    box.replaceChildren(document.createTextNode(text || ""));
    mem.undo = undo || null;
    if (undo) {
      const b = document.createElement("button");
      b.type = "button";
      b.id = "memory-undo";
      b.textContent = t("undo");
      b.addEventListener("click", undo);
      box.append(" ", b);
      b.focus();
    }
  }

  function memButton(label, aria, action) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = t(label);
    b.className = label;
    b.setAttribute("aria-label", aria);
    b.addEventListener("click", action);
    return b;
  }

  function memoryNode(m) {
    const li = document.createElement("li");
    li.className = "memory" + (m.active ? "" : " ended");
    li.dataset.id = m.id;
    const top = document.createElement("div");
    top.className = "mem-top";
    const kind = document.createElement("span");
    kind.className = "kind kind-" + m.kind;
    kind.textContent = t("kind_" + m.kind);
    const text = document.createElement("span");
    text.className = "mem-text";
    text.textContent = m.content;
    top.append(kind, " ", text);
    const meta = document.createElement("div");
    meta.className = "mem-meta";
    const bits = [t("learned", { date: day(m.created) }) + " · " + t("origin_" + m.origin)];
    if (m.event_date) bits.push(t("on_date", { date: day(m.event_date) }));
    if (m.ended) bits.push(t("ended_" + m.end_reason, { date: day(m.ended) }));
    meta.append(bits.join(" · "));
    if (m.session_id !== null && m.session_exists) {
      const source = document.createElement("button");
      source.type = "button";
      source.className = "link source";
      source.textContent = t("from_session", { name: m.session || "#" + m.session_id });
      source.addEventListener("click", () => { $("memories-panel").close(); openSession(m.session_id); });
      meta.append(" · ", source);
    } else if (m.session_id !== null) {
      meta.append(" · " + t("session_gone"));
    }
    const actions = document.createElement("div");
    actions.className = "mem-actions";
    if (m.active) {
      actions.append(
        memButton("edit", t("action_edit", { text: short(m.content) }), () => editMemory(li, m)),
        memButton("forget", t("action_forget", { text: short(m.content) }), () => forgetMemory(m)),
      );
    } else {
      actions.append(memButton("restore", t("action_restore", { text: short(m.content) }), () => restoreMemory(m)));
    }
    actions.append(memButton("history", t("action_history", { text: short(m.content) }), () => showHistory(li, m)));
    li.append(top, meta, actions);
    return li;
  }

  async function loadMemories() {
    const list = $("memory-list");
    let found;
    try {
      if (mem.only) {
        found = [];
        for (const id of mem.only) {
          try { found.push(await (await api("/api/memories/" + id)).json()); } catch (_) { /* gone */ }
        }
      } else {
        const q = $("memory-search").value.trim();
        const query = new URLSearchParams();
        if (q) query.set("q", q);
        if ($("memory-all").checked) query.set("all", "true");
        found = (await (await api("/api/memories?" + query)).json()).memories;
      }
    } catch (e) { memSay(e.message); return; }
    $("memory-filter").hidden = !mem.only;
    $("memory-filter-text").textContent = mem.only ? t("used_in_reply") : "";
    list.replaceChildren(...found.map(memoryNode));
    if (!found.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = $("memory-search").value.trim() ? t("no_matches") : t("no_memories");
      list.appendChild(li);
    }
  }

  function openMemories(only) {
    mem.only = only && only.length ? only : null;
    const panel = $("memories-panel");
    if (!panel.open) panel.showModal();
    memSay("");
    loadMemories();
    (mem.only ? $("memory-filter-clear") : $("memory-search")).focus();
  }

  function editMemory(li, m) {
    const text = li.querySelector(".mem-text");
    const area = document.createElement("textarea");
    area.className = "mem-edit";
    area.rows = 2;
    area.maxLength = 2000;
    area.value = m.content;
    area.setAttribute("aria-label", t("edit_memory"));
    const save = memButton("save", t("save"), async () => {
      const value = area.value.trim();
      if (!value) return;
      try {
        await api("/api/memories/" + m.id, { method: "PATCH", body: { text: value } });
        memSay(t("saved_note"));
        await loadMemories();
      } catch (e) { memSay(e.message); }
    });
    const cancel = memButton("cancel", t("cancel"), () => { loadMemories(); });
    area.addEventListener("keydown", (event) => {
      if (event.isComposing || event.keyCode === 229) return;
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); save.click(); }
      else if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); cancel.click(); }
    });
    const form = document.createElement("div");
    form.className = "mem-editing";
    form.append(area, save, cancel);
    text.replaceWith(form);
    li.querySelector(".mem-actions").hidden = true;
    area.focus();
  }

  async function forgetMemory(m) {
    try {
      await api("/api/memories/" + m.id, { method: "DELETE" });
    } catch (e) { memSay(e.message); return; }
    await loadMemories();
    memSay(t("forgotten_note", { text: short(m.content) }), () => restoreMemory(m));
  }

  async function restoreMemory(m) {
    try {
      await api("/api/memories/" + m.id + "/restore", { method: "POST", body: {} });
    } catch (e) { memSay(e.message); return; }
    memSay(t("restored_note", { text: short(m.content) }));
    await loadMemories();
  }

  async function showHistory(li, m) {
    const open = li.querySelector(".mem-history");
    if (open) { open.remove(); return; }
    try {
      const detail = await (await api("/api/memories/" + m.id)).json();
      const ol = document.createElement("ol");
      ol.className = "mem-history";
      for (const v of detail.history) {
        const item = document.createElement("li");
        const when = t("learned", { date: day(v.created) }) + (v.ended ? " · " + t("ended_" + v.end_reason, { date: day(v.ended) }) : " · " + t("current"));
        item.textContent = v.content + " — " + when;
        if (!v.active && v.id !== m.id) {
          item.append(" ", memButton("restore", t("action_restore", { text: short(v.content) }), () => restoreMemory(v)));
        }
        ol.appendChild(item);
      }
      li.appendChild(ol);
    } catch (e) { memSay(e.message); }
  }

  async function addMemory(event) {
    event.preventDefault();
    const text = $("memory-text").value.trim();
    if (!text) return;
    const body = { text };
    if ($("memory-kind").value) body.kind = $("memory-kind").value;
    if ($("memory-date").value) body.date = $("memory-date").value;
    try {
      const made = await (await api("/api/memories", { method: "POST", body })).json();
      $("memory-text").value = "";
      $("memory-date").value = "";
      $("memory-kind").value = "";
      mem.only = null;
      $("memory-search").value = "";
      await loadMemories();
      memSay(t("added_note", { text: short(made.content) }));
    } catch (e) { memSay(e.message); }
  }

  async function importMemories() {
    const file = $("memory-import").files[0];
    if (!file) return;
    try {
      const response = await fetch("/api/memories/import", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/x-ndjson" }, body: await file.text(),
      });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error.message);
      memSay(t("imported_memories", { n: data.imported }));
      await loadMemories();
    } catch (e) { memSay(e.message); }
    $("memory-import").value = "";
  }

  function wireMemories() {
    $("memories-open").addEventListener("click", () => openMemories(null));
    $("memories-close").addEventListener("click", () => $("memories-panel").close());
    $("memory-add").addEventListener("submit", addMemory);
    let typing = null;
    $("memory-search").addEventListener("input", () => {
      clearTimeout(typing);
      mem.only = null;
      typing = setTimeout(loadMemories, 150);
    });
    $("memory-all").addEventListener("change", () => { mem.only = null; loadMemories(); });
    $("memory-filter-clear").addEventListener("click", () => { mem.only = null; loadMemories(); $("memory-search").focus(); });
    $("memory-import").addEventListener("change", importMemories);
    $("incognito").addEventListener("change", async () => {
      const on = $("incognito").checked;
      try {
        if (!state.session) await newSession();
        state.session = await (await api("/api/sessions/" + state.session.id, { method: "PATCH", body: { incognito: on } })).json();
        showIncognito();
        refreshContext();
      } catch (e) { say(e.message); $("incognito").checked = !on; }
    });
  }

  function showIncognito() {
    const on = Boolean(state.session && state.session.incognito);
    $("incognito").checked = on;
    document.body.classList.toggle("incognito", on);
    $("title").title = on ? t("incognito_on") : "";
  }

  // -- wiring ------------------------------------------------------------------------------------

  function wire() {
    const input = $("input");
    input.addEventListener("keydown", (event) => {
      // IME composition (Chinese, Japanese…): Enter picks a candidate, it never sends
      if (event.isComposing || event.keyCode === 229) return;
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        $("composer").requestSubmit();
      } else if (event.key === "Escape") {
        stop();
      }
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && state.streaming) stop();
    });
    $("composer").addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = input.value;
      if (!text.trim() || state.streaming) return;
      input.value = "";
      if (text.startsWith("/image ")) {  // like the REPL: generate an image into this session
        if (!state.session) await newSession();
        say("…");
        try {
          await api("/api/sessions/" + state.session.id + "/images", { method: "POST", body: { prompt: text.slice(7).trim() } });
          say("");
          await loadMessages();
        } catch (e) {
          say(e.message);
          input.value = text;
        }
        return;
      }
      if (!(await send(text))) input.value = text;
    });
    $("stop").addEventListener("click", stop);
    $("regenerate").addEventListener("click", async () => {
      if (!state.session || state.streaming) return;
      try {
        const response = await api("/api/sessions/" + state.session.id + "/retry", { method: "POST", body: {} });
        const box = $("messages");
        while (box.lastChild && !box.lastChild.classList.contains("user")) box.lastChild.remove();
        follow(response, null);
      } catch (e) { say(e.message); }
    });
    $("new-session").addEventListener("click", newSession);
    $("search").addEventListener("input", loadSessions);
    $("rename").addEventListener("click", async () => {
      if (!state.session) return;
      const name = prompt(t("new_name"), state.session.name);
      if (!name) return;
      try {
        await api("/api/sessions/" + state.session.id, { method: "PATCH", body: { name } });
        await openSession(state.session.id);
      } catch (e) { say(e.message); }
    });
    $("fork").addEventListener("click", async () => {
      if (!state.session) return;
      const info = await (await api("/api/sessions/" + state.session.id + "/fork", { method: "POST", body: {} })).json();
      await openSession(info.id);
    });
    $("delete").addEventListener("click", async () => {
      if (!state.session || !confirm(t("confirm_delete", { name: state.session.name }))) return;
      await api("/api/sessions/" + state.session.id, { method: "DELETE" });
      state.session = null;
      showIncognito();
      localStorage.removeItem("memchat.session");
      $("messages").replaceChildren();
      $("title").textContent = "memchat";
      await loadSessions();
    });
    $("save-persona").addEventListener("click", async () => {
      if (!state.session) return;
      await api("/api/sessions/" + state.session.id, { method: "PATCH", body: { persona: $("persona").value } });
      say(t("persona_saved"));
      refreshContext();
    });
    $("memory").addEventListener("change", async () => {
      if (!state.session) return;
      await api("/api/sessions/" + state.session.id, { method: "PATCH", body: { memory: $("memory").value } });
      refreshContext();
    });
    $("context-panel").addEventListener("toggle", refreshContext);
    wireMemories();
    $("model").addEventListener("change", async () => {
      if (!state.session) return;
      await api("/api/sessions/" + state.session.id, { method: "PATCH", body: { model: $("model").value } });
      refreshContext();
    });
    $("import").addEventListener("change", async () => {
      const file = $("import").files[0];
      if (!file) return;
      try {
        const info = await (await api("/api/sessions/import", { method: "POST", body: { text: await file.text() } })).json();
        await openSession(info.id);
        say(t("imported", { name: info.name }));
      } catch (e) { say(e.message); }
      $("import").value = "";
    });
  }

  function ensureOption(select, value, label) {
    if ([...select.options].some((o) => o.value === value)) return;
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label || value;
    select.appendChild(option);
  }

  async function signIn() {
    // a server with accounts: trade the token for an HttpOnly cookie (script never keeps it)
    for (;;) {
      const token = prompt(t("sign_in"));
      if (!token) throw new Error("not signed in");
      try {
        await api("/api/login", { method: "POST", body: { token } });
        return;
      } catch (e) { say(e.message); }
    }
  }

  function theme(step) {
    const order = ["auto", "light", "dark"];
    let current = localStorage.getItem("memchat.theme") || "auto";
    if (step) current = order[(order.indexOf(current) + 1) % order.length];
    localStorage.setItem("memchat.theme", current);
    if (current === "auto") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = current;
  }

  async function start() {
    window.memchatI18n.apply();
    theme(false);
    $("lang").addEventListener("click", () => {
      window.memchatI18n.toggle();
      if (state.session) loadMessages().then(loadBranches);
      if ($("memories-panel").open) loadMemories();
    });
    $("theme").addEventListener("click", () => theme(true));
    $("menu").addEventListener("click", () => $("sidebar").classList.toggle("open"));
    wire();
    const probe = await fetch("/api/models", { credentials: "same-origin" });
    if (probe.status === 401) await signIn();
    const models = await (await api("/api/models")).json();
    $("model").dataset.default = models.default || "";
    if (!models.default) ensureOption($("model"), "", t("server_default"));
    for (const m of models.models) ensureOption($("model"), m);
    if (models.default) ensureOption($("model"), models.default);
    for (const s of models.strategies) {
      const option = document.createElement("option");
      option.value = option.textContent = s;
      $("memory").appendChild(option);
    }
    if (!models.key_configured) say(t("no_key"));
    await loadSessions();
    const remembered = Number(localStorage.getItem("memchat.session"));
    const known = state.sessions.find((s) => s.id === remembered) || state.sessions[0];
    if (known) await openSession(known.id);
  }

  document.addEventListener("DOMContentLoaded", () => { start().catch((e) => say(e.message)); });
})();
