"""Maximum loss: equity may never fall to a floor `amount` below a level that is fixed or trails.

Modes (what the floor trails):
- `static`: the initial balance (FTMO 2-Step, The5ers, FundedNext, FundingPips);
- `trailing_eod`: the highest end-of-day balance, taken at each reset (Topstep's MLL, FTMO
  1-Step, MyFundedFutures, Take Profit Trader) or at a named local time, `eod_at` (Apex EOD:
  16:59:59 ET, an hour before its 18:00 reset);
- `trailing_closed`: the highest closed balance, after every fill (E8: floating peaks do not
  move it);
- `trailing_peak`: the highest equity including unrealized P&L, in real time (Apex intraday).
The floor never falls, and stops trailing at its lock: the initial balance, the initial balance
plus an offset (Apex: +100), the target balance, or never. It is tested on equity at every tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.challenges.domain import days
from services.challenges.domain.rules.base import (
    COMPARATORS,
    ZERO,
    Breach,
    Context,
    Objective,
    Params,
    Rule,
    Warning,
    crossed,
    state_of,
)
from services.challenges.domain.rules.wording import Wording, at_or_past

if TYPE_CHECKING:
    from services.challenges.domain.engine import Account
    from services.challenges.domain.rulepacks import Rules

MODES = ("static", "trailing_eod", "trailing_closed", "trailing_peak")


@dataclass(frozen=True)
class MaxLoss(Rule):
    kind = "max_loss"
    amount: Decimal
    mode: str
    initial: Decimal
    lock: Decimal | None  # the level the floor stops at; None: it trails for ever
    comparator: str
    eod_at: time | None = None  # trailing_eod: the local time the end-of-day balance is taken

    @classmethod
    def build(cls, params: Params, ctx: Context) -> MaxLoss:
        amount = params.money(ctx.initial_balance) or Decimal(1)
        mode = params.choice("mode", MODES, "static")
        # The lock is the level the floor stops rising at: the initial balance (Topstep), an
        # offset above it (Apex: +100), the floor it has when the peak reaches the target
        # balance (Apex 4.0 evaluations), or none. Stored per challenge as the level itself.
        raw, absolute = params.value("lock"), params.flag("lock_level", False)
        lock: Decimal | None = None
        if raw == "initial":
            lock = ctx.initial_balance
        elif raw == "target":
            if ctx.profit_target is None:
                params.violations[f"{params.path}.lock"] = "locking at the target needs a profit_target rule"
            else:
                lock = ctx.initial_balance + ctx.profit_target - amount
        elif raw not in (None, "none"):
            level = params.decimal("lock", positive=False)
            if level is not None:
                lock = level if absolute else ctx.initial_balance + level
        eod_at = None
        if params.has("eod_at"):
            raw_at = params.text("eod_at", "")
            try:
                eod_at = time.fromisoformat(raw_at)
            except ValueError:
                params.violations[f"{params.path}.eod_at"] = 'must be a local time such as "16:59:59"'
            if mode != "trailing_eod":
                params.violations[f"{params.path}.eod_at"] = "only a trailing_eod drawdown takes an end-of-day time"
        comparator = params.choice("comparator", COMPARATORS, "touch")
        rule = cls(amount, mode, ctx.initial_balance, lock, comparator, eod_at)
        params.done()
        return rule

    def describe(self, w: Wording) -> str:
        floor = w.money(self.initial - self.amount)
        if self.mode == "static":
            edge = at_or_past(self.comparator)
            return f"Maximum loss {w.money(self.amount)}: the account fails with equity {edge} {floor}"
        trails = {
            "trailing_eod": f"the highest end-of-day balance (taken at {w.clock(self.eod_at)})",
            "trailing_closed": "the highest closed balance",
            "trailing_peak": "the highest equity, open profit included",
        }[self.mode]
        lock = f", and stops rising at {w.money(self.lock)}" if self.lock is not None else ""
        return (
            f"Maximum loss {w.money(self.amount)}, trailing {trails}: the account fails with equity "
            f"{at_or_past(self.comparator)} the floor, which starts at {floor}{lock}"
        )

    def to_params(self) -> dict[str, Any]:
        # The lock is stored as its level (marked so), whatever the pack said it was.
        lock: dict[str, Any] = {"lock": "none"} if self.lock is None else {"lock": str(self.lock), "lock_level": True}
        eod = {"eod_at": self.eod_at.isoformat()} if self.eod_at is not None else {}
        return {"amount": str(self.amount), "mode": self.mode, **lock, "comparator": self.comparator, **eod}

    def limit(self) -> Decimal | None:
        return self.amount

    def level(self, a: Account, r: Rules) -> tuple[Decimal, Decimal] | None:
        return self.floor(a, r), self.amount

    def peak(self, a: Account) -> Decimal:
        if self.mode == "trailing_eod":
            return a.max_eod_balance
        if self.mode == "trailing_closed":
            return max(a.max_closed_balance, self.initial)
        if self.mode == "trailing_peak":
            return a.max_equity_ever
        return self.initial

    def floor(self, a: Account, r: Rules) -> Decimal:
        floor = self.peak(a) - self.amount
        if self.mode != "static" and self.lock is not None:
            floor = min(floor, self.lock)  # stops trailing at the lock
        return floor

    def breach(self, a: Account, r: Rules, equity: Decimal, now: datetime) -> Breach | None:
        floor = self.floor(a, r)
        if not crossed(equity, floor, self.comparator):
            return None
        return Breach(
            self.kind,
            True,
            {"max_loss": str(self.amount), **self.to_params(), "initial_balance": str(self.initial)},
            {
                "equity": str(equity),
                "balance": str(a.balance),
                "time": now.isoformat(),
                "floor": str(floor),
                "max_equity_ever": str(a.max_equity_ever),
                "max_eod_balance": str(a.max_eod_balance),
                "max_closed_balance": str(a.max_closed_balance),
            },
            "MAX_LOSS_LIMIT_BREACHED",
        )

    def _lost(self, a: Account, r: Rules, equity: Decimal) -> Decimal:
        """Loss measured from the level the floor hangs from."""
        return self.floor(a, r) + self.amount - equity

    def warning(self, a: Account, r: Rules, equity: Decimal) -> Warning | None:
        lost = self._lost(a, r, equity)
        used = lost / self.amount
        return Warning(self.kind, used, self.amount, lost) if used >= r.warning_share else None

    def warn_level(self, a: Account, r: Rules) -> Decimal | None:
        return self.floor(a, r) + (1 - r.warning_share) * self.amount

    def objective(self, a: Account, r: Rules, now: datetime | None = None) -> Objective:
        room = max(a.equity - self.floor(a, r), ZERO)
        used = self.amount - min(room, self.amount)
        return Objective(self.kind, self.amount, used, room, state_of(used / self.amount, r.warning_share))

    def next_instant(self, a: Account, r: Rules, now: datetime) -> datetime | None:
        if self.eod_at is None or a.day is None or a.eod_day == a.day:
            return None
        return days.at_local(a.day, r.tz, r.reset_time, self.eod_at)

    def intraday_trail(self) -> tuple[Decimal, Decimal | None] | None:
        """(amount, lock) when the floor moves with every tick's equity (the mark index trails it)."""
        return (self.amount, self.lock) if self.mode == "trailing_peak" else None
