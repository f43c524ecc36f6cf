// Why a challenge failed: each breach's rule, what was observed and the prices behind it.
import { get } from "/api.js";
import { h, mount, when } from "/ui.js";

export async function breachPage(id) {
  const [detail, breaches] = await Promise.all([get(`/api/challenges/${id}`), get(`/api/challenges/${id}/breaches`)]);
  const c = detail.challenge;
  mount(
    h("h1", {}, `Why ${c.plan_name || "this challenge"} failed`),
    h("p", {}, h("a", { href: `#/c/${id}` }, "Back to the dashboard")),
    breaches.breaches.length === 0 ? h("p", { class: "muted" }, "No rule was broken.") :
      breaches.breaches.map((b) => {
        const o = b.observed || {};
        const prices = o.prices || {};
        return h("section", { class: "panel", testid: "breach" },
          h("h2", { testid: "breach-rule" }, `${b.rule.replace(/_/g, " ")} ${b.hard ? "— the challenge failed" : "— a soft breach"}`),
          h("p", {}, `At ${when(b.occurred_at)}.`),
          h("h2", {}, "The rule"), h("dl", { testid: "breach-parameters" }, Object.entries(b.parameters).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
          h("h2", {}, "What was observed"), h("dl", { testid: "breach-observed" }, Object.entries(o).filter(([k]) => k !== "prices")
            .map(([k, v]) => [h("dt", {}, k.replace(/_/g, " ")), h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))])),
          Object.keys(prices).length ? [h("h2", {}, "The prices that triggered it"), h("dl", { testid: "breach-prices" },
            Object.entries(prices).map(([sym, p]) => [h("dt", {}, sym), h("dd", {}, typeof p === "object" ? `bid ${p.bid} · ask ${p.ask}` : String(p))]))] : null);
      }));
}
