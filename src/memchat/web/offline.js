// The server-down banner: when a request cannot reach the server, a banner says so and the page
// asks /api/health again by itself (1 s, then less often, up to every 8 s; "Retry now" and the
// browser coming back online ask at once). When the server answers, the banner says so and the
// page catches up (onBack): the session list, the open chat, a reply still being written.
import { $, t } from "./dom.js";

const back = [];
let down = false;
let timer = null;
let wait = 1000;

// run `work` each time the server is reachable again
export function onBack(work) { back.push(work); }

export function isDown() { return down; }

export function serverDown() {
  if (down) return;
  down = true;
  wait = 1000;
  const banner = $("offline");
  banner.className = "down";
  $("offline-text").textContent = t("offline");
  $("offline-retry").hidden = false;
  banner.hidden = false;
  later();
}

function later() {
  clearTimeout(timer);
  timer = setTimeout(probe, wait);
  wait = Math.min(wait * 2, 8000);
}

let asking = false;

async function probe() {
  if (!down || asking) return;
  clearTimeout(timer);
  asking = true;
  let ok = false;
  try {
    ok = (await fetch("/api/health", { cache: "no-store", credentials: "same-origin" })).ok;
  } catch (_) { /* still down */ }
  asking = false;
  if (!down) return;
  if (!ok) { later(); return; }
  down = false;
  const banner = $("offline");
  banner.className = "back";
  $("offline-text").textContent = t("back_online");
  $("offline-retry").hidden = true;
  timer = setTimeout(() => { if (!down) banner.hidden = true; }, 6000);
  for (const work of back) {
    try { await work(); } catch (_) { /* the next failure shows the banner again */ }
  }
}

export function wireOffline() {
  $("offline-retry").addEventListener("click", probe);
  window.addEventListener("online", () => { if (down) probe(); });
}
