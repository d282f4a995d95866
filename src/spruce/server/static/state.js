// A job's picture, folded from its event stream (docs/events.md). Units are placed by their
// timestamps, never by arrival order: phases may overlap and the suite may start early.

export const END = new Set(["workflow_completed", "workflow_failed", "workflow_cancelled"]);
const HOOK_END = new Set(["hook_completed", "hook_failed", "hook_skipped"]);

export function newJobState() {
  return {
    lastSeq: 0, status: null, missing: null, start: null, end: null, reason: null,
    workflow: "", project: "", planned: [],
    units: new Map(),    // step_id -> unit (phase or hook)
    tests: { done: 0, total: null, failed: 0, skipped: 0, final: false, selection: null },
    failures: new Map(), // nodeid -> failing test case
    endedHooks: [],      // hook units whose end arrived since the view last took them
  };
}

function newUnit(step, kind, name, phase, start, status) {
  return {
    step, kind, name, phase, start, end: null, duration: null, queued: null, status,
    cached: false, reason: null, outputTail: "", details: [], findingsTotal: 0,
  };
}

function unitOf(state, event) {
  const step = event.step_id;
  let unit = state.units.get(step);
  if (!unit) {
    const isHook = event.event.startsWith("hook_");
    unit = newUnit(step, isHook ? "hook" : "phase", isHook ? event.data.hook : step,
      isHook ? event.data.phase : step, event.timestamp, "running");
    state.units.set(step, unit);
  } else if (unit.start == null) {   // planned, and now under way
    unit.start = event.timestamp;
    unit.status = "running";
  }
  return unit;
}

// What the job will run, before it runs: rows marked "pending", without a bar.
function plan(state, data) {
  state.planned = data.phases || [];
  for (const phase of state.planned) {
    if (phase !== "config" && !state.units.has(phase)) {
      state.units.set(phase, newUnit(phase, "phase", phase, phase, null, "pending"));
    }
  }
  for (const hook of data.hooks || []) {
    const step = `${hook.phase}/${hook.id}`;
    if (!state.units.has(step)) state.units.set(step, newUnit(step, "hook", hook.id, hook.phase, null, "pending"));
  }
}

function endUnit(state, unit, event) {
  const { data } = event;
  unit.status = data.status;
  unit.end = event.timestamp;
  unit.duration = data.duration ?? 0;
  // `duration` is the running time only (a wait for a CPU slot is `queued`), up to the end
  // event: that places the bar, whatever the start event said.
  if (unit.duration > 0) unit.start = unit.end - unit.duration;
  if (typeof data.queued === "number") unit.queued = data.queued;
  unit.cached = Boolean(data.cached);
  unit.reason = data.reason ?? null;
  if (HOOK_END.has(event.event)) {
    unit.outputTail = data.output_tail || "";
    unit.details = data.details || [];
    unit.findingsTotal = Math.max(data.findings_total ?? data.findings ?? 0, unit.details.length);
    unit.truncated = Boolean(data.findings_truncated || data.details_truncated)
      || unit.findingsTotal > unit.details.length;
    state.endedHooks.push(unit);
  }
}

function addCase(state, data) {
  const tests = state.tests;
  if (!tests.final) {
    tests.done = data.done ?? tests.done + 1;
    tests.total = data.total ?? tests.total;
    if (data.outcome === "failed" || data.outcome === "error") tests.failed += 1;
    if (data.outcome === "skipped") tests.skipped += 1;
  }
  if (data.outcome === "failed" || data.outcome === "error") {
    state.failures.set(data.nodeid, { ...state.failures.get(data.nodeid), ...data });
  }
}

export function apply(state, event) {
  const { data } = event;
  const kind = event.event;
  const step = event.step_id;
  state.start = Math.min(state.start ?? event.timestamp, event.timestamp);
  state.status ??= "running";
  if (kind === "workflow_session_initializing") {
    state.workflow = data.workflow; state.project = data.project;
  } else if (kind === "workflow_session_ready") {
    plan(state, data);
  } else if (END.has(kind)) {
    state.status = data.status || kind.replace("workflow_", "");
    state.end = event.timestamp;
    state.reason = data.reason ?? null;
    for (const unit of state.units.values()) if (unit.status === "pending") unit.status = "not run";
  } else if (kind === "test_case_completed") {
    addCase(state, data);
  } else if (step && step !== "quality" && !kind.startsWith("hook_strategy")) {
    const unit = unitOf(state, event);
    if (kind.endsWith("_started")) {
      unit.start = event.timestamp - (data.began_early || 0);
      if (typeof data.queued === "number") unit.queued = data.queued;   // the wait before it ran
      if (kind === "test_phase_started") state.tests.total = data.total ?? state.tests.total;
    } else if (data.status) {
      endUnit(state, unit, event);
    }
    if (kind.startsWith("test_phase_") && data.total != null && data.status) {
      state.tests = {
        done: data.total, total: data.total, failed: (data.failed || 0) + (data.errors || 0),
        skipped: data.skipped || 0, final: true,
        // "109 of 6,425 tests run; 6,316 carried from job k3x9" when selection carried some
        selection: data.carried ? data.selection : null,
      };
    }
  }
  state.lastSeq = event.seq;
}

// The span the timeline shows: from the earliest start (queue included) to the end or now.
export function span(state, now) {
  let t0 = state.start ?? now;
  let t1 = state.end ?? now;
  for (const unit of state.units.values()) {
    if (unit.start == null) continue;   // planned, not started
    t0 = Math.min(t0, unit.start - (unit.queued || 0));
    if (unit.end != null) t1 = Math.max(t1, unit.end);
  }
  return { t0, t1: Math.max(t1, t0 + 0.001) };
}
