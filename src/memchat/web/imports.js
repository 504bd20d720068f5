// Importing a chat (a JSONL export): when its name is taken, a field right there offers a free
// name (“trip (2)”) to import it under, instead of a dead end.
import { api } from "./api.js";
import { $, guarded, report, say, t } from "./dom.js";
import { actions } from "./sidebar.js";
import { state } from "./state.js";

let pending = null;  // the text of the file waiting for a name

function nameInFile(text) {
  const end = text.indexOf("\n");
  try { return JSON.parse(end < 0 ? text : text.slice(0, end)).name || ""; } catch (_) { return ""; }
}

function freeName(name) {
  const taken = new Set(state.sessions.map((s) => s.name));
  for (let n = 2; n < 1000; n++) {
    const candidate = name + " (" + n + ")";
    if (!taken.has(candidate)) return candidate;
  }
  return name;
}

function ask(text, name) {
  pending = text;
  $("import-conflict").textContent = t("import_conflict", { name });
  $("import-name").value = freeName(name);
  $("import-rename").hidden = false;
  $("import-name").focus();
  $("import-name").select();
}

function done() {
  pending = null;
  $("import-rename").hidden = true;
}

async function importText(text, name) {
  try {
    const info = await (await api("/api/sessions/import", { method: "POST", body: name ? { text, name } : { text } })).json();
    done();
    await actions.open(info.id);
    say(t("imported", { name: info.name }));
  } catch (e) {
    if (e.code !== "session_exists") { report(e); return; }
    ask(text, name || nameInFile(text));
  }
}

export function wireImport() {
  $("import").addEventListener("change", guarded(async () => {
    const file = $("import").files[0];
    if (!file) return;
    const text = await file.text();
    $("import").value = "";
    done();
    await importText(text, null);
  }));
  $("import-rename").addEventListener("submit", guarded(async (event) => {
    event.preventDefault();
    const name = $("import-name").value.trim();
    if (pending && name) await importText(pending, name);
  }));
  const cancel = () => { done(); $("import").focus(); };
  $("import-cancel").addEventListener("click", cancel);
  $("import-name").addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); cancel(); }
  });
}
