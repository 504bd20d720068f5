// The open session: opening and making one, closing it (no chat open: the welcome), its branches
// (an edited message starts one), and the header's tools (fork, delete, model, memory strategy,
// incognito) and persona. Rename is rename.js.
import { api } from "./api.js";
import { refreshContext } from "./context.js";
import { syncControls } from "./controls.js";
import { $, ensureOption, guarded, report, say, t } from "./dom.js";
import { endRename, wireRename } from "./rename.js";
import { loadMessages, messageNode } from "./render.js";
import { loadSessions } from "./sidebar.js";
import { state } from "./state.js";
import { follow } from "./turns.js";

export async function openSession(id) {
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
  showIncognito();
  localStorage.setItem("memchat.session", String(id));
  $("title").textContent = info.name;
  $("persona").value = info.persona || "";
  $("memory").value = info.memory;
  if (info.model) ensureOption($("model"), info.model);
  $("model").value = info.model || $("model").dataset.default || "";
  syncControls();
  await loadMessages();
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

export async function newSession() {
  const info = await (await api("/api/sessions", { method: "POST", body: {} })).json();
  await openSession(info.id);
}

export async function loadBranches() {
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
    b.addEventListener("click", guarded(() => openSession(s.id)));
    nav.appendChild(b);
  });
}

export async function editMessage(m) {
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
  } catch (e) { report(e); }
}

export function showIncognito() {
  const on = Boolean(state.session && state.session.incognito);
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
    try {
      if (!state.session) await newSession();
      state.session = await (await api("/api/sessions/" + state.session.id, { method: "PATCH", body: { incognito: on } })).json();
      showIncognito();
      refreshContext();
    } catch (e) { report(e); $("incognito").checked = !on; }
  });
}
