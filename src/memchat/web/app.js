// The memchat page: it uses only the HTTP API (/api), reads turns as Server-Sent Events over
// fetch (EventSource cannot POST), and re-attaches to a reply still being generated after a
// reload. No framework, no build step, no CDN; model output is rendered by markdown.js as text,
// never HTML. This module starts the page; the work is done by ES modules, one job each:
//   api.js       the JSON API client and the SSE stream reader
//   offline.js   the server-down banner, asking again until the server is back
//   state.js     what the page knows (open session, stream) and which memories each reply used
//   dom.js       $, t (i18n.js), the status line, handlers whose failures are reported
//   render.js    messages (‹ 2/3 ›, the inline editor), tool calls, images
//   scroll.js    following a streaming reply only while the reader is at the bottom
//   turns.js     a reply streaming in, Stop, Regenerate, an edit, showing another version
//   composer.js  the message box and its keys, /image, Regenerate
//   sidebar.js   the session list, search, new chat
//   imports.js   importing a chat (another name when its own is taken)
//   sessions.js  opening and closing a session, its forks, the header's tools, persona
//   rename.js    renaming the open chat in place
//   controls.js  which actions apply (disabled when they cannot)
//   drawer.js    the phone's drawer and compact header
//   theme.js     auto, light or dark
//   context.js   the context panel and token gauge
//   memories.js  "What memchat remembers"
//   tools.js     the Tools panel: memchat's own tools and each MCP server's
// i18n.js and markdown.js are classic scripts loaded before this one (window.memchatI18n,
// window.memchatMarkdown).
import { api } from "./api.js";
import { wireComposer } from "./composer.js";
import { wireContext } from "./context.js";
import { wireControls } from "./controls.js";
import { $, report, say, t } from "./dom.js";
import { wireDrawer } from "./drawer.js";
import { wireImport } from "./imports.js";
import { loadMemories, openMemories, wireMemories } from "./memories.js";
import { onBack, wireOffline } from "./offline.js";
import * as render from "./render.js";
import { wireScroll } from "./scroll.js";
import { closeSession, loadBranches, newSession, openSession, showChoices, wireSession } from "./sessions.js";
import * as sidebar from "./sidebar.js";
import { state } from "./state.js";
import { theme, wireTheme } from "./theme.js";
import { loadTools, wireTools } from "./tools.js";
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

let loaded = false;

// what the server has: the models, the chats, and the chat open last time (or the welcome)
async function load() {
  let response;
  try {
    response = await api("/api/models");
  } catch (e) {
    if (e.status !== 401) throw e;
    await signIn();
    response = await api("/api/models");
  }
  const models = await response.json();
  if (!loaded) showChoices(models);
  loaded = true;
  if (!models.key_configured) say(t("no_key"));
  await sidebar.loadSessions();
  // the reader began a chat while the page was loading: it stays (opening the last chat, or
  // the welcome, would take its reply away)
  if (state.session || state.draft || $("messages").children.length) return;
  const remembered = Number(localStorage.getItem("memchat.session"));
  const known = state.sessions.find((s) => s.id === remembered) || state.sessions[0];
  if (known) await openSession(known.id);
  else closeSession();
}

// the server is back: catch up (the list, the open chat and a reply still being written)
async function catchUp() {
  if (!loaded) { await load(); return; }
  await sidebar.loadSessions();
  if (state.session && !state.streaming) await openSession(state.session.id);
}

function start() {
  window.memchatI18n.apply();
  wireTheme();
  $("lang").addEventListener("click", () => {
    window.memchatI18n.toggle();
    theme(false);
    if (state.session) render.loadMessages().then(loadBranches).catch(report);
    sidebar.loadSessions().catch(report);
    if ($("memories-panel").open) loadMemories();
    if ($("tools-panel").open) loadTools();
  });
  wireOffline();
  wireScroll();
  wireDrawer();
  sidebar.wireSidebar();
  wireImport();
  wireComposer();
  wireSession();
  wireContext();
  wireControls();
  wireMemories();
  wireTools();
  onBack(catchUp);
  window.addEventListener("unhandledrejection", (event) => report(event.reason));  // a last net: said, never silent
  load().catch(report);
}

document.addEventListener("DOMContentLoaded", start);
