// The page's client of the HTTP API (/api): JSON in and out, and the Server-Sent Events of a turn
// read over fetch (EventSource cannot POST).

export async function api(path, options = {}) {
  const init = { credentials: "same-origin", ...options };
  if (options.body !== undefined) {
    init.headers = { "Content-Type": "application/json", ...(options.headers || {}) };
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(path, init);
  if (!response.ok && response.status !== 204) {
    let message = response.statusText;
    try {
      message = (await response.json()).error.message;
    } catch (_) { /* not JSON */ }
    throw new Error(message);
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
