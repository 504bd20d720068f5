// The conversation as page elements: messages (model output through markdown.js, as text, never
// HTML), tool calls, generated images, and the "used memories" mark of a reply.
import { api } from "./api.js";
import { $, t } from "./dom.js";
import { atBottom, toBottom } from "./scroll.js";
import { state, usedMarks } from "./state.js";

// what a message's buttons do; app.js connects them (the modules that do it import this one)
export const actions = {
  editMessage: (m) => {},  // a user message's Edit: a new branch
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
  box.dataset.session = String(state.session.id);
  if (kept === null) toBottom();
  else box.scrollTop = kept;
}

export function messageNode(m) {
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
    edit.addEventListener("click", () => actions.editMessage(m));
    who.appendChild(edit);
  }
  div.append(who, body);
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
