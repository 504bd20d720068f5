// The context panel: the token gauge, what long-term memory brought and why, and the entries the
// model is sent.
import { api } from "./api.js";
import { $, report, t } from "./dom.js";
import { state } from "./state.js";

export async function refreshContext() {
  if (!state.session) return;
  const asked = state.session.id;
  try {
    const view = await (await api("/api/sessions/" + asked + "/context")).json();
    if (!state.session || state.session.id !== asked) return;  // another chat opened (or none) meanwhile
    const b = view.budget;
    const percent = b.limit ? Math.min(100, Math.round((100 * b.used) / b.limit)) : 100;
    $("gauge-fill").style.width = percent + "%";
    $("gauge").setAttribute("aria-valuenow", String(percent));
    $("gauge-text").textContent = t("tokens", { used: b.used, limit: b.limit });
    const chosen = [];  // what long-term memory brought, and why
    for (const section of view.sections || []) {
      for (const item of section.items || []) {
        const what = item.kind === "memory" ? "memory #" + item.memory_id : (item.session || "") + " #" + item.seq;
        chosen.push("· " + what + " · " + item.tokens + (item.why ? " · " + item.why : "") + "\n  " + item.text);
      }
    }
    const entries = view.entries.map((e) => "[" + e.index + "] " + e.role + " · " + e.kind + " · " + e.tokens + "\n" + e.content);
    $("context").textContent = (chosen.length ? chosen.join("\n") + "\n\n" : "") + entries.join("\n\n");
  } catch (e) {
    // the gauge is left as it was: a server out of reach has its banner, anything else the status line
    report(e);
  }
}

export function wireContext() {
  $("context-panel").addEventListener("toggle", refreshContext);
}
