// The narrow screen (a phone): the sidebar is a drawer under the header, opened by ☰ (which it
// never covers) and closed by ☰ again, a tap outside it, Esc, or picking a chat; "⋯" shows the
// chat's tools and panels, which the compact header leaves out.
import { $ } from "./dom.js";

const narrow = window.matchMedia("(max-width: 700px)");

export function isOpen() { return $("sidebar").classList.contains("open"); }

export function openDrawer() {
  $("sidebar").classList.add("open");
  $("menu").setAttribute("aria-expanded", "true");
  $("scrim").hidden = false;
  const first = $("sessions").querySelector("[aria-current=true]") || $("new-session");
  requestAnimationFrame(() => first.focus());  // once the drawer is shown (it was hidden)
}

export function closeDrawer() {
  if (!isOpen()) return;
  const inside = $("sidebar").contains(document.activeElement);
  $("sidebar").classList.remove("open");
  $("menu").setAttribute("aria-expanded", "false");
  $("scrim").hidden = true;
  if (inside && narrow.matches) $("menu").focus();
}

function toggleTools() {
  const open = !document.body.classList.contains("tools-open");
  document.body.classList.toggle("tools-open", open);
  $("more").setAttribute("aria-expanded", String(open));
}

export function wireDrawer() {
  $("menu").addEventListener("click", () => (isOpen() ? closeDrawer() : openDrawer()));
  $("more").addEventListener("click", toggleTools);
  // a tap anywhere outside the drawer (the ☰ toggles it itself)
  document.addEventListener("click", (event) => {
    if (isOpen() && !$("sidebar").contains(event.target) && !$("menu").contains(event.target)) closeDrawer();
  });
  // Esc closes the drawer first (before it would stop a reply); capture, so it is seen first
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && isOpen() && narrow.matches) {
      event.stopPropagation();
      event.preventDefault();
      closeDrawer();
    }
  }, true);
  // a chat picked (or made) in the drawer: the drawer has done its job
  $("sessions").addEventListener("click", (event) => { if (event.target.closest("button")) closeDrawer(); });
  $("new-session").addEventListener("click", closeDrawer);
  narrow.addEventListener("change", () => { if (!narrow.matches) closeDrawer(); });
}
