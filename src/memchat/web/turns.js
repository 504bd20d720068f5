// A turn being answered: the reply read from its event stream into the page as it grows (the
// whole text rendered each time; the view follows it only while the reader is at the bottom),
// its tool calls and images, and Stop; the turns that make a new version of a point
// (Regenerate, an edited message), and showing another version (‹ ›). A server stopping
// mid-reply says so; a stream cut short re-attaches (or the server-down banner takes over).
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
  for (const n of box.querySelectorAll(".noreply")) n.remove();
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
      if (data.status === "stopped" && !data.message_id) {
        div.remove();  // stopped before its first word: the question stays, with Retry under it
        say(t("stopped_kept"));
      } else {
        say(data.status === "complete" ? "" : t("status_" + data.status));
        if (data.reason === "shutdown") {  // the server is stopping: what arrived is kept as stopped
          say(t("server_shutdown"));
          serverDown();
        }
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
    } catch (e) {
      if (e.status !== 404) report(e);
      else {  // a new chat's first turn failed: its session was removed with it; the error stays said
        state.session = null;
        state.draft = true;
        syncControls();
        await loadSessions().catch(() => {});
      }
    }
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
