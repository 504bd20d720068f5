// The memchat page: it uses only the HTTP API (/api), reads turns as Server-Sent Events over
// fetch (EventSource cannot POST), and re-attaches to a reply still being generated after a
// reload. No framework, no build step, no CDN; model output is rendered by markdown.js as text,
// never HTML. This module starts the page; the work is done by ES modules, one job each:
//   api.js       the JSON API client and the SSE stream reader
//   state.js     what the page knows (open session, stream) and which memories each reply used
//   dom.js       $, t (i18n.js), the status line
//   render.js    messages (‹ 2/3 ›, the inline editor), tool calls, images
//   turns.js     a reply streaming in, Stop, Regenerate, an edit, showing another version
//   composer.js  the message box and its keys, /image, Regenerate
//   sidebar.js   the session list, search, new chat, import
//   sessions.js  opening a session, its forks, the header's tools, persona
//   context.js   the context panel and token gauge
//   memories.js  "What memchat remembers"
// i18n.js and markdown.js are classic scripts loaded before this one (window.memchatI18n,
// window.memchatMarkdown).
import { api } from "./api.js";
import { wireComposer } from "./composer.js";
import { wireContext } from "./context.js";
import { $, say, t } from "./dom.js";
import { loadMemories, openMemories, wireMemories } from "./memories.js";
import * as render from "./render.js";
import { loadBranches, newSession, openSession, showChoices, wireSession } from "./sessions.js";
import * as sidebar from "./sidebar.js";
import { state } from "./state.js";
import { chooseVersion, editMessage, regenerate } from "./turns.js";

// the calls that go from a lower module up to a higher one
render.actions.editMessage = editMessage;
render.actions.chooseVersion = chooseVersion;
render.actions.retry = regenerate;
render.actions.openMemories = openMemories;
sidebar.actions.open = openSession;
sidebar.actions.create = newSession;

async function signIn() {
  // a server with accounts: trade the token for an HttpOnly cookie (script never keeps it)
  for (;;) {
    const token = prompt(t("sign_in"));
    if (!token) throw new Error("not signed in");
    try {
      await api("/api/login", { method: "POST", body: { token } });
      return;
    } catch (e) { say(e.message); }
  }
}

function theme(step) {
  const order = ["auto", "light", "dark"];
  let current = localStorage.getItem("memchat.theme") || "auto";
  if (step) current = order[(order.indexOf(current) + 1) % order.length];
  localStorage.setItem("memchat.theme", current);
  if (current === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = current;
}

async function start() {
  window.memchatI18n.apply();
  theme(false);
  $("lang").addEventListener("click", () => {
    window.memchatI18n.toggle();
    if (state.session) render.loadMessages().then(loadBranches);
    if ($("memories-panel").open) loadMemories();
  });
  $("theme").addEventListener("click", () => theme(true));
  sidebar.wireSidebar();
  wireComposer();
  wireSession();
  wireContext();
  wireMemories();
  const probe = await fetch("/api/models", { credentials: "same-origin" });
  if (probe.status === 401) await signIn();
  const models = await (await api("/api/models")).json();
  showChoices(models);
  if (!models.key_configured) say(t("no_key"));
  await sidebar.loadSessions();
  const remembered = Number(localStorage.getItem("memchat.session"));
  const known = state.sessions.find((s) => s.id === remembered) || state.sessions[0];
  if (known) await openSession(known.id);
}

document.addEventListener("DOMContentLoaded", () => { start().catch((e) => say(e.message)); });
