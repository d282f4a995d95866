// Insights: phase and hook durations (p50/p95, trend), queued time, cache hits, failure rates,
// the slowest and the flaky tests over a project's last N jobs, from GET /api/stats.

import { $, el, fmt, setText } from "./dom.js";
import { answer, api, leaveView } from "./net.js";

const percent = (x) => (x == null ? "—" : `${Math.round(100 * x)} %`);
const seconds = (x) => (x == null ? "—" : fmt(x));

// A trend is newer median / older median: said in words and arrows, not colour alone.
function trend(ratio) {
  if (ratio == null) return el("span", { class: "muted", title: "fewer than 4 runs" }, "—");
  if (ratio > 1.05) return el("span", { class: "trend slower", title: "slower lately" }, `▲ ${ratio.toFixed(2)}×`);
  if (ratio < 0.95) return el("span", { class: "trend faster", title: "faster lately" }, `▼ ${ratio.toFixed(2)}×`);
  return el("span", { class: "trend", title: "steady" }, `≈ ${ratio.toFixed(2)}×`);
}

function table(caption, head, rows) {
  // A focusable region: on a phone the wide tables scroll sideways, by keyboard too.
  return el("div", { class: "table-wrap", tabIndex: 0, role: "region", "aria-label": caption }, el("table", { class: "stats" },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", class: h === "phase" ? "phase-col" : null }, h)))),
    el("tbody", {}, ...(rows.length ? rows
      : [el("tr", {}, el("td", { class: "muted", colSpan: head.length }, "none"))]))));
}

function durationBar(p50, p95, longest) {
  const share = (x) => `${longest ? Math.min(100, (100 * (x || 0)) / longest) : 0}%`;
  const bar = el("span", { class: "dbar", "aria-hidden": "true" },
    el("span", { class: "p95" }), el("span", { class: "p50" }));
  bar.lastChild.style.width = share(p50);
  bar.firstChild.style.width = share(p95);
  return el("td", { class: "bar-cell" }, bar);
}

export async function showInsights(show, params) {
  leaveView();
  show("insights-view");
  document.title = "Insights · spruce";
  const form = $("stats-form");
  if (params.has("project")) $("stats-project").value = params.get("project");
  if (params.has("jobs")) $("stats-jobs").value = params.get("jobs");
  form.onsubmit = (e) => {
    e.preventDefault();
    const query = new URLSearchParams();
    if ($("stats-project").value.trim()) query.set("project", $("stats-project").value.trim());
    if ($("stats-jobs").value) query.set("jobs", $("stats-jobs").value);
    location.hash = `#/insights?${query}`;
  };
  setText($("stats-state"), "loading…");
  $("stats").replaceChildren();
  await projects();
  const query = new URLSearchParams();
  for (const key of ["project", "jobs"]) if (params.get(key)) query.set(key, params.get(key));
  let response;
  try {
    response = await api(`/api/stats?${query}`);
  } catch (exc) {
    setText($("stats-state"), `Could not reach the server: ${exc.message}`);
    return;
  }
  const body = await answer(response);
  if (!response.ok) {
    setText($("stats-state"), response.status === 404 && !body.error?.includes("project")
      ? "This server has no insights endpoint (GET /api/stats)." : `No insights: ${body.error}`);
    return;
  }
  render(body);
}

async function projects() {
  try {
    const body = await (await api("/api/jobs")).json();
    const seen = [...new Set(body.jobs.map((job) => job.project).filter(Boolean))];
    $("stats-projects").replaceChildren(...seen.map((p) => el("option", { value: p })));
  } catch { /* suggestions only */ }
}

export function render(stats) {
  const jobs = stats.jobs ?? 0;
  setText($("stats-state"), `${jobs} ${jobs === 1 ? "job" : "jobs"} · ${stats.project || "all projects"}`);
  const hooks = [...(stats.hooks || [])].sort((a, b) => (b.p50 ?? 0) - (a.p50 ?? 0));
  const longest = Math.max(0, ...hooks.map((h) => h.p95 ?? 0), ...(stats.phases || []).map((p) => p.p95 ?? 0));
  const parts = [
    table("Phases", ["phase", "runs", "p50", "p95", "", "trend"], (stats.phases || []).map((p) => el("tr", {},
      el("td", {}, p.name), el("td", { class: "num" }, String(p.runs)), el("td", { class: "num" }, seconds(p.p50)),
      el("td", { class: "num" }, seconds(p.p95)), durationBar(p.p50, p.p95, longest), el("td", {}, trend(p.trend))))),
    table("Hooks, slowest first", ["hook", "phase", "runs", "p50", "p95", "", "queued p50", "cache hits", "failures", "trend"],
      hooks.map((h) => el("tr", {},
        el("td", { title: h.phase || "" }, h.id), el("td", { class: "phase-col" }, h.phase || ""),
        el("td", { class: "num" }, String(h.runs)),
        el("td", { class: "num" }, seconds(h.p50)), el("td", { class: "num" }, seconds(h.p95)),
        durationBar(h.p50, h.p95, longest), el("td", { class: "num" }, seconds(h.queued_p50)),
        el("td", { class: "num" }, percent(h.cache_hit_rate)), el("td", { class: "num" }, percent(h.failure_rate)),
        el("td", {}, trend(h.trend))))),
    table("Slowest tests", ["test", "runs", "p50", "max"], (stats.slowest_tests || []).map((t) => el("tr", {},
      el("td", { class: "loc" }, t.nodeid), el("td", { class: "num" }, String(t.runs)),
      el("td", { class: "num" }, seconds(t.p50)), el("td", { class: "num" }, seconds(t.max))))),
    table("Flaky tests (same inputs, different outcomes)", ["test", "passed", "failed", "last job"],
      (stats.flaky_tests || []).map((t) => el("tr", {},
        el("td", { class: "loc" }, t.nodeid), el("td", { class: "num" }, String(t.passed)),
        el("td", { class: "num" }, String(t.failed)),
        el("td", {}, t.last_job ? el("a", { href: `#/job/${encodeURIComponent(t.last_job)}` }, t.last_job) : "")))),
  ];
  $("stats").replaceChildren(...parts);
}
