// The open session: opening and making one, closing it (no chat open: the welcome), its branches
// (its forks), and the header's tools (fork, delete, model, memory strategy, incognito) and
// persona. Rename is rename.js.
// A new chat is not stored until its first message (no empty sessions): "+ New chat" clears the
// page; the persona, model, memory and incognito chosen meanwhile go with the first message
// (firstTurn: POST /api/sessions/turns makes the session with it).
import { api } from "./api.js";
import { refreshContext } from "./context.js";
import { syncControls } from "./controls.js";
import { $, ensureOption, guarded, report, say, t } from "./dom.js";
import { endRename, wireRename } from "./rename.js";
import { loadMessages } from "./render.js";
import { loadSessions } from "./sidebar.js";
import { state } from "./state.js";
import { follow } from "./turns.js";

export async function openSession(id, messageId) {
  if (state.controller) state.controller.abort();  // leave the old stream; its turn goes on
  let info;
  try {
    info = await (await api("/api/sessions/" + id)).json();
  } catch (e) {
    if (e.status !== 404) throw e;
    closeSession();  // gone (deleted elsewhere): say so, and show what there is
    say(t("session_gone"));
    await loadSessions();
    return;
  }
  endRename();
  state.session = info;
  state.draft = false;
  showIncognito();
  localStorage.setItem("memchat.session", String(id));
  $("title").textContent = info.title || info.name;
  $("persona").value = info.persona || "";
  $("memory").value = info.memory;
  if (info.model) ensureOption($("model"), info.model);
  $("model").value = info.model || $("model").dataset.default || "";
  syncControls();
  await loadMessages();
  if (messageId) showMessage(messageId);
  await loadSessions();
  await loadBranches();
  refreshContext();
  if (info.running) follow(await api("/api/sessions/" + id + "/stream?after=0"), null);
}

// no chat open: nothing of the last one is left (title, branches, gauge, persona, Export), the
// welcome shows, and the actions that need a chat are disabled
export function closeSession() {
  if (state.controller) state.controller.abort();
  endRename();
  state.session = null;
  state.draft = false;
  localStorage.removeItem("memchat.session");
  showIncognito();
  $("messages").replaceChildren();
  delete $("messages").dataset.session;
  $("branches").replaceChildren();
  $("title").textContent = "memchat";
  $("persona").value = "";
  $("context").textContent = "";
  $("gauge-text").textContent = "";
  $("gauge-fill").style.width = "0";
  $("gauge").setAttribute("aria-valuenow", "0");
  $("model").value = $("model").dataset.default || "";
  for (const b of $("sessions").querySelectorAll("[aria-current]")) b.removeAttribute("aria-current");
  for (const li of $("sessions").querySelectorAll("li.current")) li.classList.remove("current");
  syncControls();
}

// a message found by the sidebar's search: scrolled to and marked a moment
function showMessage(messageId) {
  const node = $("messages").querySelector('.msg[data-id="' + Number(messageId) + '"]');
  if (!node) return;
  node.scrollIntoView({ block: "center" });
  node.classList.add("found");
  setTimeout(() => node.classList.remove("found"), 2500);
}

// "+ New chat": an empty page (nothing of the last chat left); nothing is stored until the first
// message (firstTurn)
export async function newSession() {
  closeSession();
  state.draft = true;
  syncControls();
  $("title").textContent = t("new_chat_title");
  $("memory").value = "auto";
  await loadSessions();
  $("input").focus();
}

// the first message of a new chat: the session is made with it (and removed again if the turn
// fails); the turn's stream is returned for follow()
export async function firstTurn(text, signal, attachments = []) {
  const model = $("model").value;
  const body = {
    text,
    attachments,
    persona: $("persona").value.trim() ? $("persona").value : null,
    memory: $("memory").value || null,
    model: model && model !== $("model").dataset.default ? model : null,
    incognito: $("incognito").checked,
  };
  const response = await api("/api/sessions/turns", { method: "POST", body, signal });
  const id = Number(response.headers.get("X-Memchat-Session-Id"));
  state.session = { id, name: "", title: null, incognito: body.incognito };
  state.draft = false;
  localStorage.setItem("memchat.session", String(id));
  $("export").href = "/api/sessions/" + id + "/export";
  syncControls();
  api("/api/sessions/" + id).then((r) => r.json()).then((info) => {
    if (!state.session || state.session.id !== id) return;
    state.session = info;
    $("title").textContent = info.title || info.name;
    syncControls();
    loadSessions();
  }).catch(() => {});
  return response;
}

// a stored session for what is not a message (an image in a new chat): made now, with the
// persona chosen; whether it was made for this (the caller removes it if nothing came of it)
export async function storedSession() {
  if (state.session) return false;
  const persona = $("persona").value.trim() ? $("persona").value : null;
  const info = await (await api("/api/sessions", { method: "POST", body: { persona } })).json();
  await openSession(info.id);
  return true;
}

export async function loadBranches() {
  const nav = $("branches");
  const id = state.session.id;
  const data = await (await api("/api/sessions/" + id + "/branches")).json();
  // made whole, then shown at once: two loads at the same time never add their buttons twice
  const parts = [];
  if (data.sessions.length >= 2 && state.session && state.session.id === id) {
    parts.push(document.createTextNode(t("branches_label")));
    data.sessions.forEach((s, k) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = k === 0 ? t("original") : t("fork_n", { n: k });
      b.title = s.name;
      if (s.id === id) b.className = "current";
      b.addEventListener("click", guarded(() => openSession(s.id)));
      parts.push(b);
    });
  }
  if (!state.session || state.session.id === id) nav.replaceChildren(...parts);
}

export function showIncognito() {
  const on = state.session ? Boolean(state.session.incognito) : $("incognito").checked;
  $("incognito").checked = on;
  document.body.classList.toggle("incognito", on);
  $("title").title = on ? t("incognito_on") : "";
}

// the model and memory-strategy choices the server offers (GET /api/models)
export function showChoices(models) {
  $("model").dataset.default = models.default || "";
  if (!models.default) ensureOption($("model"), "", t("server_default"));
  for (const m of models.models) ensureOption($("model"), m);
  if (models.default) ensureOption($("model"), models.default);
  for (const s of models.strategies) {
    const option = document.createElement("option");
    option.value = option.textContent = s;
    $("memory").appendChild(option);
  }
}

export function wireSession() {
  wireRename();
  $("fork").addEventListener("click", guarded(async () => {
    if (!state.session) return;
    const info = await (await api("/api/sessions/" + state.session.id + "/fork", { method: "POST", body: {} })).json();
    await openSession(info.id);
  }));
  $("delete").addEventListener("click", guarded(async () => {
    if (!state.session || !confirm(t("confirm_delete", { name: state.session.name }))) return;
    await api("/api/sessions/" + state.session.id, { method: "DELETE" });
    closeSession();
    await loadSessions();
  }));
  $("save-persona").addEventListener("click", guarded(async () => {
    if (!state.session) return;
    await api("/api/sessions/" + state.session.id, { method: "PATCH", body: { persona: $("persona").value } });
    say(t("persona_saved"));
    refreshContext();
  }));
  $("memory").addEventListener("change", guarded(async () => {
    if (!state.session) return;
    await api("/api/sessions/" + state.session.id, { method: "PATCH", body: { memory: $("memory").value } });
    refreshContext();
  }));
  $("model").addEventListener("change", guarded(async () => {
    if (!state.session) return;
    await api("/api/sessions/" + state.session.id, { method: "PATCH", body: { model: $("model").value } });
    refreshContext();
  }));
  $("incognito").addEventListener("change", async () => {
    const on = $("incognito").checked;
    if (!state.session) { showIncognito(); return; }  // a new chat: goes with its first message
    try {
      state.session = await (await api("/api/sessions/" + state.session.id, { method: "PATCH", body: { incognito: on } })).json();
      showIncognito();
      refreshContext();
    } catch (e) { report(e); $("incognito").checked = !on; }
  });
}
