// The Tools panel: what the model may call — memchat's own tools, and each MCP server's with its
// state (running, stopped, failed) and whether a tool asks before it runs. Read when opened (an
// MCP server starts on first use, so opening the panel may start them).
import { api } from "./api.js";
import { $, report, t } from "./dom.js";

function line(className, ...nodes) {
  const li = document.createElement("li");
  li.className = className;
  li.append(...nodes);
  return li;
}

function toolLine(name, description, asks) {
  const code = document.createElement("code");
  code.textContent = name;
  const about = document.createElement("span");
  about.textContent = (description ? " — " + description : "") + (asks ? " (" + t("tools_asks") + ")" : "");
  return line("tool", code, about);
}

export async function loadTools() {
  const list = $("tools-list");
  try {
    const [models, mcp] = await Promise.all([
      api("/api/models").then((r) => r.json()),
      api("/api/mcp").then((r) => r.json()),
    ]);
    const fromServers = new Set(mcp.servers.flatMap((s) => s.tools.map((tool) => tool.name)));
    const own = models.tools.filter((name) => !fromServers.has(name));
    const items = [];
    if (own.length) {
      items.push(line("server", t("tools_builtin")));
      for (const name of own) items.push(toolLine(name, "", false));
    }
    for (const s of mcp.servers) {
      const state = document.createElement("span");
      state.className = "state";
      state.textContent = " · MCP · " + s.state + (s.error ? " · " + s.error : "");
      items.push(line("server", s.name, state));
      for (const tool of s.tools) items.push(toolLine(tool.name, tool.description, tool.asks));
    }
    if (!items.length) items.push(line("empty", t("tools_none")));
    list.replaceChildren(...items);
  } catch (e) { report(e); }
}

export function wireTools() {
  $("tools-panel").addEventListener("toggle", () => { if ($("tools-panel").open) loadTools(); });
}
