// The trader's challenges and the plans to start one, each plan's rules in the server's words.
import { get, inWords, post } from "/api.js";
import { errorBox } from "/pages/common.js";
import { h, money, mount, table, when } from "/ui.js";

export async function homePage(go) {
  const [mine, plans] = await Promise.all([get("/api/challenges"), get("/api/plans")]);
  const err = errorBox();
  const start = async (plan, size) => {
    try {
      const c = await post("/api/challenges", { plan_id: plan.id, account_size: size, idempotency_key: crypto.randomUUID() });
      await post(`/api/challenges/${c.id}/start`);
      go(`#/c/${c.id}`);
    } catch (x) { err.textContent = inWords(x); }
  };
  const rows = mine.challenges.map((c) => h("tr", {},
    h("td", {}, h("a", { href: `#/c/${c.id}`, testid: "challenge-link" }, c.plan_name || c.plan_id)),
    h("td", {}, h("span", { class: `badge ${c.status}` }, c.status)),
    h("td", {}, money(c.balance)), h("td", {}, when(c.created_at))));
  mount(
    h("h1", {}, "Your challenges"),
    mine.challenges.length ? table(["Plan", "Status", "Balance", "Opened"], rows, "challenges") : h("p", { class: "muted" }, "None yet: start one below."),
    err,
    h("h1", {}, "Plans"),
    h("div", { class: "cards" }, plans.plans.filter((p) => p.phase === 1).map((p) => {
      // The rules in words at the chosen size, as the server writes them (each rule describes itself).
      const bySize = Object.fromEntries((p.rules_by_size || []).map((r) => [r.account_size, r.rules]));
      const list = h("ul", { testid: `rules-${p.id}` });
      const show = (s) => { list.replaceChildren(...(bySize[s] || []).map((text) => h("li", {}, text))); };
      const size = h("select", { "aria-label": `Account size for ${p.name}`, onchange: () => show(size.value) },
        p.account_sizes.map((s) => h("option", { value: s }, money(s))));
      show(p.account_sizes[0]);
      return h("section", { class: "panel", testid: `plan-${p.id}` },
        h("h2", {}, p.name),
        h("p", { class: "muted" }, p.description),
        list,
        h("div", { class: "row" }, h("label", {}, "Account size", size),
          h("button", { class: "primary", type: "button", testid: `start-${p.id}`, onclick: () => start(p, size.value) }, "Start")));
    })));
}
