// Small DOM and formatting helpers shared by the dashboard's views.

export const $ = (id) => document.getElementById(id);

// Builds an element: `attrs` keys are properties, except "class", "data-*" and "aria-*".
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

// Writes only on change, so live updates never disturb a selection inside unchanged text.
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function setAttr(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

export const fmt = (s) => (s == null ? "" : s < 10 ? `${s.toFixed(2)} s` : s < 600 ? `${s.toFixed(1)} s`
  : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
export const when = (t) => (t == null ? "" : dateTime.format(new Date(t * 1000)));

export function badge(status) {
  return el("span", { class: `status ${status}` }, status);
}
