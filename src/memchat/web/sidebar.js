// The sidebar: the session list (with its search box), + New chat, Import, and the ☰ button that
// shows it on a narrow screen.
import { api } from "./api.js";
import { $, say, t } from "./dom.js";
import { state } from "./state.js";

// opening and making sessions; app.js connects them (sessions.js imports this module)
export const actions = {
  open: async (id) => {},
  create: async () => {},
};

export async function loadSessions() {
  const q = $("search").value.trim();
  const data = await (await api("/api/sessions" + (q ? "?q=" + encodeURIComponent(q) : ""))).json();
  state.sessions = data.sessions;
  const list = $("sessions");
  list.replaceChildren();
  for (const s of data.sessions) {
    const li = document.createElement("li");
    li.textContent = s.name;
    li.title = s.name;
    li.dataset.id = s.id;
    if (state.session && s.id === state.session.id) li.className = "current";
    li.addEventListener("click", () => { $("sidebar").classList.remove("open"); actions.open(s.id); });
    list.appendChild(li);
  }
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
