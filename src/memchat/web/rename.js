// Renaming the open chat in place: the title becomes a text field (Enter or Save keeps the new
// name, Esc or Cancel leaves it); a name that is taken is said beside it, and the field stays.
import { api } from "./api.js";
import { $, guarded, say, t } from "./dom.js";
import { loadSessions } from "./sidebar.js";
import { state } from "./state.js";

export function startRename() {
  if (!state.session) return;
  $("rename-input").value = state.session.name;
  $("rename-error").textContent = "";
  $("title").hidden = true;
  $("rename-form").hidden = false;
  $("rename-input").focus();
  $("rename-input").select();
}

// leave the field (`refocus`: back to the Rename button, when the field had the user's attention)
export function endRename(refocus = false) {
  if ($("rename-form").hidden) return;
  $("rename-form").hidden = true;
  $("title").hidden = false;
  if (refocus) $("rename").focus();
}

async function save(event) {
  event.preventDefault();
  const name = $("rename-input").value.trim();
  if (!state.session || !name || name === state.session.name) { endRename(true); return; }
  try {
    const info = await (await api("/api/sessions/" + state.session.id, { method: "PATCH", body: { name } })).json();
    state.session = { ...state.session, ...info };
    $("title").textContent = info.name;
    endRename(true);
    say(t("renamed", { name: info.name }));
    await loadSessions();
  } catch (e) {
    if (e.name === "Offline") return;
    $("rename-error").textContent = e.message;  // stay in the field: choose another name there
    $("rename-input").focus();
  }
}

export function wireRename() {
  $("rename").addEventListener("click", startRename);
  $("rename-form").addEventListener("submit", guarded(save));
  $("rename-cancel").addEventListener("click", () => endRename(true));
  $("rename-input").addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); endRename(true); }
  });
}
