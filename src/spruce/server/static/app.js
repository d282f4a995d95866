// spruce dashboard: the job list, a live job page and insights, routed by the URL's hash.
// Views follow the server's event streams and reconnect by themselves from their cursor.

import { $ } from "./dom.js";
import { showInsights } from "./insights.js";
import { showJob } from "./job.js";
import { showList } from "./list.js";
import { answer, api } from "./net.js";

const VIEWS = ["list-view", "job-view", "insights-view"];

function show(id) {
  for (const view of VIEWS) $(view).hidden = view !== id;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === id) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  const hash = location.hash;
  const job = hash.match(/^#\/job\/(.+)$/);
  if (job) return showJob(show, safeDecode(job[1]));
  if (hash.startsWith("#/insights")) return showInsights(show, new URLSearchParams(hash.split("?")[1] || ""));
  return showList(show);
}

function safeDecode(text) {
  try { return decodeURIComponent(text); } catch { return text; }
}

$("start-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("start-error").textContent = "";
  const body = { project: $("start-project").value, workflow: $("start-workflow").value };
  try {
    const response = await api("/api/jobs", { method: "POST", body: JSON.stringify(body) });
    const reply = await answer(response);
    if (response.status === 202) location.hash = `#/job/${encodeURIComponent(reply.job_id)}`;
    else $("start-error").textContent = reply.error;
  } catch (exc) {
    $("start-error").textContent = `Could not reach the server: ${exc.message}`;
  }
});

window.addEventListener("hashchange", route);
route();
