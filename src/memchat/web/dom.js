// Small helpers every module of the page uses: find an element, say a word in the page's
// language (i18n.js), show a line in the status bar.

export const $ = (id) => document.getElementById(id);

export const t = (key, values) => window.memchatI18n.t(key, values);

export const say = (text) => { $("status").textContent = text || ""; };

export function ensureOption(select, value, label) {
  if ([...select.options].some((o) => o.value === value)) return;
  const option = document.createElement("option");
  option.value = value;
  option.textContent = label || value;
  select.appendChild(option);
}
