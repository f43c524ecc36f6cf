"""Inactivity: N calendar days without a fill is a hard breach (MyFundedFutures: 7 days).

Counted from the last fill, or from the start when nothing has filled yet; judged with every
tick and at every day roll, so it lands at the first of those after the N days have run out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.challenges.domain.rules.base import Breach, Context, Objective, Params, Rule
from services.challenges.domain.rules.wording import Wording

if TYPE_CHECKING:
    from services.challenges.domain.engine import Account
    from services.challenges.domain.rulepacks import Rules


@dataclass(frozen=True)
class Inactivity(Rule):
    kind = "inactivity"
    days: int

    @classmethod
    def build(cls, params: Params, ctx: Context) -> Inactivity:
        rule = cls(params.integer("days", 30))
        params.done()
        return rule

    def describe(self, w: Wording) -> str:
        return f"The account fails after {self.days} days without a trade"

    def to_params(self) -> dict[str, Any]:
        return {"days": self.days}

    def _since(self, a: Account) -> datetime | None:
        return a.last_fill_at or a.started_at

    def breach(self, a: Account, r: Rules, equity: Decimal, now: datetime) -> Breach | None:
        since = self._since(a)
        if since is None or now - since < timedelta(days=self.days):
            return None
        return Breach(
            self.kind,
            True,
            {"days": str(self.days)},
            {"last_activity": since.isoformat(), "time": now.isoformat(), "equity": str(equity)},
            "INACTIVITY",
        )

    def next_instant(self, a: Account, r: Rules, now: datetime) -> datetime | None:
        since = self._since(a)
        return since + timedelta(days=self.days) if since is not None else None

    def objective(self, a: Account, r: Rules, now: datetime | None = None) -> Objective | None:
        since = self._since(a)
        if since is None or now is None:
            return None
        left = max(timedelta(days=self.days) - (now - since), timedelta(0))
        days_left = Decimal(left.total_seconds() / 86400).quantize(Decimal("0.01"))
        return Objective(self.kind, Decimal(self.days), Decimal(self.days) - days_left, days_left, "OK")
