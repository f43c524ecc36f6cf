"""Funded-account metrics, vectorised (NumPy), for any trade history.

Conventions (DESIGN.md; quantstats/empyrical where they define a metric):
- money is summed in integer cents (exact); ratios are doubles;
- win rate excludes breakeven trades; expectancy is the mean P&L per trade; profit factor
  is gross profit ÷ gross loss (+inf with no losses, 0 with no trades);
- Sharpe and Sortino use the daily returns of the daily equity series (the initial
  balance as the first point), 252 periods a year, risk-free 0, sample standard
  deviation for Sharpe, quantstats' downside deviation sqrt(Σ min(r,0)² / N) for Sortino;
  with no dispersion they are 0 (Sortino +inf when the mean is positive and nothing fell);
- max drawdown is on equity with the initial balance as the first point; time to recovery
  counts days from the trough to the first day back at the previous peak (None while
  unrecovered).

Trades are consumed in chunks (`TradeAccumulator.add`) so a file of any size is never
held whole in memory: state is O(days + symbols).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

EPOCH = date(1970, 1, 1)


def _longest_run(mask: np.ndarray, carry: int) -> tuple[int, int]:
    """Longest run of True in `mask`, where a run of `carry` was already open before it;
    also returns the run still open at its end (the next chunk's carry)."""
    if mask.size == 0:
        return carry, carry
    breaks = np.flatnonzero(~mask)
    if breaks.size == 0:
        return carry + mask.size, carry + mask.size
    gaps = np.diff(breaks) - 1
    tail = int(mask.size - 1 - breaks[-1])
    longest = max(carry + int(breaks[0]), int(gaps.max()) if gaps.size else 0, tail)
    return longest, tail


@dataclass
class SymbolStats:
    trades: int = 0
    pnl_cents: int = 0
    wins: int = 0
    decided: int = 0


@dataclass
class TradeAccumulator:
    trades: int = 0
    wins: int = 0
    losses: int = 0
    win_cents: int = 0
    loss_cents: int = 0  # negative
    longest_losing_trades: int = 0
    _losing_run: int = 0
    daily: dict[int, int] = field(default_factory=dict)  # day number -> cents
    symbols: dict[str, SymbolStats] = field(default_factory=dict)

    def add(self, day: np.ndarray, cents: np.ndarray, symbol: np.ndarray | None = None) -> None:
        """A chunk, in time order: day numbers (days since 1970-01-01) and P&L in cents."""
        cents = cents.astype(np.int64, copy=False)
        n = cents.size
        if n == 0:
            return
        self.trades += n
        pos, neg = cents > 0, cents < 0
        self.wins += int(pos.sum())
        self.losses += int(neg.sum())
        self.win_cents += int(cents[pos].sum())
        self.loss_cents += int(cents[neg].sum())
        longest, self._losing_run = _longest_run(neg, self._losing_run)
        self.longest_losing_trades = max(self.longest_losing_trades, longest)
        days, idx = np.unique(day.astype(np.int64, copy=False), return_inverse=True)
        sums = np.bincount(idx, weights=cents, minlength=days.size)
        for d, s in zip(days.tolist(), sums.tolist(), strict=True):
            self.daily[d] = self.daily.get(d, 0) + round(s)
        if symbol is not None:
            syms, sidx = np.unique(symbol, return_inverse=True)
            cnt = np.bincount(sidx, minlength=syms.size)
            tot = np.bincount(sidx, weights=cents, minlength=syms.size)
            w = np.bincount(sidx, weights=pos, minlength=syms.size)
            dec = np.bincount(sidx, weights=pos | neg, minlength=syms.size)
            for k, s in enumerate(syms.tolist()):
                st = self.symbols.setdefault(str(s), SymbolStats())
                st.trades += int(cnt[k])
                st.pnl_cents += round(tot[k])
                st.wins += int(w[k])
                st.decided += int(dec[k])


def _money(cents: float | int) -> str:
    return f"{cents / 100:.2f}"


def _day(n: int) -> str:
    return (EPOCH + timedelta(days=int(n))).isoformat()


def compute(
    acc: TradeAccumulator,
    initial_balance: float,
    equity_days: np.ndarray | None = None,
    equity_values: np.ndarray | None = None,
) -> dict[str, Any]:
    """The metrics, as plain JSON-ready values (money as decimal strings)."""
    days = np.array(sorted(acc.daily), dtype=np.int64)
    day_pnl = np.array([acc.daily[d] for d in days.tolist()], dtype=np.int64)
    if equity_days is None or equity_values is None:
        equity_days = days
        equity_values = initial_balance + np.cumsum(day_pnl) / 100.0
    equity_values = np.asarray(equity_values, dtype=np.float64)
    curve = np.concatenate(([float(initial_balance)], equity_values))

    decided = acc.wins + acc.losses
    returns = curve[1:] / curve[:-1] - 1.0 if curve.size > 1 else np.empty(0)
    sharpe = sortino = 0.0
    if returns.size >= 2:
        sd = float(returns.std(ddof=1))
        mean = float(returns.mean())
        sharpe = mean / sd * math.sqrt(252) if sd > 0 else 0.0
        downside = math.sqrt(float((returns[returns < 0] ** 2).sum()) / returns.size)
        sortino = mean / downside * math.sqrt(252) if downside > 0 else (math.inf if mean > 0 else 0.0)

    peaks = np.maximum.accumulate(curve)
    dd = curve / peaks - 1.0
    trough = int(np.argmin(dd))
    max_dd = float(dd[trough])
    dd_amount = float(curve[trough] - peaks[trough])
    dd_date = _day(int(equity_days[trough - 1])) if trough > 0 else ""
    recovered, ttr = True, 0
    if trough > 0 and max_dd < 0:
        after = np.flatnonzero(curve[trough:] >= peaks[trough])
        if after.size:
            ttr = int(equity_days[trough + after[0] - 1] - equity_days[trough - 1])
        else:
            recovered, ttr = False, 0

    losing_days, _ = _longest_run(day_pnl < 0, 0)
    gross_loss = -acc.loss_cents
    profit_factor = (acc.win_cents / gross_loss) if gross_loss else (math.inf if acc.win_cents > 0 else 0.0)
    total = acc.win_cents + acc.loss_cents
    return {
        "total_return": float(curve[-1] / curve[0] - 1.0) if curve[0] else 0.0,
        "total_trades": acc.trades,
        "win_rate": acc.wins / decided if decided else 0.0,
        "average_win": _money(acc.win_cents / acc.wins) if acc.wins else "0.00",
        "average_loss": _money(acc.loss_cents / acc.losses) if acc.losses else "0.00",
        "profit_factor": profit_factor,
        "expectancy": _money(total / acc.trades) if acc.trades else "0.00",
        "largest_winning_day": _money(max(int(day_pnl.max()), 0)) if day_pnl.size else "0.00",
        "largest_losing_day": _money(min(int(day_pnl.min()), 0)) if day_pnl.size else "0.00",
        # quantstats' Win Days: breakeven days are in neither the numerator nor the denominator.
        "profitable_days_pct": float((day_pnl > 0).sum() / decided_days)
        if (decided_days := (day_pnl != 0).sum())
        else 0.0,
        "longest_losing_streak_trades": acc.longest_losing_trades,
        "longest_losing_streak_days": losing_days,
        "max_drawdown_pct": max_dd,
        "max_drawdown_amount": f"{dd_amount:.2f}",
        "max_drawdown_date": dd_date,
        "time_to_recovery_days": ttr if recovered else None,
        "recovered": recovered,
        "sharpe": sharpe,
        "sortino": sortino,
        "daily": [
            {"date": _day(d), "pnl": _money(p), "equity": f"{e:.2f}"}
            for d, p, e in zip(
                days.tolist(), day_pnl.tolist(), (initial_balance + np.cumsum(day_pnl) / 100.0).tolist(), strict=True
            )
        ],
        "by_symbol": [
            {
                "symbol": s,
                "trades": st.trades,
                "pnl": _money(st.pnl_cents),
                "win_rate": st.wins / st.decided if st.decided else 0.0,
            }
            for s, st in sorted(acc.symbols.items())
        ],
    }
