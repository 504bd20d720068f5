// A turn being answered: the reply read from its event stream into the page as it grows (the
// whole text rendered each time), its tool calls and images, and Stop; and the turns that make a
// new version of a point (Regenerate, an edited message), and showing another version (‹ ›).
import { api, sseEvents } from "./api.js";
import { refreshContext } from "./context.js";
import { $, say, t } from "./dom.js";
import { imageNode, loadMessages, messageNode, toolNode, usedNode } from "./render.js";
import { loadSessions } from "./sidebar.js";
import { keepUsed, state } from "./state.js";

export async function follow(response, controller) {
  if (response.status === 204) return;
  state.controller = controller || new AbortController();
  state.streaming = true;
  $("stop").disabled = false;
  say("…");
  const box = $("messages");
  for (const n of box.querySelectorAll(".noreply")) n.remove();
  const div = messageNode({ role: "assistant", content: "" });
  box.appendChild(div);
  const body = div.querySelector(".body");
  let text = "";
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
      if (data.status === "stopped" && !data.message_id) {
        div.remove();  // stopped before its first word: the question stays, with Retry under it
        say(t("stopped_kept"));
      } else {
        say(data.status === "complete" ? "" : t("status_" + data.status));
      }
    } else if (kind === "error") {
      ended = true;
      say(data.message);
    }
  };
  try {
    for await (const { id, kind, data } of sseEvents(response)) {
      if (id !== null) state.lastEvent = id;
      if (data) handle(kind, JSON.parse(data));
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

export async function stop() {
  if (!state.session) return;
  await api("/api/sessions/" + state.session.id + "/stop", { method: "POST", body: {} });
}

// Regenerate (or Retry under a question left without a reply): a new version of the last reply;
// the earlier ones stay as versions (‹ ›)
export async function regenerate() {
  if (!state.session || state.streaming) return;
  try {
    const response = await api("/api/sessions/" + state.session.id + "/retry", { method: "POST", body: {} });
    const box = $("messages");
    while (box.lastChild && !box.lastChild.classList.contains("user")) box.lastChild.remove();
    follow(response, null);
  } catch (e) { say(e.message); }
}

// a user message edited in place: its new text and reply are a new version of that point
export async function editMessage(m, text) {
  if (!state.session || state.streaming) return;
  try {
    const response = await api("/api/sessions/" + state.session.id + "/edit", {
      method: "POST", body: { message_id: m.id, text },
    });
    state.streaming = true;  // the question is stored: show it, then the reply as it comes
    await loadMessages();
    follow(response, null);
  } catch (e) {
    state.streaming = false;
    say(e.message);
  }
}

// ‹ ›: show another version of a point; the next turn continues from it
export async function chooseVersion(id, step) {
  if (!state.session || state.streaming) return;
  try {
    await api("/api/sessions/" + state.session.id + "/versions", { method: "POST", body: { message_id: id } });
    await loadMessages();
    const shown = document.querySelector('.msg[data-id="' + id + '"]');
    if (shown) {  // keep the reader (and the keyboard's focus) where they were
      shown.scrollIntoView({ block: "nearest" });
      const buttons = [...shown.querySelectorAll(".versions button")];
      const again = buttons.find((b) => b.dataset.step === step && !b.disabled) || buttons.find((b) => !b.disabled);
      if (again) again.focus();
    }
    refreshContext();
  } catch (e) { say(e.message); }
}
