// The trader's challenges and the plans to start one, each pack's rules in words.
import { get, inWords, post } from "/api.js";
import { errorBox } from "/pages/common.js";
import { h, money, mount, table, when } from "/ui.js";

const pct = (p) => (p.pct !== undefined ? `${p.pct}%` : p.amount !== undefined ? money(p.amount) : "");

function ruleInWords(r) {
  const p = r.params || {};
  const strict = p.comparator === "beyond" ? " (reaching it is allowed; going past it fails)" : "";
  switch (r.kind) {
    case "daily_loss": return `Daily loss limit ${pct(p)} of the day's starting ${p.reference || "balance"}${strict}`;
    case "max_loss": return `Maximum loss ${pct(p)}, ${(p.mode || "static").replace("_", " ")}${strict}`;
    case "profit_target": return `Profit target ${pct(p)}`;
    case "min_trading_days": return `At least ${p.days} trading days`;
    case "min_profitable_days": return `At least ${p.days} profitable days`;
    case "consistency": return `No single day above ${Math.round(Number(p.share) * 100)}% of the total profit`;
    case "time_limit": return `${p.days} days to reach the target`;
    case "inactivity": return `Trade at least every ${p.days} days`;
    case "flat_by": return `Positions closed at ${p.at} each day`;
    case "max_contracts": return `At most ${p.contracts ?? p.lots ?? ""} contracts open`;
    default: return `${r.kind.replace(/_/g, " ")}: ${Object.entries(p).map(([k, v]) => `${k} ${v}`).join(", ")}`;
  }
}

export async function homePage(go) {
  const [mine, plans, packs] = await Promise.all([get("/api/challenges"), get("/api/plans"), get("/api/rule-packs")]);
  const packOf = Object.fromEntries(packs.rule_packs.map((p) => [`${p.id}@${p.version}`, p.definition]));
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
      const def = packOf[`${p.rule_pack}@${p.rule_pack_version}`];
      const rules = def?.phases?.[0]?.rules || [];
      const size = h("select", { "aria-label": `Account size for ${p.name}` }, p.account_sizes.map((s) => h("option", { value: s }, money(s))));
      return h("section", { class: "panel", testid: `plan-${p.id}` },
        h("h2", {}, p.name),
        h("p", { class: "muted" }, p.description),
        h("ul", {}, rules.map((r) => h("li", {}, ruleInWords(r)))),
        h("div", { class: "row" }, h("label", {}, "Account size", size),
          h("button", { class: "primary", type: "button", testid: `start-${p.id}`, onclick: () => start(p, size.value) }, "Start")));
    })));
}
