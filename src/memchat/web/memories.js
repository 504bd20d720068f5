// The "What memchat remembers" panel: the long-term memories of the user — search, add, edit,
// forget (with Undo), restore, history, import and export — and the memories a reply used.
import { api } from "./api.js";
import { $, t } from "./dom.js";
import { openSession } from "./sessions.js";

const mem = { only: null, undo: null };

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

export async function loadMemories() {
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

export function openMemories(only) {
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
    const response = await api("/api/memories/import", {
      method: "POST", text: await file.text(), type: "application/x-ndjson",
    });
    const data = await response.json();
    memSay(t("imported_memories", { n: data.imported }));
    await loadMemories();
  } catch (e) { memSay(e.message); }
  $("memory-import").value = "";
}

export function wireMemories() {
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
}
