"""Flat by: every position is closed at a local time each session, and no order fills from then
until the next session opens (Topstep: flat by 15:10 CT, trading again from 17:00 CT).

Not a breach: the account stays ACTIVE; the positions are closed at the last prices with
reason `flat_by`, and an order in the closed window is refused (`FLAT_BY`), never judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from services.challenges.domain import days
from services.challenges.domain.rules.base import Context, Params, Rule
from services.challenges.domain.rules.wording import Wording

if TYPE_CHECKING:
    from services.challenges.domain.engine import Account
    from services.challenges.domain.rulepacks import Rules


@dataclass(frozen=True)
class FlatBy(Rule):
    kind = "flat_by"
    at: time

    @classmethod
    def build(cls, params: Params, ctx: Context) -> FlatBy:
        raw = params.text("at", "")
        at = time(0)
        try:
            at = time.fromisoformat(raw)
        except ValueError:
            params.violations[f"{params.path}.at"] = 'a local time such as "15:10" is required'
        params.done()
        return cls(at)

    def describe(self, w: Wording) -> str:
        return f"Flat by {w.clock(self.at)} every session: open positions are closed then"

    def to_params(self) -> dict[str, Any]:
        return {"at": self.at.isoformat()}

    def window(self, r: Rules, now: datetime) -> tuple[datetime, datetime]:
        """[flat time, next session) of the trading day `now` is in."""
        day = days.trading_day(now, r.tz, r.reset_time)
        return days.at_local(day, r.tz, r.reset_time, self.at), days.next_reset(now, r.tz, r.reset_time)

    def trading_closed(self, a: Account, r: Rules, now: datetime) -> str | None:
        flat_at, reopens = self.window(r, now)
        if now < flat_at:
            return None
        return (
            f"positions must be flat from {self.at.strftime('%H:%M')} {r.timezone} until the next "
            f"session opens at {reopens.astimezone(r.tz).strftime('%H:%M')}"
        )

    def next_instant(self, a: Account, r: Rules, now: datetime) -> datetime | None:
        flat_at, reopens = self.window(r, now)
        if now < flat_at:
            return flat_at
        return days.at_local(days.trading_day(reopens, r.tz, r.reset_time), r.tz, r.reset_time, self.at)
