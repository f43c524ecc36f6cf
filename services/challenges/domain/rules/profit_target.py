"""Profit target: the closed balance must reach initial + target, with every position closed.

Profit above a `daily_profit_cap` on a day does not count toward it (E8 Pro).
"""

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
class ProfitTarget(Rule):
    kind = "profit_target"
    amount: Decimal

    @classmethod
    def build(cls, params: Params, ctx: Context) -> ProfitTarget:
        rule = cls(params.money(ctx.initial_balance) or Decimal(1))
        params.done()
        return rule

    def describe(self, w: Wording) -> str:
        return (
            f"Profit target {w.money(self.amount)}: a closed balance of {w.money(w.initial_balance + self.amount)} "
            "with no position open"
        )

    def to_params(self) -> dict[str, Any]:
        return {"amount": str(self.amount)}

    def limit(self) -> Decimal | None:
        return self.amount

    def blocks_pass(self, a: Account, r: Rules) -> bool:
        return r.counted_profit(a) < self.amount

    def objective(self, a: Account, r: Rules, now: datetime | None = None) -> Objective:
        profit = r.counted_profit(a)
        met = profit >= self.amount
        return Objective(self.kind, self.amount, profit, max(self.amount - profit, ZERO), "MET" if met else "OK")
