// The conversation as page elements: messages (model output through markdown.js, as text, never
// HTML), tool calls, generated images, the "used memories" mark of a reply, the ‹ 2/3 › of a
// message with versions, the inline editor of a user message, and Retry under a question left
// without a reply (a turn stopped before its first word).
import { filesNode } from "./attach.js";
import { api } from "./api.js";
import { $, t } from "./dom.js";
import { atBottom, toBottom } from "./scroll.js";
import { state, usedMarks } from "./state.js";

// what a message's buttons do; app.js connects them (the modules that do it import this one)
export const actions = {
  editMessage: (m, text) => {},  // a user message edited in place: a new version of that point
  chooseVersion: (id, step) => {},  // ‹ ›: show the version whose first message is ``id``
  retry: () => {},  // Retry: a new reply to the last question (kept versions stay)
  openMemories: (ids) => {},  // a reply's "used memories" mark: those memories in the panel
};

export async function loadMessages() {
  const data = await (await api("/api/sessions/" + state.session.id + "/messages")).json();
  const box = $("messages");
  // the same chat again (a reply ended): a reader who scrolled up stays where they were
  const kept = box.dataset.session === String(state.session.id) && !atBottom() ? box.scrollTop : null;
  box.replaceChildren();
  const images = data.images.slice().sort((a, b) => a.after - b.after);
  for (const m of data.messages) {
    if (m.status === "streaming") continue;
    while (images.length && images[0].after < m.seq) box.appendChild(imageNode(images.shift()));
    box.appendChild(messageNode(m));
  }
  for (const im of images) box.appendChild(imageNode(im));
  const settled = data.messages.filter((m) => m.status !== "streaming");
  const last = settled[settled.length - 1];
  if (last && last.role === "user" && !state.streaming) box.appendChild(noReplyNode());
  box.dataset.session = String(state.session.id);
  if (kept === null) toBottom();
  else box.scrollTop = kept;
}

// under a question left without a reply (stopped before its first word): one click asks again
export function noReplyNode() {
  const div = document.createElement("div");
  div.className = "msg noreply";
  const text = document.createElement("span");
  text.textContent = t("no_reply");
  const again = document.createElement("button");
  again.type = "button";
  again.className = "edit";
  again.textContent = t("retry");
  again.addEventListener("click", () => actions.retry());
  div.append(text, again);
  return div;
}

// ‹ 2/3 ›: the versions of the point this message begins (a regenerated reply, an edited message)
function versionsNode(v) {
  const nav = document.createElement("span");
  nav.className = "versions";
  nav.setAttribute("role", "group");
  nav.setAttribute("aria-label", t("versions"));
  const step = (label, key, target) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.setAttribute("aria-label", t(key));
    b.title = t(key);
    b.dataset.step = key;
    b.disabled = target === undefined;
    if (target !== undefined) b.addEventListener("click", () => actions.chooseVersion(target, key));
    return b;
  };
  const count = document.createElement("span");
  count.className = "count";
  count.textContent = v.number + "/" + v.count;
  count.title = t("version_of", { n: v.number, count: v.count });
  nav.append(step("‹", "previous_version", v.ids[v.number - 2]), count, step("›", "next_version", v.ids[v.number]));
  return nav;
}

// the inline editor of a user message: as the composer, Enter saves, Shift+Enter is a new line,
// Esc cancels, and Enter while an IME is composing never saves
function startEditing(div, m) {
  if (state.streaming || div.querySelector(".editor")) return;
  const body = div.querySelector(".body");
  const editor = document.createElement("form");
  editor.className = "editor";
  const area = document.createElement("textarea");
  area.value = m.content;
  area.rows = Math.min(12, Math.max(2, m.content.split("\n").length + 1));
  area.setAttribute("aria-label", t("edit_label"));
  area.title = t("edit_hint");
  const save = document.createElement("button");
  save.type = "submit";
  save.textContent = t("save");
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.textContent = t("cancel");
  const row = document.createElement("div");
  row.className = "editor-actions";
  row.append(save, cancel);
  editor.append(area, row);
  const close = () => { editor.remove(); body.hidden = false; };
  cancel.addEventListener("click", close);
  area.addEventListener("keydown", (event) => {
    if (event.isComposing || event.keyCode === 229) return;
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      editor.requestSubmit();
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      close();
    }
  });
  editor.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = area.value;
    if (!text.trim() || text === m.content) { close(); return; }
    close();
    actions.editMessage(m, text);
  });
  body.hidden = true;
  body.after(editor);
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}

export function messageNode(m) {
  const div = document.createElement("div");
  div.className = "msg " + m.role;
  if (m.id) div.dataset.id = String(m.id);  // a search result opens the session at it
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
  if (m.versions) who.appendChild(versionsNode(m.versions));
  if (m.role === "user" && m.id) {
    const edit = document.createElement("button");
    edit.type = "button";
    edit.className = "edit";
    edit.textContent = t("edit");
    edit.addEventListener("click", () => startEditing(div, m));
    who.appendChild(edit);
  }
  div.append(who, body);
  if (m.attachments && m.attachments.length) div.appendChild(filesNode(m.attachments));
  for (const call of m.tool_calls || []) div.appendChild(toolNode(call.function.name, call.function.arguments));
  return div;
}

export function toolNode(name, args, result) {
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

export function imageNode(im) {
  const div = document.createElement("div");
  div.className = "msg image";
  const img = document.createElement("img");
  img.src = im.url;
  img.alt = im.prompt;
  div.appendChild(img);
  return div;
}

export function usedNode(memories, recalled) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "used";
  const parts = [];
  if (memories.length) parts.push(memories.length === 1 ? t("used_memories_1") : t("used_memories", { n: memories.length }));
  if (recalled) parts.push(recalled === 1 ? t("recalled_turns_1") : t("recalled_turns", { n: recalled }));
  b.textContent = parts.join(" · ");
  b.dataset.memories = memories.join(",");
  b.addEventListener("click", () => {
    if (memories.length) actions.openMemories(memories);
    else { $("context-panel").open = true; $("context-panel").scrollIntoView(); }
  });
  return b;
}
