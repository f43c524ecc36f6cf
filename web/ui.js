// Small DOM helpers: elements are built, never parsed from strings (no innerHTML of data).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "testid") el.dataset.testid = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function mount(...nodes) {
  const app = document.getElementById("app");
  app.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  app.focus({ preventScroll: true });
}

const moneyFmt = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
export const money = (s) => (s === "" || s === undefined || s === null ? "—" : moneyFmt.format(Number(s)));

export function figure(label, value, testid) {
  return h("div", { class: "figure" }, h("div", { class: "label" }, label), h("div", { class: "value", testid }, value));
}

// A bar of how much of a limit is left: `left` of `size`.
export function bar(left, size, testid) {
  const share = size > 0 ? Math.max(0, Math.min(1, left / size)) : 0;
  const el = h("div", { class: `bar${share < 0.1 ? " bad" : share < 0.3 ? " warn" : ""}`, role: "progressbar",
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(share * 100)), testid },
    h("span"));
  el.firstChild.style.width = `${share * 100}%`; // CSSOM, not a style attribute: allowed by the CSP
  return el;
}

export function countdown(until) {
  const el = h("span", { class: "countdown" });
  const tick = () => {
    const ms = new Date(until).getTime() - Date.now();
    if (ms <= 0) { el.textContent = "now"; return; }
    const s = Math.floor(ms / 1000);
    el.textContent = `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m ${String(s % 60).padStart(2, "0")}s`;
  };
  tick();
  const id = setInterval(() => (el.isConnected ? tick() : clearInterval(id)), 1000);
  return el;
}

export const when = (t) => (t ? new Date(t).toLocaleString() : "—");

export function table(headers, rows, testid) {
  return h("div", { class: "scroll" }, h("table", { testid },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows)));
}

// A table filled a page at a time: `load(token)` answers { rows, next } (next: the next page's
// token, "" at the end); "More" asks for the next page. `ready` settles once the first is shown.
export function pagedTable(headers, load, testid) {
  const rows = table(headers, [], testid);
  const body = rows.querySelector("tbody");
  const more = h("button", { type: "button", testid: `${testid}-more`, hidden: true }, "More");
  const show = async (token) => {
    const page = await load(token);
    body.append(...page.rows);
    more.hidden = !page.next;
    more.onclick = () => show(page.next);
  };
  return { el: h("div", {}, rows, more), ready: show("") };
}
