// A turn being answered: the reply read from its event stream into the page as it grows (the
// whole text rendered each time), its tool calls and images, and Stop.
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
      say(data.status === "complete" ? "" : t("status_" + data.status));
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
