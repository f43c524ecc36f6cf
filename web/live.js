// Server-Sent Events, with the state shown to the trader. The browser's EventSource reconnects
// by itself and sends the last event id it saw (Last-Event-ID): the stream resumes after it,
// nothing lost and nothing twice. The access token travels in the HttpOnly cookie.

const streams = new Set();

function showStatus() {
  const el = document.getElementById("live-status");
  if (!el) return;
  const down = [...streams].filter((s) => s.down);
  el.textContent = streams.size === 0 ? "" : down.length ? "Live updates interrupted — reconnecting…" : "Live";
  el.classList.toggle("down", down.length > 0);
  el.dataset.state = streams.size === 0 ? "" : down.length ? "down" : "live";
}

export function follow(url, handlers) {
  const es = new EventSource(url, { withCredentials: true });
  const s = { es, down: false };
  streams.add(s);
  es.onopen = () => { s.down = false; showStatus(); };
  es.onerror = () => { s.down = es.readyState !== EventSource.OPEN; showStatus(); };
  for (const [type, fn] of Object.entries(handlers)) {
    es.addEventListener(type, (ev) => fn(ev.data ? JSON.parse(ev.data) : {}, ev));
  }
  es.addEventListener("end", () => stop(s)); // the challenge has ended: nothing more will come
  showStatus();
  return () => stop(s);
}

function stop(s) {
  s.es.close();
  streams.delete(s);
  showStatus();
}

export function stopAll() {
  for (const s of [...streams]) stop(s);
}
