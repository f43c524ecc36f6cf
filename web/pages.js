// The console's pages: log in, challenges and plans, a challenge's dashboard, why it failed,
// and the operators' desk. Each renders into <main> and subscribes to what it shows live.
import { ApiError, get, inWords, login, post, register, user } from "/api.js";
import { candles, line } from "/charts.js";
import { follow } from "/live.js";
import { bar, countdown, figure, h, money, mount, table, when } from "/ui.js";

const STALE_AFTER_MS = 10_000;

function errorBox() {
  return h("p", { class: "error", role: "alert", testid: "error" });
}

// --- log in ---------------------------------------------------------------------------------

export function loginPage(done) {
  const err = errorBox();
  const form = (title, fields, action, testid) => {
    const f = h("form", { testid, onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = "";
      const v = Object.fromEntries(new FormData(f));
      try { await action(v); done(); } catch (x) { err.textContent = inWords(x); }
    } }, h("h2", {}, title), ...fields, h("button", { class: "primary", type: "submit" }, title));
    return f;
  };
  const field = (label, name, type, extra = {}) => h("label", {}, label, h("input", { name, type, required: true, ...extra }));
  mount(
    h("h1", {}, "TradeSense"),
    h("div", { class: "grid" },
      h("section", { class: "panel" }, form("Log in", [
        field("Email", "email", "email", { autocomplete: "username" }),
        field("Password", "password", "password", { autocomplete: "current-password" }),
      ], (v) => login(v.email, v.password), "login-form")),
      h("section", { class: "panel" }, form("Register", [
        field("Name", "name", "text", { autocomplete: "name", required: false }),
        field("Email", "email", "email", { autocomplete: "email" }),
        field("Password (12 characters or more)", "password", "password", { autocomplete: "new-password", minlength: "12" }),
      ], (v) => register(v.email, v.password, v.name || ""), "register-form"))),
    err);
}

// --- challenges and plans -------------------------------------------------------------------

const pct = (p) => (p.pct !== undefined ? `${p.pct}%` : p.amount !== undefined ? money(p.amount) : "");

export function ruleInWords(r) {
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

// --- a challenge's dashboard ----------------------------------------------------------------

export async function dashboardPage(id, go) {
  const detail = await get(`/api/challenges/${id}`);
  const c = detail.challenge;
  const symbols = (await get("/api/market/symbols?page_size=500")).instruments;
  const err = errorBox();
  const bySymbol = Object.fromEntries(symbols.map((s) => [s.symbol, s]));
  let symbol = "BTCUSD" in bySymbol ? "BTCUSD" : symbols[0].symbol;

  const balance = h("span", {}, money(c.balance));
  const equity = h("span", { testid: "equity" }, money(c.current_equity));
  const statusBadge = h("span", { class: `badge ${c.status}`, testid: "status" }, c.status);
  const objective = (rule) => detail.objectives.find((o) => o.rule === rule);
  const dl = objective("daily_loss"), ml = objective("max_loss"), pt = objective("profit_target");
  // What is left of each loss limit follows the live equity: the equity above its floor.
  const dailyLeft = h("strong", { testid: "daily-left" }, dl ? money(dl.room_left) : ""), maxLeft = h("strong", { testid: "max-left" }, ml ? money(ml.room_left) : "");
  const dailyBar = h("div", {}, dl && bar(+dl.room_left, +dl.limit, "daily-bar")), maxBar = h("div", {}, ml && bar(+ml.room_left, +ml.limit, "max-bar"));
  const showEquity = (value) => {
    equity.textContent = money(value);
    const left = (floor, size, text, holder, testid) => {
      if (!floor || !size) return;
      const room = Math.max(0, Math.min(+size, +value - +floor));
      text.textContent = money(room.toFixed(2));
      holder.replaceChildren(bar(room, +size, testid));
    };
    if (dl) left(c.daily_loss_floor, dl.limit, dailyLeft, dailyBar, "daily-bar");
    if (ml) left(c.max_loss_floor, ml.limit, maxLeft, maxBar, "max-bar");
  };
  const limits = h("section", { class: "panel" }, h("h2", {}, "Limits"),
    dl && [h("div", {}, "Today's permitted loss left: ", dailyLeft, ` of ${money(dl.limit)}`), dailyBar],
    ml && [h("div", {}, "Maximum loss left: ", maxLeft, ` of ${money(ml.limit)}`), maxBar],
    pt && [h("div", {}, "Profit target: ", h("strong", {}, money(pt.current)), ` of ${money(pt.limit)}`), bar(+pt.current, +pt.limit, "target-bar")],
    h("ul", {}, detail.objectives.filter((o) => !["daily_loss", "max_loss", "profit_target"].includes(o.rule)).map((o) =>
      h("li", {}, `${o.rule.replace(/_/g, " ")}: ${o.current} of ${o.limit}${o.unit === "days" ? " days" : ""} (${o.state})`))));
  const clock = h("section", { class: "panel" }, h("h2", {}, "Clock"),
    h("dl", {},
      h("dt", {}, "Trading day"), h("dd", {}, c.trading_day || "—"),
      h("dt", {}, "Day resets at"), h("dd", {}, `${detail.reset_time.slice(0, 5)} ${detail.timezone}`),
      h("dt", {}, "Next reset in"), h("dd", { testid: "reset-countdown" }, c.next_reset_at ? countdown(c.next_reset_at) : "—"),
      detail.deadline_at && [h("dt", {}, "Time limit in"), h("dd", {}, countdown(detail.deadline_at))],
      c.paused_until && [h("dt", {}, "Paused until"), h("dd", {}, when(c.paused_until))]));
  const risk = h("section", { class: "panel" }, h("h2", {}, "Risk score"),
    h("div", { class: "figure" }, h("div", { class: "value", testid: "risk-score" }, detail.risk_score_available ? String(detail.risk_score) : "—")),
    h("ul", { testid: "risk-factors" }));
  const alerts = h("ul", { class: "alerts", testid: "alerts" });
  const breachLink = h("p", { hidden: c.status !== "FAILED" }, h("a", { href: `#/c/${id}/breach`, testid: "breach-link" }, "Why did this challenge fail?"));

  // The ticket: live bid/ask, the instrument's quantity steps, refusals in words.
  const bid = h("span", { class: "quote", testid: "bid" }, "—"), ask = h("span", { class: "quote", testid: "ask" }, "—");
  const age = h("span", { class: "muted", testid: "quote-age" });
  const qty = h("input", { type: "number", name: "quantity", testid: "quantity", "aria-label": "Quantity in lots" });
  const pick = h("select", { "aria-label": "Symbol", testid: "symbol" }, symbols.map((s) => h("option", { value: s.symbol, selected: s.symbol === symbol }, s.symbol)));
  const setSteps = () => { const s = bySymbol[symbol]; qty.step = s.quantity_step; qty.min = s.min_quantity; qty.max = s.max_quantity; qty.value = s.min_quantity; };
  setSteps();
  const order = async (side) => {
    err.textContent = "";
    try {
      const t = await post("/api/trades", { challenge_id: id, symbol, side, quantity: qty.value, idempotency_key: crypto.randomUUID() });
      if (t.challenge_status && t.challenge_status !== "ACTIVE") go(`#/c/${id}`);
      await refreshTables();
    } catch (x) { err.textContent = inWords(x); }
  };
  const live = c.status === "ACTIVE";
  const ticket = h("section", { class: "panel" }, h("h2", {}, "Trade"),
    h("div", { class: "row" }, h("label", {}, "Symbol", pick), h("label", {}, "Lots", qty)),
    h("p", {}, "Bid ", bid, " · Ask ", ask, " ", age),
    h("div", { class: "row" },
      h("button", { class: "buy", type: "button", testid: "buy", disabled: !live, onclick: () => order("BUY") }, "Buy"),
      h("button", { class: "sell", type: "button", testid: "sell", disabled: !live, onclick: () => order("SELL") }, "Sell")),
    err);

  const positions = h("div", {}), history = h("div", {});
  const chartEl = h("div", { class: "chart", testid: "chart" }), equityEl = h("div", { class: "chart small", testid: "equity-chart" });
  const metrics = h("div", { class: "figures", testid: "metrics" }), daily = h("div", {});

  mount(
    h("h1", {}, `${c.plan_name || c.plan_id} `, statusBadge),
    breachLink,
    h("section", { class: "panel wide" }, h("div", { class: "figures" },
      figure("Balance", balance), figure("Equity", equity), figure("Account size", money(c.initial_balance)),
      figure("Daily floor", money(c.daily_loss_floor)), figure("Max-loss floor", money(c.max_loss_floor)))),
    h("div", { class: "grid" }, limits, clock, risk, ticket,
      h("section", { class: "panel wide" }, h("h2", {}, symbol, " — 1 minute"), chartEl),
      h("section", { class: "panel wide" }, h("h2", {}, "Positions"), positions),
      h("section", { class: "panel wide" }, h("h2", {}, "Trades and journal"), history),
      h("section", { class: "panel" }, h("h2", {}, "Equity today"), equityEl),
      h("section", { class: "panel" }, h("h2", {}, "Metrics"), metrics, daily),
      h("section", { class: "panel" }, h("h2", {}, "Alerts"), alerts)));

  const bars = (await get(`/api/market/chart/${symbol}?interval=1m&limit=300`)).candles;
  let fills = [];
  const chart = candles(chartEl, bars, fills);

  async function refreshTables() {
    const [pos, trades] = await Promise.all([get(`/api/challenges/${id}/positions`), get(`/api/trades?challenge_id=${id}&page_size=50`)]);
    fills = trades.trades;
    chart.mark(fills.filter((t) => t.symbol === symbol));
    positions.replaceChildren(pos.positions.length ? table(["Symbol", "Side", "Lots", "Entry", "Mark", "Unrealized", "Fees", "Opened", ""],
      pos.positions.map((p) => h("tr", {}, h("td", {}, p.symbol), h("td", {}, p.side), h("td", {}, p.quantity), h("td", {}, p.avg_price),
        h("td", {}, p.mark_price), h("td", { testid: "upnl" }, money(p.unrealized_pnl)), h("td", {}, money(p.fees)), h("td", {}, when(p.opened_at)),
        h("td", {}, h("button", { type: "button", disabled: !live, testid: `close-${p.symbol}`, onclick: async () => {
          try { await post(`/api/challenges/${id}/positions/${p.symbol}/close`, { idempotency_key: crypto.randomUUID() }); await refreshTables(); }
          catch (x) { err.textContent = inWords(x); }
        } }, "Close")))), "positions") : h("p", { class: "muted" }, "No open positions."));
    history.replaceChildren(table(["Time", "Symbol", "Side", "Lots", "Price", "P&L", "Why", "Note"],
      trades.trades.map((t) => {
        const note = h("input", { value: t.note, "aria-label": `Note for the ${t.side} at ${t.price}`, onchange: (e) =>
          post(`/api/trades/${t.id}/journal`, { note: e.target.value }).catch((x) => { err.textContent = inWords(x); }) });
        return h("tr", {}, h("td", {}, when(t.executed_at)), h("td", {}, t.symbol), h("td", {}, t.side), h("td", {}, t.quantity),
          h("td", {}, t.price), h("td", {}, money(t.realized_pnl)), h("td", {}, t.breached_rule ? `${t.reason} (${t.breached_rule})` : t.reason), h("td", {}, note));
      }), "trades"));
  }

  async function refreshInsights() {
    const curve = await get(`/api/challenges/${id}/equity?interval=1m`);
    equityEl.replaceChildren();
    line(equityEl, curve.points.map((p) => ({ time: Math.floor(new Date(p.time).getTime() / 1000), value: +p.equity })));
    try {
      const m = await get(`/api/risk/metrics/${id}`);
      metrics.replaceChildren(figure("Closing trades", m.total_trades), figure("Win rate", `${Math.round(m.win_rate_ratio * 100)}%`),
        figure("Profit factor", m.profit_factor), figure("Best day", money(m.largest_winning_day)),
        figure("Max drawdown", `${(m.max_drawdown_ratio * 100).toFixed(2)}%`), figure("Sharpe", m.sharpe));
      daily.replaceChildren(table(["Day", "P&L", "Equity"], m.daily.map((d) => h("tr", {}, h("td", {}, d.date), h("td", {}, money(d.pnl)), h("td", {}, money(d.equity))))));
    } catch (x) { if (!(x instanceof ApiError && x.status === 404)) throw x; }
    const scores = (await get("/api/risk/scores")).scores.find((s) => s.challenge_id === id);
    if (scores) {
      risk.querySelector("[data-testid=risk-score]").textContent = String(scores.score);
      risk.querySelector("ul").replaceChildren(...scores.factors.map((f) => h("li", {}, `${f.name.replace(/_/g, " ")}: ${f.explanation}`)));
    }
    const known = (await get(`/api/risk/alerts?challenge_id=${id}`)).alerts;
    alerts.replaceChildren(...known.map(alertItem));
  }
  const alertItem = (a) => h("li", { class: a.severity }, `${when(a.created_at)} — ${a.message}`);

  await refreshTables();
  await refreshInsights();

  // Live: prices into the ticket and the chart; the challenge's events into the figures.
  let lastTick = 0;
  follow(`/api/market/stream?symbols=${symbol}`, { price: (p) => {
    bid.textContent = p.bid; ask.textContent = p.ask; lastTick = new Date(p.time).getTime(); chart.price(p);
  } });
  const staleTimer = setInterval(() => {
    if (!age.isConnected) { clearInterval(staleTimer); return; }
    const stale = lastTick && Date.now() - lastTick > STALE_AFTER_MS;
    age.textContent = stale ? "stale price" : ""; age.classList.toggle("stale", !!stale);
  }, 1000);
  follow(`/api/challenges/${id}/events/stream?after_sequence=${detail.last_event_sequence}`, {
    equity_updated: (e) => showEquity(e.equity_updated.equity),
    trade_executed: (e) => { balance.textContent = money(e.trade_executed.balance); showEquity(e.trade_executed.equity); refreshTables(); },
    breach: () => { breachLink.hidden = false; },
    day_rolled: () => go(location.hash), // new floors for the new day
    status_changed: (e) => {
      statusBadge.textContent = e.status_changed.to_status; statusBadge.className = `badge ${e.status_changed.to_status}`;
      for (const b of [...ticket.querySelectorAll("button"), ...positions.querySelectorAll("button")]) {
        b.disabled = e.status_changed.to_status !== "ACTIVE";
      }
      if (e.status_changed.to_status === "FAILED") breachLink.hidden = false;
    },
  });
  follow("/api/risk/alerts/stream", { alert: (a) => { if (a.challenge_id === id) alerts.prepend(alertItem(a)); } });
  pick.addEventListener("change", () => { symbol = pick.value; setSteps(); go(`#/c/${id}?s=${symbol}`); });
}

// --- why did it fail ------------------------------------------------------------------------

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

// --- operators ------------------------------------------------------------------------------

export async function adminPage() {
  if (user()?.role !== "ADMIN") { mount(h("p", { class: "error" }, "Operators only.")); return; }
  const [users, scores, alerts, packs, challenges] = await Promise.all([
    get("/api/auth/users?page_size=100"), get("/api/risk/scores?page_size=100"),
    get("/api/risk/alerts?unacknowledged_only=true&page_size=100"), get("/api/rule-packs"), get("/api/challenges?page_size=100")]);
  const status = Object.fromEntries(challenges.challenges.map((c) => [c.id, c]));
  const err = errorBox();
  const desk = h("div", {});
  const renderDesk = (list) => desk.replaceChildren(table(["Raised", "Severity", "Message", ""], list.map((a) => h("tr", {},
    h("td", {}, when(a.created_at)), h("td", {}, a.severity), h("td", {}, a.message),
    h("td", {}, h("button", { type: "button", onclick: async () => { await post(`/api/risk/alerts/${a.id}/ack`); renderDesk(list.filter((x) => x.id !== a.id)); } }, "Acknowledge")))), "alert-desk"));
  renderDesk(alerts.alerts);
  mount(
    h("h1", {}, "Operations"),
    h("section", { class: "panel" }, h("h2", {}, "Challenges by risk score"),
      table(["Score", "Challenge", "Status", "Equity"], [...scores.scores].sort((a, b) => b.score - a.score).map((s) => h("tr", {},
        h("td", {}, String(s.score)), h("td", {}, h("a", { href: `#/c/${s.challenge_id}` }, status[s.challenge_id]?.plan_name || s.challenge_id)),
        h("td", {}, status[s.challenge_id]?.status || "—"), h("td", {}, money(status[s.challenge_id]?.current_equity)))), "risk-table")),
    h("section", { class: "panel" }, h("h2", {}, "Alert desk"), desk),
    h("section", { class: "panel" }, h("h2", {}, "Users"), table(["Email", "Role", "Disabled", "Since", ""],
      users.users.map((u) => {
        const toggle = h("button", { type: "button", disabled: u.id === user().id, onclick: async () => {
          try {
            const r = await post(`/api/auth/users/${u.id}/disabled`, { disabled: !u.disabled });
            u.disabled = r.disabled; state.textContent = u.disabled ? "yes" : "no"; toggle.textContent = u.disabled ? "Enable" : "Disable";
          } catch (x) { err.textContent = inWords(x); }
        } }, u.disabled ? "Enable" : "Disable");
        const state = h("td", {}, u.disabled ? "yes" : "no");
        return h("tr", {}, h("td", {}, u.email), h("td", {}, u.role), state, h("td", {}, when(u.created_at)), h("td", {}, toggle));
      }), "users"), err),
    h("section", { class: "panel" }, h("h2", {}, "Rule packs"), h("ul", {}, packs.rule_packs.map((p) => h("li", {}, `${p.name} (v${p.version})`)))));
}
