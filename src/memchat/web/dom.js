// Small helpers every module of the page uses: find an element, say a word in the page's
// language (i18n.js), show a line in the status bar, and run an event's work so that a failure
// is said there rather than left as an unhandled rejection.

export const $ = (id) => document.getElementById(id);

export const t = (key, values) => window.memchatI18n.t(key, values);

export const say = (text) => { $("status").textContent = text || ""; };

// what went wrong, in the status bar (an aborted request is no failure: the page left it; a
// server out of reach has its banner, offline.js)
export function report(error) {
  if (!error || error.name === "AbortError" || error.name === "Offline") return;
  say(error.message || String(error));
}

// an event handler whose failure is reported, never an unhandled rejection
export function guarded(work) {
  return async (...args) => {
    try {
      await work(...args);
    } catch (e) {
      report(e);
    }
  };
}

export function ensureOption(select, value, label) {
  if ([...select.options].some((o) => o.value === value)) return;
  const option = document.createElement("option");
  option.value = value;
  option.textContent = label || value;
  select.appendChild(option);
}
