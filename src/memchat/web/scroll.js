// Following a reply as it streams: the conversation stays at its newest line only while the
// reader is there. Someone who scrolled up to re-read is left where they are, and a "Jump to
// latest" button takes them down when they want.
import { $ } from "./dom.js";

const NEAR = 40;  // px from the bottom that still count as "at the bottom"

export function atBottom() {
  const box = $("messages");
  return box.scrollHeight - box.scrollTop - box.clientHeight <= NEAR;
}

export function toBottom() {
  const box = $("messages");
  box.scrollTop = box.scrollHeight;
  $("jump").hidden = true;
}

// make `change` to the conversation: a reader at the bottom stays there, one who scrolled up
// stays put and is offered the jump
export function grow(change) {
  const following = atBottom();
  change();
  if (following) toBottom();
  else $("jump").hidden = false;
}

export function wireScroll() {
  $("messages").addEventListener("scroll", () => { $("jump").hidden = atBottom(); }, { passive: true });
  $("jump").addEventListener("click", () => { toBottom(); $("messages").focus({ preventScroll: true }); });
}
