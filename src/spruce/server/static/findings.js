// Findings grouped by hook and file: collapsible, filtered and searched in place. Each group is
// built once, when its hook ends; filtering only hides and shows, so nothing is rebuilt.

import { $, el, setText } from "./dom.js";

const EDITOR_KEY = "spruce.editor";
const RANK = { error: 0, timeout: 0, failed: 1, fixed: 2, skipped: 3, passed: 4 };
const OPEN_FILES_UP_TO = 200;   // findings in a hook; past that its files start collapsed

export function editorTemplate() {
  try { return localStorage.getItem(EDITOR_KEY) || ""; } catch { return ""; }
}

function editorLink(template, project, finding) {
  if (!template || /^\s*(javascript|data|vbscript):/i.test(template)) return null;
  const absolute = finding.path.startsWith("/") ? finding.path : `${project.replace(/\/$/, "")}/${finding.path}`;
  const path = encodeURI(absolute);
  // "scheme://file/{path}" with an absolute path: one slash, as editors expect.
  return template.replaceAll("/{path}", path.startsWith("/") ? path : `/${path}`).replaceAll("{path}", path)
    .replaceAll("{line}", String(finding.line ?? 1)).replaceAll("{column}", String(finding.column ?? 1));
}

export const location = (f) => [f.path, f.line, f.column].filter((part) => part != null).join(":");

export class Findings {
  constructor(root) {
    this.root = root;
    this.total = 0;
    this.links = [];   // [anchor, finding, project] for the editor link setting
    const search = $("findings-search");
    const refilter = () => this.filter();
    search.oninput = refilter;
    $("findings-hook").onchange = refilter;
    $("findings-severity").onchange = refilter;
    const editor = $("editor-scheme");
    editor.value = editorTemplate();
    editor.onchange = () => {
      try { localStorage.setItem(EDITOR_KEY, editor.value.trim()); } catch { /* private mode */ }
      for (const [anchor, finding, project] of this.links) setLink(anchor, editorLink(editor.value.trim(), project, finding));
    };
    root.onclick = (e) => {
      const button = e.target.closest("button.copy");
      if (button) copy(button);
    };
    this.reset();
  }

  reset() {
    this.total = 0;
    this.links = [];
    this.root.replaceChildren();
    $("findings-hook").replaceChildren(el("option", { value: "" }, "all hooks"));
    $("no-findings").hidden = false;
  }

  // One group per hook that has something to show: findings, a reason, or the tool's output.
  addHook(unit, project) {
    this.total += unit.findingsTotal;
    const worth = unit.findingsTotal > 0 || (unit.status !== "passed" && (unit.reason || unit.outputTail));
    if (!worth) return;
    $("no-findings").hidden = true;
    const group = this.group(unit, project);
    const rank = RANK[unit.status] ?? 5;
    group.dataset.rank = String(rank);
    const after = [...this.root.children].find((g) => Number(g.dataset.rank) > rank);
    this.root.insertBefore(group, after || null);
    $("findings-hook").append(el("option", { value: unit.name }, unit.name));
    this.filter(group);
  }

  group(unit, project) {
    const count = unit.findingsTotal;
    const summary = el("summary", {},
      el("span", { class: "hook-name" }, unit.name), " ",
      el("span", { class: `status ${unit.status}` }, unit.status), " ",
      el("span", { class: "muted" }, count === 1 ? "1 finding" : `${count} findings`),
      unit.cached ? el("span", { class: "note" }, "cached") : null);
    const body = [];
    if (unit.reason) body.push(el("p", { class: unit.status === "skipped" ? "reason muted" : "reason error-text" }, unit.reason));
    if (unit.outputTail) {
      body.push(el("details", { class: "output", open: unit.status === "error" || unit.status === "timeout" },
        el("summary", {}, "Tool output (its last lines)"), el("pre", { class: "trace", tabIndex: 0 }, unit.outputTail)));
    }
    const byFile = new Map();
    for (const finding of unit.details) {
      if (!byFile.has(finding.path)) byFile.set(finding.path, []);
      byFile.get(finding.path).push(finding);
    }
    const template = editorTemplate();
    for (const [path, items] of byFile) {
      const list = el("ul", { class: "finding-list" }, ...items.map((f) => this.item(f, template, project)));
      body.push(el("details", { class: "file", open: count <= OPEN_FILES_UP_TO, "data-path": path },
        el("summary", {}, el("code", {}, path), " ", el("span", { class: "muted" }, `(${items.length})`)), list));
    }
    const hidden = count - unit.details.length;
    if (hidden > 0) {
      body.push(el("p", { class: "more" }, `… and ${hidden} more (the tool reported ${count}; `,
        el("code", {}, "spruce run --format json"), " lists them all)"));
    }
    return el("details", { class: "hook-group", open: true, "data-hook": unit.name }, summary, ...body);
  }

  item(finding, template, project) {
    const text = location(finding);
    const anchor = el("a", { class: "loc" }, text);
    setLink(anchor, editorLink(template, project, finding));
    this.links.push([anchor, finding, project]);
    const search = `${finding.path} ${finding.code || ""} ${finding.message || ""}`.toLowerCase();
    return el("li", { class: "finding", "data-severity": finding.severity || "error", "data-search": search },
      anchor, el("button", { class: "copy", type: "button", "data-copy": text, "aria-label": `Copy ${text}` }, "copy"),
      " ", el("code", { class: "code" }, finding.code || ""), " ", el("span", { class: "message" }, finding.message || ""));
  }

  filter(only = null) {
    const words = $("findings-search").value.trim().toLowerCase();
    const hook = $("findings-hook").value;
    const severity = $("findings-severity").value;
    for (const group of only ? [only] : this.root.children) {
      let shown = 0;
      for (const item of group.querySelectorAll("li.finding")) {
        const visible = (!words || item.dataset.search.includes(words))
          && (!severity || item.dataset.severity === severity);
        item.hidden = !visible;
        if (visible) shown += 1;
      }
      for (const file of group.querySelectorAll("details.file")) {
        file.hidden = !file.querySelector("li.finding:not([hidden])");
      }
      const filtering = Boolean(words || severity);
      group.hidden = (hook && group.dataset.hook !== hook) || (filtering && shown === 0);
    }
  }
}

function setLink(anchor, href) {
  if (href) anchor.href = href; else anchor.removeAttribute("href");
}

async function copy(button) {
  const text = button.dataset.copy;
  try {
    await navigator.clipboard.writeText(text);
    setText($("announcer"), `Copied ${text}`);
  } catch {
    // No clipboard permission: select the location so the user can copy it.
    const range = document.createRange();
    range.selectNodeContents(button.previousElementSibling);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
  }
}
