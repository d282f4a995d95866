// One job's page: timeline, test progress, failing tests and findings, updated in place as
// events arrive (never rebuilt), so a selection or the keyboard focus survive live updates.

import { $, el, fmt, setAttr, setText, when } from "./dom.js";
import { Findings } from "./findings.js";
import { answer, api, currentView, follow, leaveView } from "./net.js";
import { apply, newJobState, span } from "./state.js";

const JOB_ID = /^[A-Za-z0-9._-]{1,64}$/;
const QUIET = new Set(["passed", "running"]);   // statuses whose reason needs no line of its own

export function showJob(show, jobId) {
  leaveView();
  show("job-view");
  setText($("job-title"), jobId);
  setText($("cancel-error"), "");
  $("timeline").replaceChildren();
  $("failing-tests").replaceChildren();
  let state = newJobState();
  const view = new JobView(jobId);
  if (!JOB_ID.test(jobId)) {
    state.missing = "Invalid job id: use 1–64 characters from A–Z, a–z, 0–9, '.', '_' and '-'.";
    view.render(state);
    return;
  }
  view.render(state);
  const myView = currentView();
  let pending = false;
  const redraw = () => {
    if (pending || myView !== currentView()) return;   // another view owns the page now
    pending = true;
    requestAnimationFrame(() => { pending = false; view.render(state); });
  };
  // Running bars grow with the clock, not only with events.
  const ticker = setInterval(() => {
    if (myView !== currentView()) clearInterval(ticker);
    else if (state.status === "running") redraw();
  }, 500);
  $("cancel-job").onclick = () => cancel(jobId);
  follow(`/ws/progress/${encodeURIComponent(jobId)}`, () => ({ after: state.lastSeq }), (event) => {
    if (event.seq <= state.lastSeq) return;      // already applied before a reconnect
    apply(state, event);
    redraw();
  }, (code, reason) => {
    if (code === 4410) { state = newJobState(); view.reset(); return false; }   // replay anew
    if (code === 1000 || code === 4404 || code === 4400) {
      clearInterval(ticker);
      if (code === 4404) state.missing = `No job with id “${jobId}” on this server.`;
      if (code === 4400) state.missing = reason || "Invalid job id.";
      if (code === 1000) view.loadCases(jobId, state).then(redraw);
      redraw();
      return true;
    }
    return false;
  });
}

async function cancel(jobId) {
  const button = $("cancel-job");
  button.disabled = true;
  setText($("cancel-error"), "");
  try {
    const response = await api(`/api/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" });
    const body = await answer(response);
    if (!response.ok) setText($("cancel-error"), `Cancel failed: ${body.error || response.statusText}`);
  } catch (exc) {
    setText($("cancel-error"), `Cancel failed: ${exc.message}`);
  } finally {
    button.disabled = false;
  }
}

class JobView {
  constructor(jobId) {
    this.jobId = jobId;
    this.rows = new Map();     // step_id -> {row, parts}
    this.groups = new Map();   // phase name -> group element
    this.cases = new Map();    // nodeid -> element
    this.findings = new Findings($("findings"));
    this.announced = null;
  }

  reset() {
    this.rows.clear(); this.groups.clear(); this.cases.clear();
    $("timeline").replaceChildren(); $("failing-tests").replaceChildren();
    this.findings.reset();
  }

  render(state) {
    const status = state.missing ? "not found" : state.status ?? "connecting";
    const badge = $("job-status");
    setText(badge, status);
    setAttr(badge, "class", `status ${state.missing ? "missing" : status}`);
    $("job-body").hidden = Boolean(state.missing);
    $("finding-summary").hidden = Boolean(state.missing);
    $("cancel-job").hidden = state.status !== "running" || Boolean(state.missing);
    setText($("job-meta"), state.missing
      ?? [state.workflow, state.project, state.start && `started ${when(state.start)}`].filter(Boolean).join(" · "));
    setText($("job-reason"), state.reason && !QUIET.has(state.status) ? state.reason : "");
    document.title = `${state.missing ? "not found" : status} · ${this.jobId} · spruce`;
    this.announce(state.missing ? "job not found" : state.status);
    if (state.missing) return;

    const now = state.end ?? Date.now() / 1000;
    const { t0, t1 } = span(state, now);
    for (const unit of state.units.values()) this.unitRow(state, unit, t0, t1 - t0, now);
    this.tests(state);
    for (const unit of state.endedHooks.splice(0)) this.findings.addHook(unit, state.project);
    setText($("finding-count"), String(this.findings.total));
  }

  announce(status) {
    if (status == null || status === this.announced) return;
    this.announced = status;
    setText($("announcer"), `Job ${this.jobId}: ${status}`);
  }

  group(state, phase) {
    let group = this.groups.get(phase);
    if (!group) {
      group = el("div", { class: "phase-group", "data-phase": phase });
      this.groups.set(phase, group);
      // Planned phases keep the workflow's order; others follow in the order they appear.
      const rank = (name) => { const i = state.planned.indexOf(name); return i < 0 ? 1e9 : i; };
      const after = [...this.groups.values()].find((g) => g !== group && rank(g.dataset.phase) > rank(phase));
      $("timeline").insertBefore(group, after || null);
    }
    return group;
  }

  unitRow(state, unit, t0, width, now) {
    let entry = this.rows.get(unit.step);
    if (!entry) {
      const parts = {
        name: el("span", { class: "name", title: unit.name }, unit.name),
        badge: el("span", { class: "status" }),
        note: el("span", { class: "note" }),
        wait: el("div", { class: "seg queued" }),
        run: el("div", { class: "seg" }),
        dur: el("span", { class: "dur" }),
        reason: el("div", { class: "reason", hidden: true }),
      };
      const row = el("div", { class: `row ${unit.kind}`, "data-unit": unit.name, "data-kind": unit.kind },
        el("span", { class: "label" }, parts.name, parts.badge, parts.note),
        el("div", { class: "track", "aria-hidden": "true" }, parts.wait, parts.run),
        parts.dur, parts.reason);
      entry = { row, parts };
      this.rows.set(unit.step, entry);
      const group = this.group(state, unit.phase);
      if (unit.kind === "phase") group.prepend(row); else group.append(row);
    }
    const { row, parts } = entry;
    setAttr(row, "data-status", unit.status);
    setText(parts.badge, unit.status);
    setAttr(parts.badge, "class", `status ${unit.start == null ? "pending" : unit.status}`);
    if (unit.start == null) {   // planned, not started yet (or never, once the job ended)
      parts.run.hidden = parts.wait.hidden = true;
      setText(parts.dur, "");
      return;
    }
    parts.run.hidden = false;
    setText(parts.note, unit.cached ? "cached" : "");
    const running = unit.duration ?? Math.max(now - unit.start, 0);
    const queued = unit.queued || 0;
    const at = (t) => Math.min(100, Math.max(0, (100 * (t - t0)) / width));
    const place = (seg, from, to) => {
      seg.style.left = `${at(from).toFixed(3)}%`;
      seg.style.width = `${Math.max(at(to) - at(from), 0).toFixed(3)}%`;
    };
    // A phase's bar holds its hooks, whatever the clocks of the processes said.
    const start = unit.kind === "phase" ? Math.min(unit.start, ...this.hookStarts(state, unit.name)) : unit.start;
    place(parts.run, start, unit.start + running);
    setAttr(parts.run, "class", `seg ${unit.status}`);
    parts.wait.hidden = queued <= 0;
    if (queued > 0) place(parts.wait, unit.start - queued, unit.start);
    const timing = `${unit.duration == null ? "running " : ""}${fmt(running)}`;
    setText(parts.dur, queued >= 0.005 ? `${timing} · waited ${fmt(queued)}` : timing);
    setAttr(row, "title", `${unit.name}: ${unit.status}, ran ${fmt(running)}${queued ? `, waited ${fmt(queued)} for a CPU slot` : ""}`);
    const reason = unit.reason && !QUIET.has(unit.status) ? unit.reason.split("\n").slice(-1)[0] : "";
    parts.reason.hidden = !reason;
    setText(parts.reason, reason);
  }

  hookStarts(state, phase) {
    return [...state.units.values()]
      .filter((u) => u.kind === "hook" && u.phase === phase && u.start != null).map((u) => u.start);
  }

  tests(state) {
    // A workflow without a test phase (fast, comprehensive) has no test section.
    $("tests-section").hidden = state.planned.length > 0 && !state.planned.includes("tests")
      && !state.units.has("tests");
    const { done, total, failed, skipped, final, selection } = state.tests;
    const bar = $("tests-bar");
    const share = total ? Math.min(100, (100 * done) / total) : done ? 100 : 0;
    bar.style.width = `${share}%`;
    bar.classList.toggle("failing", failed > 0);
    bar.classList.toggle("unknown-total", total == null && !final);   // not a share of a known whole
    const progress = $("tests-progress");
    setAttr(progress, "aria-valuenow", String(done));
    if (total != null) setAttr(progress, "aria-valuemax", String(total));
    setText($("tests-text"), done || total
      ? `${done}${total != null ? ` / ${total}` : ""} tests · ${failed} failing${skipped ? ` · ${skipped} skipped` : ""}`
      : state.status === "running" ? "no tests yet" : "no tests ran");
    const carried = $("tests-selection");
    carried.hidden = !selection;
    setText(carried, selection || "");
    for (const failure of state.failures.values()) this.failingTest(failure);
  }

  failingTest(failure) {
    let entry = this.cases.get(failure.nodeid);
    if (!entry) {
      const loc = el("code", { class: "loc" });
      const message = el("span", { class: "message" });
      const trace = el("pre", { class: "trace" });
      const node = el("details", { class: "case", open: this.cases.size < 5 },
        el("summary", {}, el("span", { class: `status ${failure.outcome === "error" ? "error" : "failed"}` },
          failure.outcome), " ", el("span", { class: "nodeid" }, failure.nodeid), " ", loc, " ", message),
        trace);
      entry = { node, loc, message, trace };
      this.cases.set(failure.nodeid, entry);
      $("failing-tests").append(node);
    }
    setText(entry.loc, failure.path ? `${failure.path}:${failure.line ?? ""}` : "");
    setText(entry.message, failure.message || "");
    setText(entry.trace, failure.longrepr || failure.message || "(no traceback reported)");
  }

  // At the end, the result document's test cases carry the tracebacks (`longrepr`).
  async loadCases(jobId, state) {
    try {
      const response = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
      if (!response.ok) return;
      const result = await response.json();
      for (const item of result.tests?.cases || []) {
        state.failures.set(item.nodeid, { outcome: "failed", ...state.failures.get(item.nodeid), ...item });
      }
    } catch { /* the live picture stays */ }
  }
}
