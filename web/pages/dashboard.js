// A challenge's dashboard: balance and equity, what is left of each limit as the equity moves,
// the clock, the risk score, the ticket, the chart, positions, trades and journal, metrics and
// alerts; live from the price and event streams.
import { ApiError, get, inWords, post } from "/api.js";
import { candles, line } from "/charts.js";
import { follow } from "/live.js";
import { errorBox } from "/pages/common.js";
import { bar, countdown, figure, h, money, mount, table, when } from "/ui.js";

const STALE_AFTER_MS = 10_000;

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
    const score = await get(`/api/risk/scores/${id}`).catch((x) => { if (x instanceof ApiError && x.status === 404) return null; throw x; });
    if (score) {
      risk.querySelector("[data-testid=risk-score]").textContent = String(score.score);
      risk.querySelector("ul").replaceChildren(...score.factors.map((f) => h("li", {}, `${f.name.replace(/_/g, " ")}: ${f.explanation}`)));
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
