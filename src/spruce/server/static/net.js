// The server's HTTP API and WebSockets; a followed socket reopens by itself from its cursor.

import { $, setText } from "./dom.js";

const token = new URLSearchParams(location.search).get("token");
let socket = null;   // the one open WebSocket of the current view
let viewId = 0;      // bumps on every navigation, so stale sockets stop reconnecting

export function api(path, options = {}) {
  const headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(path, { ...options, headers });
}

// The JSON body of a response, or {error: text} when it is not JSON.
export async function answer(response) {
  const text = await response.text();
  try { return JSON.parse(text); } catch { return { error: text || `HTTP ${response.status}` }; }
}

function wsUrl(path, params) {
  const query = new URLSearchParams(params);
  if (token) query.set("token", token);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}?${query}`;
}

// Connection state in the header; a banner once the server has been gone for a moment.
function connection(state) {
  const node = $("connection");
  node.dataset.state = state;
  setText($("connection-text"), { live: "live", connecting: "connecting", lost: "offline", idle: "idle" }[state]);
  $("server-banner").hidden = state !== "lost";
}

export function currentView() { return viewId; }

// Opens a socket, and on an unexpected close reopens it with the params `resume()` gives.
// `onFinal(code, reason)` returns true when the view is done with the stream.
export function follow(path, resume, onEvent, onFinal) {
  const myView = viewId;
  let delay = 250;
  let failures = 0;
  const open = () => {
    if (myView !== viewId) return;
    connection(failures > 0 ? "lost" : "connecting");
    const ws = new WebSocket(wsUrl(path, resume()));
    socket = ws;
    ws.onopen = () => { connection("live"); delay = 250; failures = 0; };
    ws.onmessage = (msg) => { if (myView === viewId) onEvent(JSON.parse(msg.data)); };
    ws.onclose = (e) => {
      if (myView !== viewId) return;
      if (onFinal(e.code, e.reason)) { connection("idle"); return; }   // the view decided
      failures += 1;
      connection(failures > 1 || e.code === 1006 ? "lost" : "connecting");
      setTimeout(open, delay);                      // 1001/1006/1011/1012/1013/4008: resume
      delay = Math.min(delay * 2, 5000);
    };
  };
  open();
}

export function leaveView() {
  viewId += 1;
  if (socket) socket.close();
  socket = null;
  connection("idle");
}
