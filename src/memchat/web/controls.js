// Which of the chat's actions apply now: with no chat open, Rename, Fork, Delete, Export, the
// persona, model and memory choices are disabled (a new chat not stored yet has those three) (and the chat's panels hidden), Regenerate
// needs a message of yours and no reply being written. Kept in step as the conversation changes.
import { $ } from "./dom.js";
import { state } from "./state.js";

export function syncControls() {
  const open = Boolean(state.session);
  const draft = !open && Boolean(state.draft);  // "+ New chat": its persona, model and memory are chosen now
  document.body.classList.toggle("no-session", !open && !draft);
  for (const id of ["rename", "fork", "delete"]) $(id).disabled = !open;
  for (const id of ["persona", "save-persona", "model", "memory"]) $(id).disabled = !open && !draft;
  const exported = $("export");
  if (open) {
    exported.href = "/api/sessions/" + state.session.id + "/export";
    exported.removeAttribute("aria-disabled");
  } else {
    exported.removeAttribute("href");  // a link to nothing: not the page itself
    exported.setAttribute("aria-disabled", "true");
  }
  $("regenerate").disabled = !open || state.streaming || !$("messages").querySelector(".msg.user");
}

export function wireControls() {
  new MutationObserver(syncControls).observe($("messages"), { childList: true });
  syncControls();
}
