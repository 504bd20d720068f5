// A turn being answered: the reply read from its event stream into the page as it grows (the
// whole text rendered each time; the view follows it only while the reader is at the bottom),
// its tool calls and images, and Stop. A server stopping mid-reply says so; a stream cut short
// re-attaches (or the server-down banner takes over until it can).
import { api, sseEvents } from "./api.js";
import { refreshContext } from "./context.js";
import { syncControls } from "./controls.js";
import { $, report, say, t } from "./dom.js";
import { serverDown } from "./offline.js";
import { grow, toBottom } from "./scroll.js";
import { imageNode, loadMessages, messageNode, toolNode, usedNode } from "./render.js";
import { loadSessions } from "./sidebar.js";
import { keepUsed, state } from "./state.js";

export async function follow(response, controller) {
  if (response.status === 204) return;
  state.controller = controller || new AbortController();
  state.streaming = true;
  $("stop").disabled = false;
  say(t("replying"));
  const box = $("messages");
  const div = messageNode({ role: "assistant", content: "" });
  box.appendChild(div);
  toBottom();
  const session = state.session ? state.session.id : null;
  const body = div.querySelector(".body");
  let text = "";
  let ended = false;
  let aborted = false;
  const handle = (kind, data) => {
    if (kind === "delta") {
      text += data.text;
      grow(() => window.memchatMarkdown.render(text, body));  // the whole text each time, never appended HTML
    } else if (kind === "tool_call") {
      grow(() => div.appendChild(toolNode(data.name, data.arguments)));
    } else if (kind === "tool_result") {
      const calls = div.querySelectorAll("details.toolcall");
      const pre = document.createElement("pre");
      pre.textContent = data.content;
      if (calls.length) calls[calls.length - 1].appendChild(pre);
    } else if (kind === "image") {
      grow(() => box.appendChild(imageNode(data)));
    } else if (kind === "done") {
      ended = true;
      const memories = data.memories || [];
      keepUsed(data.message_id, memories, data.recalled || 0);
      if (memories.length || data.recalled) div.querySelector(".who").appendChild(usedNode(memories, data.recalled || 0));
      say(data.status === "complete" ? "" : t("status_" + data.status));
      if (data.reason === "shutdown") {  // the server is stopping: what arrived is kept as stopped
        say(t("server_shutdown"));
        serverDown();
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
    if (e.name === "AbortError") aborted = true;
  } finally {
    state.streaming = false;
    $("stop").disabled = true;
    syncControls();
  }
  if (ended) {
    if (!state.session || state.session.id !== session) return;
    try {
      await loadMessages();
      await loadSessions();
      refreshContext();
    } catch (e) { report(e); }
  } else if (!aborted && state.session && state.session.id === session) {
    // cut short with no last word (a dropped connection, a server gone): catch up with the turn
    say(t("stream_lost"));
    reattach(session);
  }
}

// the session again from the server: what was kept, and the turn if it still runs
async function reattach(session) {
  try {
    const info = await (await api("/api/sessions/" + session)).json();
    if (!state.session || state.session.id !== session) return;
    await loadMessages();
    if (info.running) await follow(await api("/api/sessions/" + session + "/stream?after=0"), null);
    else say("");
  } catch (e) { report(e); }
}

export async function stop() {
  if (!state.session) return;
  try {
    await api("/api/sessions/" + state.session.id + "/stop", { method: "POST", body: {} });
  } catch (e) { report(e); }
}
