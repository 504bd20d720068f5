// The composer: Enter sends, Shift+Enter is a new line, Esc stops (IME composition never sends);
// "/image …" generates an image into the session, like the REPL; Stop and Regenerate; files
// (the paperclip, a pasted image) go with the message (attach.js).
import { api } from "./api.js";
import { hasAttachments, restoreAttachments, shown, takeAttachments, uploads, wireAttach } from "./attach.js";
import { $, report, say } from "./dom.js";
import { loadMessages, messageNode } from "./render.js";
import { firstTurn, storedSession } from "./sessions.js";
import { state } from "./state.js";
import { follow, regenerate, stop } from "./turns.js";

async function send(text) {
  const box = $("messages");
  const files = takeAttachments();
  box.appendChild(messageNode({ role: "user", content: text, attachments: shown(files) }));
  const controller = new AbortController();
  const attachments = uploads(files);
  let response;
  try {
    response = state.session
      ? await api("/api/sessions/" + state.session.id + "/turns", { method: "POST", body: { text, attachments }, signal: controller.signal })
      : await firstTurn(text, controller.signal, attachments);  // a new chat: stored with this message
  } catch (e) {
    say(e.message);
    box.lastChild.remove();
    restoreAttachments(files);  // refused (a file's type, its size, a text-only model): kept to fix
    return false;
  }
  follow(response, controller);
  return true;
}

export function wireComposer() {
  const input = $("input");
  input.addEventListener("keydown", (event) => {
    // IME composition (Chinese, Japanese…): Enter picks a candidate, it never sends
    if (event.isComposing || event.keyCode === 229) return;
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    } else if (event.key === "Escape") {
      stop();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.streaming) stop();
  });
  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value;
    if ((!text.trim() && !hasAttachments()) || state.streaming) return;
    input.value = "";
    try {
      await submit(text);
    } catch (e) {  // no chat could be made (the server out of reach…): the text goes back
      report(e);
      input.value = text;
    }
  });
  async function submit(text) {
    if (text.startsWith("/image ")) {  // like the REPL: generate an image into this session
      let made = false;
      try {
        made = await storedSession();  // a new chat is stored with its first image
        say("…");
        await api("/api/sessions/" + state.session.id + "/images", { method: "POST", body: { prompt: text.slice(7).trim() } });
        say("");
        await loadMessages();
      } catch (e) {
        if (made) await api("/api/sessions/" + state.session.id, { method: "DELETE" }).catch(() => {});
        say(e.message);
        input.value = text;
      }
      return;
    }
    if (!(await send(text))) input.value = text;
  }
  wireAttach();
  $("stop").addEventListener("click", stop);
  $("regenerate").addEventListener("click", regenerate);
}
