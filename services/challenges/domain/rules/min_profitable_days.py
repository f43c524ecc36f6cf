"""Minimum profitable days: days whose closed P&L reaches a threshold (The5ers: 3 days of at
least 0.5% of the initial balance)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.challenges.domain.rules.base import ZERO, Context, Objective, Params, Rule
from services.challenges.domain.rules.wording import Wording

if TYPE_CHECKING:
    from services.challenges.domain.engine import Account
    from services.challenges.domain.rulepacks import Rules


@dataclass(frozen=True)
class MinProfitableDays(Rule):
    kind = "min_profitable_days"
    days: int
    threshold: Decimal  # money; a day counts with closed P&L >= it

    @classmethod
    def build(cls, params: Params, ctx: Context) -> MinProfitableDays:
        days = params.integer("days", 1)
        rule = cls(days, params.money(ctx.initial_balance, required=False) or ZERO)
        params.done()
        return rule

    def describe(self, w: Wording) -> str:
        return (
            f"At least {self.days} profitable day{'s' if self.days != 1 else ''} "
            f"(a closed profit of {w.money(self.threshold)} or more)"
        )

    def to_params(self) -> dict[str, Any]:
        return {"days": self.days, "amount": str(self.threshold)} if self.threshold else {"days": self.days}

    def counted(self, a: Account) -> int:
        return sum(1 for pnl in a.daily_pnl.values() if pnl > 0 and pnl >= self.threshold)

    def blocks_pass(self, a: Account, r: Rules) -> bool:
        return self.counted(a) < self.days

    def objective(self, a: Account, r: Rules, now: datetime | None = None) -> Objective:
        n = self.counted(a)
        state = "MET" if n >= self.days else "OK"
        return Objective(self.kind, Decimal(self.days), Decimal(n), Decimal(max(self.days - n, 0)), state)
