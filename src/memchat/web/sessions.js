// The open session: opening and making one, its branches (its forks), and the header's tools
// (rename, fork, delete, model, memory strategy, incognito) and persona.
import { api } from "./api.js";
import { refreshContext } from "./context.js";
import { $, ensureOption, say, t } from "./dom.js";
import { loadMessages } from "./render.js";
import { loadSessions } from "./sidebar.js";
import { state } from "./state.js";
import { follow } from "./turns.js";

export async function openSession(id) {
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
    b.textContent = k === 0 ? t("original") : t("fork_n", { n: k });
    b.title = s.name;
    if (s.id === state.session.id) b.className = "current";
    b.addEventListener("click", () => openSession(s.id));
    nav.appendChild(b);
  });
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
  $("model").addEventListener("change", async () => {
    if (!state.session) return;
    await api("/api/sessions/" + state.session.id, { method: "PATCH", body: { model: $("model").value } });
    refreshContext();
  });
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
