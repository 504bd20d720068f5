// The sidebar: the session list (each by its title, else its name), its search box — which
// searches the words of the messages too, showing a snippet of each matching message (a click
// opens the session at that message) — + New chat, Import, and the ☰ button that shows it on a
// narrow screen.
import { api } from "./api.js";
import { $, say, t } from "./dom.js";
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
  list.replaceChildren();
  if (q && !data.sessions.length) {
    const none = document.createElement("li");
    none.className = "empty";
    none.textContent = t("no_results", { q });
    list.appendChild(none);
    return;
  }
  for (const s of data.sessions) {
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = s.title || s.name;
    li.title = s.title ? s.title + " (" + s.name + ")" : s.name;
    li.appendChild(label);
    li.dataset.id = s.id;
    if (state.session && s.id === state.session.id) {
      li.className = "current";
      $("title").textContent = s.title || s.name;  // a title written since the session was opened
    }
    for (const m of s.matches || []) li.appendChild(snippetNode(s, m));
    li.addEventListener("click", () => open(s.id));
    list.appendChild(li);
  }
}

// a matching message: its text around the words found, the words in <mark> (text nodes only)
function snippetNode(s, m) {
  const div = document.createElement("div");
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
  div.addEventListener("click", (event) => { event.stopPropagation(); open(s.id, m.message_id); });
  return div;
}

function open(id, messageId) {
  $("sidebar").classList.remove("open");
  actions.open(id, messageId);
}

export function wireSidebar() {
  $("menu").addEventListener("click", () => $("sidebar").classList.toggle("open"));
  $("new-session").addEventListener("click", () => actions.create());
  $("search").addEventListener("input", loadSessions);
  $("import").addEventListener("change", async () => {
    const file = $("import").files[0];
    if (!file) return;
    try {
      const info = await (await api("/api/sessions/import", { method: "POST", body: { text: await file.text() } })).json();
      await actions.open(info.id);
      say(t("imported", { name: info.name }));
    } catch (e) { say(e.message); }
    $("import").value = "";
  });
}
