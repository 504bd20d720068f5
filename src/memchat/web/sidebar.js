// The sidebar: the session list (each by its title, else its name), its search box — which
// searches the words of the messages too, showing a snippet of each matching message (a click
// opens the session at that message) — and + New chat. Each chat and each snippet is a button
// (Tab reaches it, Enter or Space opens it); an empty list says why (no chats yet, or none match).
import { api } from "./api.js";
import { $, guarded, t } from "./dom.js";
import { state } from "./state.js";

// opening and making sessions; app.js connects them (sessions.js imports this module)
export const actions = {
  open: async (id, messageId) => {},
  create: async () => {},
};

let asked = 0;  // the newest list asked for: an older answer arriving late is not shown

export async function loadSessions() {
  const q = $("search").value.trim();
  const mine = ++asked;
  const data = await (await api("/api/sessions" + (q ? "?q=" + encodeURIComponent(q) : ""))).json();
  if (mine !== asked) return;
  state.sessions = data.sessions;
  const list = $("sessions");
  const focused = list.contains(document.activeElement) ? document.activeElement.closest("li").dataset.id : null;
  list.replaceChildren();
  for (const s of data.sessions) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "session";
    b.textContent = s.title || s.name;
    b.title = s.title ? s.title + " (" + s.name + ")" : s.name;
    li.dataset.id = s.id;
    if (state.session && s.id === state.session.id) {
      li.className = "current";
      b.setAttribute("aria-current", "true");
      $("title").textContent = s.title || s.name;  // a title written since the session was opened
    }
    b.addEventListener("click", guarded(() => open(s.id)));
    li.appendChild(b);
    for (const m of s.matches || []) li.appendChild(snippetNode(s, m));
    list.appendChild(li);
    if (focused === String(s.id)) b.focus();  // the list is made anew: the focus stays on its chat
  }
  if (!data.sessions.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = q ? t("no_results", { q }) : t("no_chats");
    list.appendChild(li);
  }
}

// a matching message: its text around the words found, the words in <mark> (text nodes only)
function snippetNode(s, m) {
  const div = document.createElement("button");
  div.type = "button";
  div.className = "snippet";
  div.dataset.message = m.message_id;
  let at = 0;
  for (const [start, end] of m.marks) {
    div.appendChild(document.createTextNode(m.snippet.slice(at, start)));
    const mark = document.createElement("mark");
    mark.textContent = m.snippet.slice(start, end);
    div.appendChild(mark);
    at = end;
  }
  div.appendChild(document.createTextNode(m.snippet.slice(at)));
  div.addEventListener("click", guarded((event) => { event.stopPropagation(); return open(s.id, m.message_id); }));
  return div;
}

function open(id, messageId) {
  return actions.open(id, messageId);
}

export function wireSidebar() {
  $("new-session").addEventListener("click", guarded(() => actions.create()));
  $("search").addEventListener("input", guarded(loadSessions));
}
