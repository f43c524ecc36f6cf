"""Time limit: the phase ends after N calendar days, at a local time on the last day (Apex: 30
days, expiring 18:00 ET on day 30); unpassed by then, the account fails `TIME_LIMIT_REACHED`.

Day 1 is the local calendar day the challenge started on, in the pack's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.challenges.domain.rules.base import Breach, Context, Objective, Params, Rule
from services.challenges.domain.rules.wording import Wording

if TYPE_CHECKING:
    from services.challenges.domain.engine import Account
    from services.challenges.domain.rulepacks import Rules


@dataclass(frozen=True)
class TimeLimit(Rule):
    kind = "time_limit"
    days: int
    ends_at: time | None  # local wall-clock time on the last day; None: the pack's reset time

    @classmethod
    def build(cls, params: Params, ctx: Context) -> TimeLimit:
        days = params.integer("days", 30)
        raw = params.text("ends_at", "")
        ends_at = None
        if raw:
            try:
                ends_at = time.fromisoformat(raw)
            except ValueError:
                params.violations[f"{params.path}.ends_at"] = 'must be a local time such as "18:00"'
        params.done()
        return cls(days, ends_at)

    def describe(self, w: Wording) -> str:
        return f"{self.days} calendar days to pass, to {w.clock(self.ends_at)} on the last day"

    def to_params(self) -> dict[str, Any]:
        return {"days": self.days, **({"ends_at": self.ends_at.isoformat()} if self.ends_at else {})}

    def deadline(self, a: Account, r: Rules) -> datetime | None:
        if a.started_at is None:
            return None
        first = a.started_at.astimezone(r.tz).date()
        return datetime.combine(first + timedelta(days=self.days - 1), self.ends_at or r.reset_time, r.tz)

    def next_instant(self, a: Account, r: Rules, now: datetime) -> datetime | None:
        return self.deadline(a, r)

    def breach(self, a: Account, r: Rules, equity: Decimal, now: datetime) -> Breach | None:
        deadline = self.deadline(a, r)
        if deadline is None or now < deadline:
            return None
        return Breach(
            self.kind,
            True,
            {"days": str(self.days), "ends_at": (self.ends_at or r.reset_time).isoformat(), "timezone": r.timezone},
            {"started_at": str(a.started_at), "deadline": deadline.isoformat(), "time": now.isoformat()},
            "TIME_LIMIT_REACHED",
        )

    def objective(self, a: Account, r: Rules, now: datetime | None = None) -> Objective | None:
        deadline = self.deadline(a, r)
        if deadline is None or now is None:
            return None
        left = max(deadline - now, timedelta(0))
        days_left = Decimal(left.total_seconds() / 86400).quantize(Decimal("0.01"))
        return Objective(self.kind, Decimal(self.days), Decimal(self.days) - days_left, days_left, "OK")
