// The sidebar: the session list (with its search box) and + New chat. Each chat is a button
// (Tab reaches it, Enter or Space opens it); an empty list says why (no chats yet, or none match).
import { api } from "./api.js";
import { $, guarded, t } from "./dom.js";
import { state } from "./state.js";

// opening and making sessions; app.js connects them (sessions.js imports this module)
export const actions = {
  open: async (id) => {},
  create: async () => {},
};

export async function loadSessions() {
  const q = $("search").value.trim();
  const data = await (await api("/api/sessions" + (q ? "?q=" + encodeURIComponent(q) : ""))).json();
  if (q !== $("search").value.trim()) return;  // the search changed meanwhile: its own answer shows
  state.sessions = data.sessions;
  const list = $("sessions");
  const focused = list.contains(document.activeElement) ? document.activeElement.closest("li").dataset.id : null;
  list.replaceChildren();
  for (const s of data.sessions) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "session";
    b.textContent = s.name;
    b.title = s.name;
    li.dataset.id = s.id;
    if (state.session && s.id === state.session.id) {
      li.className = "current";
      b.setAttribute("aria-current", "true");
    }
    b.addEventListener("click", guarded(() => actions.open(s.id)));
    li.appendChild(b);
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

export function wireSidebar() {
  $("new-session").addEventListener("click", guarded(() => actions.create()));
  $("search").addEventListener("input", guarded(loadSessions));
}
