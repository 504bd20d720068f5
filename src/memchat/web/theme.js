// The colour theme: auto (the system's), light or dark, kept in localStorage; the button says
// which one is on and steps to the next.
import { $, t } from "./dom.js";

const ORDER = ["auto", "light", "dark"];

export function theme(step) {
  let current = localStorage.getItem("memchat.theme");
  if (!ORDER.includes(current)) current = "auto";
  if (step) current = ORDER[(ORDER.indexOf(current) + 1) % ORDER.length];
  localStorage.setItem("memchat.theme", current);
  if (current === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = current;
  const button = $("theme");
  button.textContent = t("theme_named", { name: t("theme_" + current) });
  button.dataset.current = current;
}

export function wireTheme() {
  theme(false);
  $("theme").addEventListener("click", () => theme(true));
}
