// Live SLA clocks: every element with data-due counts down to its deadline, turns
// amber in the last 30 minutes and red ("breached") once it has passed.

const SOON_MS = 30 * 60 * 1000;

export function formatLeft(ms) {
  const minutes = Math.max(0, Math.floor(ms / 60000));
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  if (days) return hours ? `${days} d ${hours} h` : `${days} d`;
  if (hours) return mins ? `${hours} h ${mins} min` : `${hours} h`;
  return `${mins} min`;
}

function update(el, now) {
  const due = Date.parse(el.dataset.due);
  if (Number.isNaN(due)) return;
  const left = due - now;
  const breached = el.classList.contains("sla-breached") || left <= 0;
  const state = breached ? "breached" : left <= SOON_MS ? "soon" : "ok";
  el.classList.remove("sla-ok", "sla-soon", "sla-breached");
  el.classList.add(`sla-${state}`);
  const text = el.querySelector(".sla-text");
  if (text) text.textContent = breached ? "breached" : `${formatLeft(left)} left`;
}

export function startSlaClocks(root = document) {
  const clocks = [...root.querySelectorAll(".sla[data-due]")];
  if (!clocks.length) return;
  const tick = () => {
    const now = Date.now();
    for (const el of clocks) update(el, now);
  };
  tick();
  setInterval(tick, 15000);
}
