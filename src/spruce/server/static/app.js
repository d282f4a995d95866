// spruce dashboard: the job list (live from the all-jobs stream) and a job page rebuilt from
// the job's event stream; both reconnect by themselves from the last cursor / seq they saw.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);
const END = new Set(["workflow_completed", "workflow_failed", "workflow_cancelled"]);
const HOOK_END = new Set(["hook_completed", "hook_failed", "hook_skipped"]);
let socket = null;   // the one open WebSocket of the current view
let viewId = 0;      // bumps on every navigation, so stale sockets stop reconnecting

function api(path, options = {}) {
  const headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(path, { ...options, headers });
}

function wsUrl(path, params) {
  const query = new URLSearchParams(params);
  if (token) query.set("token", token);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}?${query}`;
}

// Opens a socket, and on an unexpected close reopens it with the params `resume()` gives.
function follow(path, resume, onEvent, onFinal) {
  const myView = viewId;
  let delay = 250;
  const open = () => {
    if (myView !== viewId) return;
    const ws = new WebSocket(wsUrl(path, resume()));
    socket = ws;
    ws.onopen = () => { $("connection").classList.add("live"); delay = 250; };
    ws.onmessage = (msg) => onEvent(JSON.parse(msg.data));
    ws.onclose = (e) => {
      $("connection").classList.remove("live");
      if (myView !== viewId) return;
      if (onFinal(e.code, e.reason)) return;       // the view decided: no reconnect
      setTimeout(open, delay);                      // 1001/1006/1011/1012/1013/4008: resume
      delay = Math.min(delay * 2, 5000);
    };
  };
  open();
}

function leaveView() {
  viewId += 1;
  if (socket) socket.close();
  socket = null;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

const fmt = (s) => (s == null ? "" : s < 10 ? `${s.toFixed(2)}s` : `${s.toFixed(1)}s`);
const when = (t) => new Date(t * 1000).toLocaleTimeString();

// ---- job list -------------------------------------------------------------------------

async function showList() {
  leaveView();
  $("job-view").hidden = true;
  $("list-view").hidden = false;
  const jobs = new Map();
  let cursor = null;
  const load = async () => {
    const body = await (await api("/api/jobs")).json();
    jobs.clear();
    for (const job of body.jobs.slice().reverse()) jobs.set(job.job_id, job);
    cursor = body.cursor;
    renderList(jobs);
  };
  await load();
  follow("/ws/progress", () => (cursor ? { after: cursor } : {}), (event) => {
    cursor = event.cursor;
    const job = jobs.get(event.job_id) || {
      job_id: event.job_id, status: "running", started_at: event.timestamp,
      workflow: event.data.workflow, project: event.data.project,
    };
    if (END.has(event.event)) {
      job.status = event.data.status || event.event.replace("workflow_", "");
      job.ended_at = event.timestamp;
    }
    jobs.delete(event.job_id);
    jobs.set(event.job_id, job);    // newest activity last, shown first
    renderList(jobs);
  }, (code) => {
    if (code === 4410) { load(); return false; }    // retention moved on: start from now
    return code === 4400;
  });
}

function renderList(jobs) {
  const rows = [...jobs.values()].reverse().map((job) => el("tr", { "data-job": job.job_id },
    el("td", {}, el("a", { href: `#/job/${encodeURIComponent(job.job_id)}` }, job.job_id)),
    el("td", {}, job.workflow || ""),
    el("td", { class: "loc" }, job.project || ""),
    el("td", {}, el("span", { class: `status ${job.status}` }, job.status)),
    el("td", {}, when(job.started_at)),
    el("td", { class: "dur" }, job.ended_at ? fmt(job.ended_at - job.started_at) : ""),
  ));
  $("jobs").replaceChildren(...rows);
  $("no-jobs").hidden = rows.length > 0;
}

// ---- one job --------------------------------------------------------------------------

function newJobState() {
  return {
    lastSeq: 0, status: "running", start: null, end: null, workflow: "", project: "",
    units: new Map(),   // step_id -> {name, kind, phase, start, duration, status}
    tests: { done: 0, total: null, failed: 0 },
    findings: [],
  };
}

function apply(state, event) {
  const { data } = event;
  const step = event.step_id;
  state.start ??= event.timestamp;
  if (event.event === "workflow_session_initializing") {
    state.workflow = data.workflow; state.project = data.project;
  } else if (END.has(event.event)) {
    state.status = data.status || event.event.replace("workflow_", "");
    state.end = event.timestamp;
  } else if (event.event === "test_case_completed") {
    state.tests.done = data.done ?? state.tests.done + 1;
    state.tests.total = data.total ?? state.tests.total;
    if (data.outcome === "failed" || data.outcome === "error") state.tests.failed += 1;
  } else if (step && step !== "quality" && !event.event.startsWith("hook_strategy")) {
    const isHook = event.event.startsWith("hook_");
    const unit = state.units.get(step) || {
      name: isHook ? data.hook : step, kind: isHook ? "hook" : "phase",
      phase: isHook ? data.phase : step, start: event.timestamp, duration: null, status: "running",
    };
    if (event.event.endsWith("_started")) {
      unit.start = event.timestamp;
      if (event.event === "test_phase_started") state.tests.total = data.total ?? null;
    } else if (data.status) {
      unit.status = data.status;
      unit.duration = data.duration ?? 0;
      if (unit.start === event.timestamp && unit.duration) unit.start -= unit.duration;
    }
    if (HOOK_END.has(event.event)) {
      for (const f of data.details || []) state.findings.push({ hook: data.hook, ...f });
    }
    if (event.event.startsWith("test_phase_") && data.total != null) {
      state.tests = { done: data.total, total: data.total, failed: (data.failed || 0) + (data.errors || 0) };
    }
    state.units.set(step, unit);
  }
  state.lastSeq = event.seq;
}

function showJob(jobId) {
  leaveView();
  $("list-view").hidden = true;
  $("job-view").hidden = false;
  $("job-title").textContent = jobId;
  let state = newJobState();
  let pending = false;
  const redraw = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; renderJob(state); });
  };
  const ticker = setInterval(() => (state.status === "running" ? redraw() : null), 500);
  const myView = viewId;
  $("cancel-job").onclick = () => api(`/api/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" });
  follow(`/ws/progress/${encodeURIComponent(jobId)}`, () => ({ after: state.lastSeq }), (event) => {
    if (event.seq <= state.lastSeq) return;      // already applied before a reconnect
    apply(state, event);
    redraw();
  }, (code, reason) => {
    if (code === 4410) { state = newJobState(); return false; }   // replay from the earliest
    if (code === 1000 || code === 4404 || code === 4400 || myView !== viewId) {
      clearInterval(ticker);
      if (code === 4404) $("job-meta").textContent = "no such job";
      if (code === 4400) $("job-meta").textContent = reason;
      redraw();
      return true;
    }
    return false;
  });
}

function renderJob(state) {
  $("job-status").textContent = state.status;
  $("job-status").className = `status ${state.status}`;
  $("job-meta").textContent = [state.workflow, state.project].filter(Boolean).join(" · ");
  $("cancel-job").hidden = state.status !== "running";
  $("finding-count").textContent = String(state.findings.length);

  const now = state.end ?? Math.max(Date.now() / 1000, state.start ?? 0);
  const t0 = state.start ?? now;
  const span = Math.max(now - t0, 0.001);
  const rows = [];
  const phases = [...state.units.values()].filter((u) => u.kind === "phase");
  for (const phase of phases) {
    rows.push(timelineRow(phase, t0, span, now));
    for (const hook of state.units.values()) {
      if (hook.kind === "hook" && hook.phase === phase.name) rows.push(timelineRow(hook, t0, span, now));
    }
  }
  $("timeline").replaceChildren(...rows);

  const { done, total, failed } = state.tests;
  const bar = $("tests-bar");
  bar.style.width = total ? `${Math.min(100, (100 * done) / total)}%` : done ? "100%" : "0";
  bar.classList.toggle("failing", failed > 0);
  $("tests-text").textContent = done || total
    ? `${done}${total ? ` / ${total}` : ""} tests · ${failed} failing` : "no tests yet";

  $("findings").replaceChildren(...state.findings.slice(0, 1000).map((f) => el("tr", {},
    el("td", {}, f.hook), el("td", { class: "loc" }, `${f.path}:${f.line ?? ""}`),
    el("td", {}, el("code", {}, f.code || "")), el("td", {}, f.message || ""))));
}

function timelineRow(unit, t0, span, now) {
  const duration = unit.duration ?? Math.max(now - unit.start, 0);
  const seg = el("div", { class: `seg ${unit.status}` });
  seg.style.left = `${(100 * (unit.start - t0)) / span}%`;
  seg.style.width = `${Math.max((100 * duration) / span, 0.3)}%`;
  seg.title = `${unit.name}: ${unit.status} ${fmt(duration)}`;
  return el("div", { class: `row ${unit.kind}`, "data-unit": unit.name, "data-kind": unit.kind, "data-status": unit.status },
    el("span", { class: "label" }, unit.name, " ", el("span", { class: `status ${unit.status}` }, unit.status)),
    el("div", { class: "track" }, seg),
    el("span", { class: "dur" }, fmt(duration)));
}

// ---- navigation and job start ---------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/job\/(.+)$/);
  if (match) showJob(decodeURIComponent(match[1]));
  else showList();
}

$("start-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("start-error").textContent = "";
  const body = { project: $("start-project").value, workflow: $("start-workflow").value };
  const response = await api("/api/jobs", { method: "POST", body: JSON.stringify(body) });
  const answer = await response.json();
  if (response.status === 202) location.hash = `#/job/${encodeURIComponent(answer.job_id)}`;
  else $("start-error").textContent = answer.error;
});

window.addEventListener("hashchange", route);
route();
