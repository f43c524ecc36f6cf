"""Consistency: the best day's profit against the total, as a pass gate that never fails an
account (more profit on other days satisfies it).

`basis: net` divides by the net profit (Topstep, MyFundedFutures, Take Profit Trader);
`basis: positive_days` by the sum of the profitable days' profit (FTMO 1-Step's Best Day Rule).
`comparator: le` passes at exactly the share ("not more than 50%": FTMO), `lt` does not
("less than 50%": Take Profit Trader). The objective says what total would satisfy it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.challenges.domain.rules.base import ZERO, Context, Objective, Params, Rule
from services.challenges.domain.rules.wording import Wording, pct

if TYPE_CHECKING:
    from services.challenges.domain.engine import Account
    from services.challenges.domain.rulepacks import Rules


@dataclass(frozen=True)
class Consistency(Rule):
    kind = "consistency"
    share: Decimal  # e.g. 0.5
    basis: str
    comparator: str

    @classmethod
    def build(cls, params: Params, ctx: Context) -> Consistency:
        pct = params.decimal("pct", Decimal(50))
        assert pct is not None
        if pct > 100:
            params.violations[f"{params.path}.pct"] = "must be at most 100"
        rule = cls(
            pct / 100,
            params.choice("basis", ("net", "positive_days"), "net"),
            params.choice("comparator", ("le", "lt"), "le"),
        )
        params.done()
        return rule

    def describe(self, w: Wording) -> str:
        of = "the total profit" if self.basis == "net" else "the profitable days' total"
        bound = "at most" if self.comparator == "le" else "under"
        return f"Consistency: the best day {bound} {pct(self.share)} of {of} to pass (it never fails the account)"

    def to_params(self) -> dict[str, Any]:
        return {"pct": str(self.share * 100), "basis": self.basis, "comparator": self.comparator}

    def best_and_total(self, a: Account) -> tuple[Decimal, Decimal]:
        best = max(a.daily_pnl.values(), default=ZERO)
        if self.basis == "positive_days":
            return best, sum((p for p in a.daily_pnl.values() if p > 0), ZERO)
        return best, a.balance - a.initial_balance

    def holds(self, a: Account) -> bool:
        best, total = self.best_and_total(a)
        if best <= 0:
            return True
        if total <= 0:
            return False
        share = best / total
        return share <= self.share if self.comparator == "le" else share < self.share

    def blocks_pass(self, a: Account, r: Rules) -> bool:
        return not self.holds(a)

    def objective(self, a: Account, r: Rules, now: datetime | None = None) -> Objective:
        best, total = self.best_and_total(a)
        share = best / total if total > 0 and best > 0 else ZERO
        # The total at which the best day would be exactly at the share.
        needed = (best / self.share).quantize(Decimal("0.01")) if best > 0 else ZERO
        return Objective(
            self.kind,
            self.share,
            share.quantize(Decimal("0.0001")),
            max(needed - total, ZERO),
            "OK" if self.holds(a) else "WARNING",
        )
