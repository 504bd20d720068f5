// A small Markdown renderer that builds DOM nodes and never parses HTML: model output is text.
// Fenced code (with a copy button), paragraphs, headings, lists, quotes, inline code, bold,
// italics and links (http and https only, rel="noopener noreferrer"). Re-rendered whole on
// every streamed delta (never appended as markup).
"use strict";
(function () {
  const SAFE = /^https?:\/\//i;

  function inline(text, parent) {
    const pattern = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*)|(\[[^\]]+\]\([^)\s]+\))|(https?:\/\/[^\s<>()]+)/g;
    let last = 0;
    let m;
    while ((m = pattern.exec(text)) !== null) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      const token = m[0];
      if (m[1]) {
        const code = document.createElement("code");
        code.textContent = token.slice(1, -1);
        parent.appendChild(code);
      } else if (m[2]) {
        const strong = document.createElement("strong");
        inline(token.slice(2, -2), strong);
        parent.appendChild(strong);
      } else if (m[3]) {
        const em = document.createElement("em");
        inline(token.slice(1, -1), em);
        parent.appendChild(em);
      } else if (m[4]) {
        const close = token.indexOf("](");
        link(token.slice(1, close), token.slice(close + 2, -1), parent);
      } else {
        link(token, token, parent);
      }
      last = m.index + token.length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function link(label, href, parent) {
    if (!SAFE.test(href)) {
      parent.appendChild(document.createTextNode(label));  // javascript:, data: … shown as text
      return;
    }
    const a = document.createElement("a");
    a.href = href;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    a.textContent = label;
    parent.appendChild(a);
  }

  function codeBlock(lines, lang, parent) {
    const pre = document.createElement("pre");
    const code = document.createElement("code");
    if (lang) code.dataset.lang = lang;
    code.textContent = lines.join("\n");
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy";
    copy.textContent = window.memchatI18n ? window.memchatI18n.t("copy") : "Copy";
    copy.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(code.textContent));
    pre.append(copy, code);
    parent.appendChild(pre);
  }

  function render(text, parent) {
    parent.replaceChildren();
    const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
    let i = 0;
    let para = [];
    const flush = () => {
      if (para.length) {
        const p = document.createElement("p");
        para.forEach((line, k) => {
          if (k) p.appendChild(document.createElement("br"));
          inline(line, p);
        });
        parent.appendChild(p);
        para = [];
      }
    };
    while (i < lines.length) {
      const line = lines[i];
      const fence = line.match(/^\s*```\s*([\w+-]*)/);
      if (fence) {
        flush();
        const body = [];
        i += 1;
        while (i < lines.length && !/^\s*```/.test(lines[i])) body.push(lines[i++]);
        i += 1;
        codeBlock(body, fence[1], parent);
        continue;
      }
      const heading = line.match(/^(#{1,6})\s+(.*)$/);
      if (heading) {
        flush();
        const h = document.createElement("h" + Math.min(6, heading[1].length + 2));
        inline(heading[2], h);
        parent.appendChild(h);
        i += 1;
        continue;
      }
      const item = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
      if (item) {
        flush();
        const ordered = /\d/.test(item[1]);
        const list = document.createElement(ordered ? "ol" : "ul");
        while (i < lines.length) {
          const it = lines[i].match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
          if (!it) break;
          const li = document.createElement("li");
          inline(it[2], li);
          list.appendChild(li);
          i += 1;
        }
        parent.appendChild(list);
        continue;
      }
      if (/^>\s?/.test(line)) {
        flush();
        const quote = document.createElement("blockquote");
        inline(line.replace(/^>\s?/, ""), quote);
        parent.appendChild(quote);
        i += 1;
        continue;
      }
      if (!line.trim()) flush();
      else para.push(line);
      i += 1;
    }
    flush();
  }

  window.memchatMarkdown = { render };
})();
