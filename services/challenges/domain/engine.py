"""The rules engine: an account's state and what each price move or fill does to it.

Pure functions over `Account` and `Rules`; no I/O. The service, the simulator and the
mark-to-market index all call these, so a challenge is judged the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.challenges.domain import days
from services.challenges.domain.rulepacks import Rules

ZERO = Decimal(0)

PENDING, ACTIVE, PAUSED, PASSED, FUNDED, FAILED, CANCELLED = (
    "PENDING",
    "ACTIVE",
    "PAUSED",
    "PASSED",
    "FUNDED",
    "FAILED",
    "CANCELLED",
)
TRADING = (ACTIVE,)
ENDED = (PASSED, FUNDED, FAILED, CANCELLED)


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

    @classmethod
    def new(cls, initial: Decimal) -> Account:
        return cls(PENDING, initial, initial, initial, None, initial, initial, initial, initial)

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
        for k in ("day", "last_trading_day"):
            d[k] = date.fromisoformat(d[k]) if d.get(k) else None
        d["paused_until"] = datetime.fromisoformat(d["paused_until"]) if d.get("paused_until") else None
        d["daily_pnl"] = {k: Decimal(v) for k, v in d.get("daily_pnl", {}).items()}
        return cls(**d)


@dataclass(frozen=True)
class Breach:
    rule: str  # daily_loss | max_loss
    hard: bool
    parameters: dict[str, str]
    observed: dict[str, str]

    @property
    def reason(self) -> str:
        return {"daily_loss": "DAILY_LOSS_LIMIT_BREACHED", "max_loss": "MAX_LOSS_LIMIT_BREACHED"}[self.rule]


@dataclass(frozen=True)
class Warning:
    rule: str
    used_share: Decimal
    limit: Decimal
    current: Decimal


@dataclass(frozen=True)
class Objective:
    rule: str
    limit: Decimal
    current: Decimal
    room_left: Decimal
    state: str  # OK | WARNING | BREACHED | MET


# --- levels ----------------------------------------------------------------------------------


def daily_reference(a: Account, r: Rules) -> Decimal:
    """What today's loss is measured from: the day-start balance, or the higher of it and equity."""
    if r.day_start == "max_balance_equity":
        return max(a.day_start_balance, a.day_start_equity)
    return a.day_start_balance


def daily_floor(a: Account, r: Rules) -> Decimal | None:
    return None if r.daily_loss is None else daily_reference(a, r) - r.daily_loss


def max_loss_floor(a: Account, r: Rules) -> Decimal:
    if r.max_loss_kind == "static":
        return r.initial_balance - r.max_loss
    peak = a.max_eod_balance if r.max_loss_kind == "trailing_eod" else a.max_equity_ever
    floor = peak - r.max_loss
    if r.max_loss_lock is not None:
        floor = min(floor, r.max_loss_lock)  # stops trailing at the lock level
    return floor


def equity_floor(a: Account, r: Rules) -> Decimal:
    """The equity at or below which some limit breaks: what mark-to-market checks per tick."""
    d = daily_floor(a, r) if a.status == ACTIVE else None
    m = max_loss_floor(a, r)
    return m if d is None else max(d, m)


# --- transitions ---------------------------------------------------------------------------------


def start(a: Account, r: Rules, now: datetime) -> None:
    if a.status != PENDING:
        raise ValueError(f"cannot start a {a.status} challenge")
    a.status = ACTIVE
    a.day = days.trading_day(now, r.tz, r.reset_time)
    a.day_start_balance = a.day_start_equity = a.balance
    a.max_equity_ever = max(a.max_equity_ever, a.equity)
    a.max_eod_balance = max(a.max_eod_balance, a.balance)


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


def record_trade(a: Account, r: Rules, now: datetime, realized_net: Decimal) -> None:
    """A fill happened: count the trading day and book closed P&L to it."""
    d = days.trading_day(now, r.tz, r.reset_time)
    if a.last_trading_day != d:
        a.trading_days += 1
        a.last_trading_day = d
    key = d.isoformat()
    a.daily_pnl[key] = a.daily_pnl.get(key, ZERO) + realized_net


def mark(a: Account, r: Rules, equity: Decimal, now: datetime) -> tuple[Breach | None, list[Warning]]:
    """New equity (after a tick or a fill): the breach it causes, if any, and warnings."""
    a.equity = equity
    if equity > a.max_equity_ever:
        a.max_equity_ever = equity
    if a.status not in (ACTIVE, PAUSED):
        return None, []
    m_floor = max_loss_floor(a, r)
    observed = {"equity": str(equity), "balance": str(a.balance), "time": now.isoformat()}
    if equity <= m_floor:
        return Breach(
            "max_loss",
            True,
            {
                "kind": r.max_loss_kind,
                "max_loss": str(r.max_loss),
                "lock": str(r.max_loss_lock),
                "initial_balance": str(r.initial_balance),
            },
            {
                **observed,
                "floor": str(m_floor),
                "max_equity_ever": str(a.max_equity_ever),
                "max_eod_balance": str(a.max_eod_balance),
            },
        ), []
    d_floor = daily_floor(a, r)
    if d_floor is not None and a.status == ACTIVE and equity <= d_floor:
        return Breach(
            "daily_loss",
            r.daily_loss_hard,
            {
                "daily_loss": str(r.daily_loss),
                "basis": r.daily_loss_basis,
                "day_start": r.day_start,
                "timezone": r.timezone,
                "reset_time": r.reset_time.isoformat(),
            },
            {
                **observed,
                "floor": str(d_floor),
                "day_start_balance": str(a.day_start_balance),
                "day_start_equity": str(a.day_start_equity),
                "trading_day": str(a.day),
            },
        ), []
    warnings = []
    if r.daily_loss and "daily_loss" not in a.warned:
        used = (daily_reference(a, r) - equity) / r.daily_loss
        if used >= r.warning_share:
            warnings.append(Warning("daily_loss", used, r.daily_loss, daily_reference(a, r) - equity))
    # Loss measured from the level the floor trails (or the initial balance when static).
    used = (m_floor + r.max_loss - equity) / r.max_loss
    if used >= r.warning_share and "max_loss" not in a.warned:
        warnings.append(Warning("max_loss", used, r.max_loss, m_floor + r.max_loss - equity))
    a.warned.extend(w.rule for w in warnings)  # once per rule per trading day
    return None, warnings


def warning_level(a: Account, r: Rules) -> Decimal | None:
    """The equity at or below which a not-yet-given warning is due (for the mark index)."""
    levels = []
    if r.daily_loss and "daily_loss" not in a.warned and a.status == ACTIVE:
        levels.append(daily_reference(a, r) - r.warning_share * r.daily_loss)
    if "max_loss" not in a.warned:
        levels.append(max_loss_floor(a, r) + (1 - r.warning_share) * r.max_loss)
    return max(levels) if levels else None


def apply_breach(a: Account, r: Rules, b: Breach, now: datetime) -> str:
    """FAILED for a hard breach; PAUSED until the next trading day for a soft one."""
    if b.hard:
        a.status = FAILED
    else:
        a.status = PAUSED
        a.paused_until = days.next_reset(now, r.tz, r.reset_time)
    return a.status


def pass_check(a: Account, r: Rules, flat: bool) -> tuple[bool, list[str]]:
    """Whether every pass condition holds; otherwise the ones still blocking."""
    blocking = []
    profit = a.balance - r.initial_balance
    if r.profit_target is None or profit < r.profit_target:
        blocking.append("profit_target")
    if a.trading_days < r.min_trading_days:
        blocking.append("min_trading_days")
    if r.consistency is not None and profit > 0:
        best = max(a.daily_pnl.values(), default=ZERO)
        if best / profit > r.consistency:
            blocking.append("consistency")
    if not flat:
        blocking.append("open_positions")  # the target counts on closed balance
    return not blocking, blocking


def objectives(a: Account, r: Rules) -> list[Objective]:
    out = []

    def state(used: Decimal) -> str:
        return "BREACHED" if used >= 1 else "WARNING" if used >= r.warning_share else "OK"

    if r.daily_loss is not None:
        loss = max(daily_reference(a, r) - a.equity, ZERO)
        out.append(
            Objective("daily_loss", r.daily_loss, loss, max(r.daily_loss - loss, ZERO), state(loss / r.daily_loss))
        )
    floor = max_loss_floor(a, r)
    room = max(a.equity - floor, ZERO)
    out.append(
        Objective(
            "max_loss",
            r.max_loss,
            r.max_loss - min(room, r.max_loss),
            room,
            state((r.max_loss - min(room, r.max_loss)) / r.max_loss),
        )
    )
    if r.profit_target is not None:
        profit = a.balance - r.initial_balance
        out.append(
            Objective(
                "profit_target",
                r.profit_target,
                profit,
                max(r.profit_target - profit, ZERO),
                "MET" if profit >= r.profit_target else "OK",
            )
        )
    if r.min_trading_days:
        out.append(
            Objective(
                "min_trading_days",
                Decimal(r.min_trading_days),
                Decimal(a.trading_days),
                Decimal(max(r.min_trading_days - a.trading_days, 0)),
                "MET" if a.trading_days >= r.min_trading_days else "OK",
            )
        )
    if r.consistency is not None:
        profit = a.balance - r.initial_balance
        best = max(a.daily_pnl.values(), default=ZERO)
        share = best / profit if profit > 0 else ZERO
        out.append(
            Objective(
                "consistency",
                r.consistency,
                share.quantize(Decimal("0.0001")),
                max(r.consistency - share, ZERO).quantize(Decimal("0.0001")),
                "OK" if share <= r.consistency else "WARNING",
            )
        )
    return out
