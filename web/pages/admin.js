// The operators' desk: challenges by risk score (highest first, across every challenge), the
// unacknowledged alerts, users (find by email, role, disable), the rule packs and the plans sold on
// them (a new one from a form); each list a page at a time.
import { get, inWords, post, user } from "/api.js";
import { errorBox } from "/pages/common.js";
import { h, money, mount, pagedTable, when } from "/ui.js";

const PAGE = 25;
const q = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "")).toString();

export async function adminPage() {
  if (user()?.role !== "ADMIN") { mount(h("p", { class: "error" }, "Operators only.")); return; }
  const err = errorBox();

  const scores = pagedTable(["Score", "Challenge", "Status", "Equity"], async (token) => {
    const page = await get(`/api/risk/scores?${q({ order_by: "-score", page_size: PAGE, page_token: token })}`);
    const ids = page.scores.map((s) => s.challenge_id);
    // The page's challenges in one request, whoever owns them.
    const found = ids.length ? (await get(`/api/challenges?${ids.map((id) => `challenge_ids=${id}`).join("&")}&page_size=${PAGE}`)).challenges : [];
    const byId = Object.fromEntries(found.map((c) => [c.id, c]));
    return {
      next: page.next_page_token,
      rows: page.scores.map((s) => h("tr", {},
        h("td", {}, String(s.score)), h("td", {}, h("a", { href: `#/c/${s.challenge_id}` }, byId[s.challenge_id]?.plan_name || s.challenge_id)),
        h("td", {}, byId[s.challenge_id]?.status || "—"), h("td", {}, money(byId[s.challenge_id]?.current_equity)))),
    };
  }, "risk-table");

  const alerts = pagedTable(["Raised", "Severity", "Message", ""], async (token) => {
    const page = await get(`/api/risk/alerts?${q({ unacknowledged_only: "true", page_size: PAGE, page_token: token })}`);
    return {
      next: page.next_page_token,
      rows: page.alerts.map((a) => {
        const row = h("tr", {}, h("td", {}, when(a.created_at)), h("td", {}, a.severity), h("td", {}, a.message),
          h("td", {}, h("button", { type: "button", onclick: async () => {
            try { await post(`/api/risk/alerts/${a.id}/ack`); row.remove(); } catch (x) { err.textContent = inWords(x); }
          } }, "Acknowledge")));
        return row;
      }),
    };
  }, "alert-desk");

  const usersTable = (search) => pagedTable(["Email", "Role", "Disabled", "Since", ""], async (token) => {
    const page = await get(`/api/auth/users?${q({ email_contains: search, page_size: PAGE, page_token: token })}`);
    return { next: page.next_page_token, rows: page.users.map(userRow) };
  }, "users");
  const userRow = (u) => {
    const self = u.id === user().id; // an operator cannot lock themself out
    const state = h("td", {}, u.disabled ? "yes" : "no");
    const toggle = h("button", { type: "button", disabled: self, onclick: async () => {
      try {
        const r = await post(`/api/auth/users/${u.id}/disabled`, { disabled: !u.disabled });
        u.disabled = r.disabled; state.textContent = u.disabled ? "yes" : "no"; toggle.textContent = u.disabled ? "Enable" : "Disable";
      } catch (x) { err.textContent = inWords(x); }
    } }, u.disabled ? "Enable" : "Disable");
    const role = h("select", { "aria-label": `Role of ${u.email}`, testid: "role", disabled: self, onchange: async () => {
      try { u.role = (await post(`/api/auth/users/${u.id}/role`, { role: role.value })).role; }
      catch (x) { err.textContent = inWords(x); role.value = u.role; }
    } }, ["TRADER", "ADMIN"].map((r) => h("option", { value: r, selected: r === u.role }, r.toLowerCase())));
    return h("tr", {}, h("td", {}, u.email), h("td", {}, role), state, h("td", {}, when(u.created_at)), h("td", {}, toggle));
  };
  let users = usersTable("");
  const usersHolder = h("div", {}, users.el);
  const search = h("input", { type: "search", "aria-label": "Find users by email", placeholder: "Find by email", testid: "user-search",
    onchange: async () => { users = usersTable(search.value.trim()); await users.ready; usersHolder.replaceChildren(users.el); } });

  const packs = (await get("/api/rule-packs")).rule_packs;
  const plans = h("ul", { testid: "plans" });
  const listPlans = async () => plans.replaceChildren(...(await get("/api/plans?page_size=200")).plans.map((p) =>
    h("li", {}, `${p.name} (${p.id}): ${p.rule_pack} v${p.rule_pack_version}, phase ${p.phase}, ${p.account_sizes.map(money).join(" / ")} ${p.currency}`)));
  await listPlans();
  // A new plan on a published pack: the service checks every size against the pack's rules.
  const planErr = errorBox();
  const field = (label, name, extra = {}) => h("label", {}, label, h("input", { name, required: true, ...extra }));
  const planForm = h("form", { testid: "plan-form", onsubmit: async (e) => {
    e.preventDefault();
    planErr.textContent = "";
    const v = Object.fromEntries(new FormData(planForm));
    const [pack, version] = v.pack.split("@");
    try {
      await post("/api/plans", { id: v.id, name: v.name, rule_pack: pack, rule_pack_version: Number(version), phase: Number(v.phase),
        account_sizes: v.sizes.split(",").map((x) => x.trim()).filter(Boolean), currency: v.currency, description: v.description });
      planForm.reset();
      await listPlans();
    } catch (x) { planErr.textContent = inWords(x); }
  } },
  h("div", { class: "row" }, field("Id", "id", { maxlength: "64", pattern: "[a-z0-9\\-]+" }), field("Name", "name")),
  h("div", { class: "row" },
    h("label", {}, "Rule pack", h("select", { name: "pack" }, packs.map((p) => h("option", { value: `${p.id}@${p.version}` }, `${p.name} (v${p.version})`)))),
    field("Phase", "phase", { type: "number", min: "1", value: "1" })),
  h("div", { class: "row" }, field("Account sizes", "sizes", { placeholder: "50000.00, 100000.00" }), field("Currency", "currency", { value: "USD", maxlength: "3" })),
  h("label", {}, "Description", h("textarea", { name: "description", rows: "2" })),
  h("button", { class: "primary", type: "submit" }, "Add plan"), planErr);
  await Promise.all([scores.ready, alerts.ready, users.ready]);
  mount(
    h("h1", {}, "Operations"),
    err,
    h("section", { class: "panel" }, h("h2", {}, "Challenges by risk score"), scores.el),
    h("section", { class: "panel" }, h("h2", {}, "Alert desk"), alerts.el),
    h("section", { class: "panel" }, h("h2", {}, "Users"), search, usersHolder),
    h("section", { class: "panel" }, h("h2", {}, "Rule packs"), h("ul", {}, packs.map((p) => h("li", {}, `${p.name} (v${p.version})`)))),
    h("section", { class: "panel" }, h("h2", {}, "Plans"), plans, h("h2", {}, "New plan"), planForm));
}
