// The job list: loaded once, then kept live from the all-jobs stream. Rows are updated in
// place and ordered by start time, so a link never moves under the pointer.

import { $, el, fmt, setAttr, setText, when } from "./dom.js";
import { api, follow, leaveView } from "./net.js";

const END = new Set(["workflow_completed", "workflow_failed", "workflow_cancelled"]);

export async function showList(show) {
  leaveView();
  show("list-view");
  document.title = "Jobs · spruce";
  const jobs = new Map();   // job_id -> {record, row}
  let cursor = null;
  const load = async () => {
    const response = await api("/api/jobs");
    const body = await response.json();
    jobs.clear();
    $("jobs").replaceChildren();
    for (const record of body.jobs) upsert(jobs, record);
    cursor = body.cursor;
    $("no-jobs").hidden = jobs.size > 0;
  };
  try { await load(); } catch { /* the socket below shows the server as offline */ }
  follow("/ws/progress", () => (cursor ? { after: cursor } : {}), (event) => {
    cursor = event.cursor;
    const known = jobs.get(event.job_id);
    const record = known ? known.record : {
      job_id: event.job_id, status: "running", started_at: event.timestamp,
      workflow: event.data.workflow, project: event.data.project,
    };
    if (event.event === "workflow_session_initializing") {
      record.workflow = event.data.workflow; record.project = event.data.project;
    }
    if (END.has(event.event)) {
      record.status = event.data.status || event.event.replace("workflow_", "");
      record.ended_at = event.timestamp;
    }
    upsert(jobs, record);
    $("no-jobs").hidden = true;
  }, (code) => {
    if (code === 4410) { load(); return false; }    // retention moved on: start from now
    return code === 4400;
  });
}

function upsert(jobs, record) {
  let entry = jobs.get(record.job_id);
  if (!entry) {
    entry = { record, row: newRow(record) };
    jobs.set(record.job_id, entry);
    // Newest first: before the first row that started earlier (the list comes newest first,
    // so most rows go straight to the end).
    const body = $("jobs");
    const last = body.lastElementChild;
    const later = !last || Number(last.dataset.started) >= record.started_at ? null
      : [...body.children].find((row) => Number(row.dataset.started) < record.started_at);
    body.insertBefore(entry.row, later || null);
  }
  entry.record = record;
  const cells = entry.row.cells;
  setText(cells[1], record.workflow || "");
  setText(cells[2], record.project || "");
  const status = cells[3].firstChild;
  setText(status, record.status);
  setAttr(status, "class", `status ${record.status}`);
  setText(cells[4], when(record.started_at));
  setText(cells[5], record.ended_at ? fmt(record.ended_at - record.started_at) : "");
  const running = [...jobs.values()].filter((e) => e.record.status === "running").length;
  document.title = running ? `(${running} running) Jobs · spruce` : "Jobs · spruce";
}

function newRow(record) {
  return el("tr", { "data-job": record.job_id, "data-started": String(record.started_at) },
    el("td", {}, el("a", { href: `#/job/${encodeURIComponent(record.job_id)}` }, record.job_id)),
    el("td", {}), el("td", { class: "loc" }), el("td", {}, el("span", { class: "status" })),
    el("td", { class: "when" }), el("td", { class: "dur" }));
}
