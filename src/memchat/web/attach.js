// Files sent with the next message: the paperclip opens a file picker, a pasted image and files
// dropped on the message box are taken too; each pending file is a chip (an image's thumbnail, or its name) with × to remove it. They
// go in the turn's JSON body as base64 (POST …/turns "attachments"); the server checks their
// bytes, size and the model (an image for a text-only model is refused in one line).
import { $, t } from "./dom.js";

let pending = [];

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve({ name: file.name || "pasted.png", type: file.type || null, size: file.size, url, data: url.slice(url.indexOf(",") + 1) });
    };
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

export function sizeText(size) {
  if (size < 1024) return size + " B";
  if (size < 1024 * 1024) return Math.round(size / 1024) + " KB";
  return (size / (1024 * 1024)).toFixed(1) + " MB";
}

function isImage(file) {
  return /^image\/(png|jpeg|gif|webp)$/.test(file.type || file.media_type || "");
}

async function add(files) {
  for (const file of files) pending.push(await readFile(file));
  show();
}

function show() {
  const box = $("attachments");
  box.replaceChildren();
  box.hidden = pending.length === 0;
  pending.forEach((file, i) => {
    const chip = document.createElement("span");
    chip.className = "chip";
    if (isImage(file) && file.url.startsWith("data:image/")) {
      const img = document.createElement("img");
      img.src = file.url;
      img.alt = file.name;
      chip.appendChild(img);
    }
    const label = document.createElement("span");
    label.textContent = file.name + " (" + sizeText(file.size) + ")";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "×";
    remove.setAttribute("aria-label", t("remove_file", { name: file.name }));
    remove.addEventListener("click", () => { pending.splice(i, 1); show(); $("input").focus(); });
    chip.append(label, remove);
    box.appendChild(chip);
  });
}

// the pending files, handed to a turn (and cleared); give them back with restoreAttachments
export function takeAttachments() {
  const taken = pending;
  pending = [];
  show();
  return taken;
}

export function restoreAttachments(files) {
  pending = [...files, ...pending];
  show();
}

export function hasAttachments() {
  return pending.length > 0;
}

// what a turn's body carries, and what the user's bubble shows before the server answers
export const uploads = (files) => files.map((f) => ({ name: f.name, type: f.type, data: f.data }));
export const shown = (files) => files.map((f) => ({ name: f.name, media_type: f.type || "", size: f.size, url: f.url }));

export function wireAttach() {
  const picker = $("attach-input");
  $("attach").addEventListener("click", () => picker.click());
  picker.addEventListener("change", async () => {
    await add([...picker.files]);
    picker.value = "";
  });
  const composer = $("composer");  // files dropped on the message box come along too
  composer.addEventListener("dragover", (event) => {
    if (event.dataTransfer && [...event.dataTransfer.types].includes("Files")) event.preventDefault();
  });
  composer.addEventListener("drop", async (event) => {
    const files = [...(event.dataTransfer ? event.dataTransfer.files : [])];
    if (!files.length) return;
    event.preventDefault();
    await add(files);
  });
  $("input").addEventListener("paste", async (event) => {
    const files = [...(event.clipboardData ? event.clipboardData.files : [])].filter(isImage);
    if (!files.length) return;  // text pastes as text
    event.preventDefault();
    await add(files);
  });
}

// the files of a stored message: image thumbnails (from the owner-only endpoint) and file chips
export function filesNode(files) {
  const div = document.createElement("div");
  div.className = "files";
  for (const f of files) {
    const link = document.createElement("a");
    link.href = f.url;
    link.className = "file";
    if (isImage(f)) {
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      const img = document.createElement("img");
      img.className = "thumb";
      img.src = f.url;
      img.alt = f.name;
      link.appendChild(img);
    } else {
      link.setAttribute("download", f.name);
      link.textContent = "📎 " + f.name + " (" + sizeText(f.size) + ")";
    }
    div.appendChild(link);
  }
  return div;
}
