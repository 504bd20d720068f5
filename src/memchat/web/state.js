// What the page knows: the open session, the session list, the stream being read, and the marks
// of which memories and earlier turns each reply used (kept in localStorage).

export const state = { session: null, draft: false, sessions: [], controller: null, lastEvent: 0, streaming: false };

const USED = "memchat.used";  // message id → {m: memory ids, r: earlier turns} (the page's marks)

export function usedMarks() {
  try { return JSON.parse(localStorage.getItem(USED) || "{}") || {}; } catch (_) { return {}; }
}

export function keepUsed(messageId, memories, recalled) {
  if (!messageId || (!memories.length && !recalled)) return;
  const marks = usedMarks();
  marks[messageId] = { m: memories, r: recalled };
  const ids = Object.keys(marks);
  for (const old of ids.slice(0, Math.max(0, ids.length - 500))) delete marks[old];
  localStorage.setItem(USED, JSON.stringify(marks));
}
