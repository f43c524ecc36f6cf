"""The rules engine: an account's state and what each price move or fill does to it.

Pure functions over `Account` and `Rules`; no I/O. The service, the simulator and the
mark-to-market index all call these, so a challenge is judged the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.challenges.domain import days
from services.challenges.domain.rulepacks import Rules
from services.challenges.domain.rules import Breach, Objective, Warning
from services.challenges.domain.status import (
    ACTIVE,
    CANCELLED,
    ENDED,
    FAILED,
    FUNDED,
    PASSED,
    PAUSED,
    PENDING,
    TRADING,
)

ZERO = Decimal(0)

# The statuses, here too for the engine's callers.
__all__ = ["ACTIVE", "CANCELLED", "ENDED", "FAILED", "FUNDED", "PASSED", "PAUSED", "PENDING", "TRADING"]


@dataclass
class Account:
    status: str
    initial_balance: Decimal
    balance: Decimal
    equity: Decimal
    day: date | None = None
    day_start_balance: Decimal = ZERO
    day_start_equity: Decimal = ZERO
    max_equity_ever: Decimal = ZERO
    max_eod_balance: Decimal = ZERO
    trading_days: int = 0
    last_trading_day: date | None = None
    daily_pnl: dict[str, Decimal] = field(default_factory=dict)  # trading day -> closed P&L
    paused_until: datetime | None = None
    warned: list[str] = field(default_factory=list)  # rules warned about this trading day
    # Added with rule kinds; absent from accounts stored before them (read as their defaults).
    max_closed_balance: Decimal = ZERO  # highest balance after a fill (trailing_closed)
    opened_days: int = 0  # days on which a position was opened or added to
    last_opened_day: date | None = None
    started_at: datetime | None = None
    last_fill_at: datetime | None = None
    eod_day: date | None = None  # the trading day whose end-of-day balance was taken at a named time

    @classmethod
    def new(cls, initial: Decimal) -> Account:
        return cls(
            PENDING, initial, initial, initial, None, initial, initial, initial, initial, max_closed_balance=initial
        )

    def to_json(self) -> dict[str, Any]:
        # By hand rather than asdict + a JSON round trip: this runs on every order.
        def text(v: object) -> str | None:
            return None if v is None else str(v)

        return {
            "status": self.status,
            "initial_balance": str(self.initial_balance),
            "balance": str(self.balance),
            "equity": str(self.equity),
            "day": text(self.day),
            "day_start_balance": str(self.day_start_balance),
            "day_start_equity": str(self.day_start_equity),
            "max_equity_ever": str(self.max_equity_ever),
            "max_eod_balance": str(self.max_eod_balance),
            "trading_days": self.trading_days,
            "last_trading_day": text(self.last_trading_day),
            "daily_pnl": {k: str(v) for k, v in self.daily_pnl.items()},
            "paused_until": text(self.paused_until),
            "warned": list(self.warned),
            "max_closed_balance": str(self.max_closed_balance),
            "opened_days": self.opened_days,
            "last_opened_day": text(self.last_opened_day),
            "started_at": text(self.started_at),
            "last_fill_at": text(self.last_fill_at),
            "eod_day": text(self.eod_day),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Account:
        d = dict(d)
        for k in (
            "initial_balance",
            "balance",
            "equity",
            "day_start_balance",
            "day_start_equity",
            "max_equity_ever",
            "max_eod_balance",
        ):
            d[k] = Decimal(d[k])
        d["max_closed_balance"] = Decimal(d.get("max_closed_balance") or d["initial_balance"])
        for k in ("day", "last_trading_day", "last_opened_day", "eod_day"):
            d[k] = date.fromisoformat(d[k]) if d.get(k) else None
        for k in ("paused_until", "started_at", "last_fill_at"):
            d[k] = datetime.fromisoformat(d[k]) if d.get(k) else None
        d["daily_pnl"] = {k: Decimal(v) for k, v in d.get("daily_pnl", {}).items()}
        return cls(**d)


# --- levels ----------------------------------------------------------------------------------


def equity_floor(a: Account, r: Rules) -> Decimal:
    """The equity at or below which some limit breaks: what mark-to-market checks per tick."""
    floors = [f for f in (rule.floor(a, r) for rule in r.rules) if f is not None]
    return max(floors) if floors else Decimal("-Infinity")


def warning_level(a: Account, r: Rules) -> Decimal | None:
    """The equity at or below which a not-yet-given warning is due (for the mark index)."""
    levels = [lvl for rule in r.rules if rule.kind not in a.warned and (lvl := rule.warn_level(a, r)) is not None]
    return max(levels) if levels else None


# --- transitions ---------------------------------------------------------------------------------


def start(a: Account, r: Rules, now: datetime) -> None:
    if a.status != PENDING:
        raise ValueError(f"cannot start a {a.status} challenge")
    a.status = ACTIVE
    a.started_at = now
    a.day = days.trading_day(now, r.tz, r.reset_time)
    a.day_start_balance = a.day_start_equity = a.balance
    a.max_equity_ever = max(a.max_equity_ever, a.equity)
    a.max_eod_balance = max(a.max_eod_balance, a.balance)
    a.max_closed_balance = max(a.max_closed_balance, a.balance)


def roll_day(a: Account, r: Rules, now: datetime) -> list[date]:
    """Catch up on every day boundary passed since `a.day`; returns the days that started.

    End-of-day values are the balance and equity at the roll; several missed rolls (a
    restart) collapse into one because nothing traded in between.
    """
    if a.status in ENDED or a.status == PENDING or a.day is None:
        return []
    today = days.trading_day(now, r.tz, r.reset_time)
    if today <= a.day:
        return []
    if a.eod_day != a.day:  # not taken at a named time (none, or the clock missed it): now
        a.max_eod_balance = max(a.max_eod_balance, a.balance)
    a.day_start_balance = a.balance
    a.day_start_equity = a.equity
    started = [today]
    a.day = today
    a.warned = []
    if a.status == PAUSED and (a.paused_until is None or now >= a.paused_until):
        a.status = ACTIVE
        a.paused_until = None
    return started


def end_of_day(a: Account, r: Rules, now: datetime) -> bool:
    """Take the day's end-of-day balance at the time a drawdown names for it (Apex: 16:59:59 ET),
    once per trading day; whether it was taken now."""
    at = r.eod_at
    if at is None or a.day is None or a.eod_day == a.day or a.status not in (ACTIVE, PAUSED):
        return False
    if now < days.at_local(a.day, r.tz, r.reset_time, at):
        return False
    a.max_eod_balance = max(a.max_eod_balance, a.balance)
    a.eod_day = a.day
    return True


def trading_closed(a: Account, r: Rules, now: datetime) -> str | None:
    """Why no order may fill now (a flat time until the next session), if so."""
    return next((why for rule in r.rules if (why := rule.trading_closed(a, r, now)) is not None), None)


def next_instant(a: Account, r: Rules, now: datetime) -> datetime:
    """When the clock must judge the account next: the next reset, or an earlier moment a rule
    acts at (a flat time, an end-of-day sample, a deadline)."""
    reset = days.day_start(a.day + timedelta(days=1), r.tz, r.reset_time) if a.day else None
    moments = [reset or days.next_reset(now, r.tz, r.reset_time)]
    moments += [m for rule in r.rules if (m := rule.next_instant(a, r, now)) is not None and m > now]
    return min(moments)


def record_trade(a: Account, r: Rules, now: datetime, realized_net: Decimal, opened: bool = True) -> None:
    """A fill happened: count the trading day (and the day as one a position was opened on,
    when it opened or added to one) and book closed P&L to it."""
    d = days.trading_day(now, r.tz, r.reset_time)
    if a.last_trading_day != d:
        a.trading_days += 1
        a.last_trading_day = d
    if opened and a.last_opened_day != d:
        a.opened_days += 1
        a.last_opened_day = d
    key = d.isoformat()
    a.daily_pnl[key] = a.daily_pnl.get(key, ZERO) + realized_net
    a.last_fill_at = now
    a.max_closed_balance = max(a.max_closed_balance, a.balance)


def mark(a: Account, r: Rules, equity: Decimal, now: datetime) -> tuple[Breach | None, list[Warning]]:
    """New equity (after a tick or a fill): the breach it causes, if any, and warnings.

    Rules are asked in judgement order (rules/__init__.py), so when several break at once the
    verdict does not depend on the order a pack lists them in.
    """
    a.equity = equity
    if equity > a.max_equity_ever:
        a.max_equity_ever = equity
    if a.status not in (ACTIVE, PAUSED):
        return None, []
    for rule in r.rules:
        breach = rule.breach(a, r, equity, now)
        if breach is not None:
            return breach, []
    warnings = [w for rule in r.rules if rule.kind not in a.warned and (w := rule.warning(a, r, equity)) is not None]
    a.warned.extend(w.rule for w in warnings)  # once per rule per trading day
    return None, warnings


def apply_breach(a: Account, r: Rules, b: Breach, now: datetime) -> str:
    """FAILED for a hard breach; PAUSED until the next trading day for a soft one."""
    if b.hard:
        a.status = FAILED
    else:
        a.status = PAUSED
        a.paused_until = days.next_reset(now, r.tz, r.reset_time)
    return a.status


def pass_check(a: Account, r: Rules, flat: bool) -> tuple[bool, list[str]]:
    """Whether every pass condition holds; otherwise the ones still blocking. A phase without
    a profit target is never passed."""
    blocking = [rule.kind for rule in r.rules if rule.blocks_pass(a, r)]
    if r.of("profit_target") is None:
        blocking.insert(0, "profit_target")
    if not flat:
        blocking.append("open_positions")  # the target counts on closed balance
    return not blocking, blocking


def objectives(a: Account, r: Rules, now: datetime | None = None) -> list[Objective]:
    return [o for rule in r.rules if (o := rule.objective(a, r, now)) is not None]


__all__ += ["Account", "Breach", "Objective", "Warning"]
