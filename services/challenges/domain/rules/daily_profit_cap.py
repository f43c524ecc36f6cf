"""Daily profit cap: closed profit above the cap on one day does not count toward the target
(E8 Pro: 2% of the initial balance; the excess is removed, not a breach)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.challenges.domain.rules.base import Context, Params, Rule
from services.challenges.domain.rules.wording import Wording


@dataclass(frozen=True)
class DailyProfitCap(Rule):
    kind = "daily_profit_cap"
    amount: Decimal

    @classmethod
    def build(cls, params: Params, ctx: Context) -> DailyProfitCap:
        rule = cls(params.money(ctx.initial_balance) or Decimal(1))
        params.done()
        return rule

    def describe(self, w: Wording) -> str:
        return f"A day's profit counts toward the target up to {w.money(self.amount)}"

    def to_params(self) -> dict[str, Any]:
        return {"amount": str(self.amount)}

    def limit(self) -> Decimal | None:
        return self.amount

    def counted(self, pnl: Decimal) -> Decimal:
        return min(pnl, self.amount)
