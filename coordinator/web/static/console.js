// Backdesk console: small niceties on top of pages that work without JavaScript.
// Loaded as an ES module from /static/ (the Content-Security-Policy allows no inline
// script). Everything it shows is set through textContent, never as HTML.

import { startSlaClocks } from "./sla.js";
import { confirmForms } from "./confirm.js";

/** Times rendered in UTC by the server, shown in the browser's own time zone. */
function localTimes(root = document) {
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  for (const el of root.querySelectorAll("time.local[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) el.textContent = format.format(when);
  }
}

/**
 * Call the REST API with the console session: the cookie goes along by itself, and
 * changes carry the session's CSRF token in X-CSRF-Token, which the API requires.
 */
export async function api(method, path, body) {
  const token = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error(data?.error?.message ?? `HTTP ${response.status}`);
  return data;
}

localTimes();
startSlaClocks();
confirmForms();
window.backdesk = { api };
