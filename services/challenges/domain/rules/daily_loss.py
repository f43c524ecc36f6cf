"""Daily loss: equity may not fall more than a limit below today's reference.

The reference is the day-start balance (FTMO, FundedNext, E8), the higher of day-start balance
and equity (The5ers, FundingPips), or day-start equity. The limit is an amount, a % of the
initial balance (FTMO: 5% of initial), or a % of the reference (E8: 4% of the day-start
balance). Hard: the account fails (FTMO). Soft: positions are flattened and trading pauses until
the next trading day (Topstep's optional DLL, Apex EOD). It is judged while trading is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

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
from services.challenges.domain.rules.wording import Wording, at_or_past, pct
from services.challenges.domain.status import ACTIVE

if TYPE_CHECKING:
    from services.challenges.domain.engine import Account
    from services.challenges.domain.rulepacks import Rules

REFERENCES = ("balance", "max_balance_equity", "equity")


@dataclass(frozen=True)
class DailyLoss(Rule):
    kind = "daily_loss"
    amount: Decimal | None  # money; None when a share of the reference
    pct_of_reference: Decimal | None
    reference: str
    hard: bool
    comparator: str

    @classmethod
    def build(cls, params: Params, ctx: Context) -> DailyLoss:
        of = params.choice("pct_of", ("initial", "reference"), "initial")
        if of == "reference":
            pct = params.decimal("pct")
            if pct is None:
                params.violations[f"{params.path}.pct"] = "a pct is required with pct_of=reference"
            amount = None
        else:
            pct, amount = None, params.money(ctx.initial_balance)
        rule = cls(
            amount=amount,
            pct_of_reference=pct,
            reference=params.choice("reference", REFERENCES, "balance"),
            hard=params.flag("hard", True),
            comparator=params.choice("comparator", COMPARATORS, "touch"),
        )
        params.done()
        return rule

    def describe(self, w: Wording) -> str:
        ref = {
            "balance": "the day's starting balance",
            "max_balance_equity": "the higher of the day's starting balance and equity",
            "equity": "the day's starting equity",
        }[self.reference]
        effect = "the account fails" if self.hard else "positions are closed and trading pauses until the next day"
        edge, day = at_or_past(self.comparator), f"(the day resets at {w.clock()})"
        if self.amount is not None:
            return f"Daily loss limit {w.money(self.amount)}: {effect} with equity {edge} {ref} minus it {day}"
        share = (self.pct_of_reference or Decimal(0)) / 100
        return f"Daily loss limit {pct(share)} of {ref}: {effect} with equity {edge} {pct(1 - share)} of it {day}"

    def to_params(self) -> dict[str, Any]:
        loss: dict[str, Any] = (
            {"pct": str(self.pct_of_reference), "pct_of": "reference"}
            if self.pct_of_reference is not None
            else {"amount": str(self.amount)}
        )
        return {**loss, "reference": self.reference, "hard": self.hard, "comparator": self.comparator}

    def reference_value(self, a: Account) -> Decimal:
        if self.reference == "max_balance_equity":
            return max(a.day_start_balance, a.day_start_equity)
        if self.reference == "equity":
            return a.day_start_equity
        return a.day_start_balance

    def loss_limit(self, a: Account) -> Decimal:
        if self.pct_of_reference is not None:
            return (self.reference_value(a) * self.pct_of_reference / 100).quantize(Decimal("0.01"))
        assert self.amount is not None
        return self.amount

    def limit(self) -> Decimal | None:
        return self.amount

    def level(self, a: Account, r: Rules) -> tuple[Decimal, Decimal] | None:
        floor = self.floor(a, r)
        return None if floor is None else (floor, self.loss_limit(a))

    def floor(self, a: Account, r: Rules) -> Decimal | None:
        return self.reference_value(a) - self.loss_limit(a) if a.status == ACTIVE else None

    def breach(self, a: Account, r: Rules, equity: Decimal, now: datetime) -> Breach | None:
        floor = self.floor(a, r)
        if floor is None or not crossed(equity, floor, self.comparator):
            return None
        return Breach(
            self.kind,
            self.hard,
            {
                "daily_loss": str(self.loss_limit(a)),
                **{k: str(v) for k, v in self.to_params().items()},
                "timezone": r.timezone,
                "reset_time": r.reset_time.isoformat(),
            },
            {
                "equity": str(equity),
                "balance": str(a.balance),
                "time": now.isoformat(),
                "floor": str(floor),
                "day_start_balance": str(a.day_start_balance),
                "day_start_equity": str(a.day_start_equity),
                "trading_day": str(a.day),
            },
            "DAILY_LOSS_LIMIT_BREACHED",
        )

    def warning(self, a: Account, r: Rules, equity: Decimal) -> Warning | None:
        if a.status != ACTIVE:
            return None
        limit, lost = self.loss_limit(a), self.reference_value(a) - equity
        used = lost / limit
        return Warning(self.kind, used, limit, lost) if used >= r.warning_share else None

    def warn_level(self, a: Account, r: Rules) -> Decimal | None:
        if a.status != ACTIVE:
            return None
        return self.reference_value(a) - r.warning_share * self.loss_limit(a)

    def objective(self, a: Account, r: Rules, now: datetime | None = None) -> Objective:
        limit = self.loss_limit(a)
        loss = max(self.reference_value(a) - a.equity, ZERO)
        return Objective(self.kind, limit, loss, max(limit - loss, ZERO), state_of(loss / limit, r.warning_share))
