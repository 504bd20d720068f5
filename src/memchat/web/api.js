// The page's client of the HTTP API (/api): JSON in and out, and the Server-Sent Events of a turn
// read over fetch (EventSource cannot POST). Every request names the page's language
// (Accept-Language), so the server's messages come in it. A server that cannot be reached is
// an error in the page's words, and the server-down banner takes over (offline.js).
import { serverDown } from "./offline.js";
import { t } from "./dom.js";

export async function api(path, options = {}) {
  const lang = window.memchatI18n.lang === "zh" ? "zh-CN" : "en";
  const init = { credentials: "same-origin", ...options, headers: { "Accept-Language": lang, ...(options.headers || {}) } };
  if (options.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  } else if (options.text !== undefined) {  // a file's text as it is (options.type says what it is)
    init.headers["Content-Type"] = options.type || "text/plain";
    init.body = options.text;
  }
  delete init.text;
  delete init.type;
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    serverDown();
    const offline = new Error(t("offline_short"));
    offline.name = "Offline";
    throw offline;
  }
  if (!response.ok && response.status !== 204) {
    let message = response.statusText;
    let code = "";
    try {
      const error = (await response.json()).error;
      message = error.message;
      code = error.code;
    } catch (_) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    error.code = code;
    throw error;
  }
  return response;
}

// The frames of an SSE response as they arrive: {id, kind, data}; id is null when a frame has
// none, data is the frame's data text ("" for a ": ping" comment; JSON for memchat's events).
export async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let id = null;
      let kind = "message";
      let data = "";
      for (const line of frame.split("\n")) {
        if (line.startsWith("id: ")) id = Number(line.slice(4));
        else if (line.startsWith("event: ")) kind = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      yield { id, kind, data };
    }
  }
}
