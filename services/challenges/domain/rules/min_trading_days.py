"""Minimum trading days before passing, counted in the pack's time zone and session.

`count: opened` counts a day on which a position was opened or added to — FTMO: "a day on which
a position is opened"; a position held over several days counts only on its opening day, and a
day on which positions are only closed does not count. `count: any_fill` counts any fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.challenges.domain.rules.base import Context, Objective, Params, Rule
from services.challenges.domain.rules.wording import Wording

if TYPE_CHECKING:
    from services.challenges.domain.engine import Account
    from services.challenges.domain.rulepacks import Rules


@dataclass(frozen=True)
class MinTradingDays(Rule):
    kind = "min_trading_days"
    days: int
    count: str

    @classmethod
    def build(cls, params: Params, ctx: Context) -> MinTradingDays:
        rule = cls(params.integer("days", 1), params.choice("count", ("opened", "any_fill"), "any_fill"))
        params.done()
        return rule

    def describe(self, w: Wording) -> str:
        counts = "a position is opened" if self.count == "opened" else "anything is traded"
        return f"At least {self.days} trading day{'s' if self.days != 1 else ''} (a day counts when {counts})"

    def to_params(self) -> dict[str, Any]:
        return {"days": self.days, "count": self.count}

    def counted(self, a: Account) -> int:
        return a.opened_days if self.count == "opened" else a.trading_days

    def blocks_pass(self, a: Account, r: Rules) -> bool:
        return self.counted(a) < self.days

    def objective(self, a: Account, r: Rules, now: datetime | None = None) -> Objective:
        n = self.counted(a)
        state = "MET" if n >= self.days else "OK"
        return Objective(self.kind, Decimal(self.days), Decimal(n), Decimal(max(self.days - n, 0)), state)
