"""When each market is open: exchange calendars, the FX week, and 24/7 crypto.

Exchanges come from `exchange-calendars` (holidays, early closes, DST). Casablanca
is not in that library, so `xcas.py` defines it the library's way and registers it; the CME
Globex futures session (with its daily halt) is `globex.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cache
from typing import Protocol
from zoneinfo import ZoneInfo

import pandas as pd

NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Status:
    is_open: bool
    next_open: datetime | None  # None when open
    next_close: datetime | None  # None when closed, or never closes (24/7)


class Calendar(Protocol):
    name: str

    def status(self, at: datetime) -> Status: ...


class AlwaysOpen:
    name = "24/7"

    def status(self, at: datetime) -> Status:
        return Status(True, None, None)


class FxWeek:
    """Spot FX (and metals): Sunday 17:00 to Friday 17:00 New York time, DST included."""

    name = "FX"

    def status(self, at: datetime) -> Status:
        local = at.astimezone(NEW_YORK)
        wd, t = local.weekday(), local.time()  # Monday = 0
        five_pm = time(17, 0)
        closed = wd == 5 or (wd == 4 and t >= five_pm) or (wd == 6 and t < five_pm)
        if closed:
            days_to_sunday = (6 - wd) % 7
            sunday = (local + timedelta(days=days_to_sunday)).date()
            opens = datetime.combine(sunday, five_pm, NEW_YORK)
            return Status(False, opens.astimezone(UTC), None)
        days_to_friday = (4 - wd) % 7
        friday = (local + timedelta(days=days_to_friday)).date()
        closes = datetime.combine(friday, five_pm, NEW_YORK)
        return Status(True, None, closes.astimezone(UTC))


class Exchange:
    """An `exchange-calendars` calendar (XNYS, XCAS, CMES, ...), over a window of dates.

    The library builds minute indexes for the whole range it is given, 20 years back by
    default: the four calendars held 350 MB of market's RSS. It is built for about a year
    either side of now, and rebuilt wider only if someone asks about a time outside it."""

    SPAN = pd.Timedelta(days=400)

    def __init__(self, code: str) -> None:
        from services.market.domain import globex, xcas

        xcas.register()
        globex.register()
        self.name = code
        now = pd.Timestamp.now(tz="UTC").normalize()
        self._build(now - self.SPAN, now + self.SPAN)

    def _build(self, start: pd.Timestamp, end: pd.Timestamp) -> None:
        import exchange_calendars as xc

        self._start, self._end = start, end
        self._cal = xc.get_calendar(self.name, start=start.tz_localize(None), end=end.tz_localize(None))

    def status(self, at: datetime) -> Status:
        ts = pd.Timestamp(at).tz_convert("UTC").floor("min")
        if not self._start + pd.Timedelta(days=7) <= ts <= self._end - pd.Timedelta(days=30):
            self._build(
                min(self._start, ts.normalize() - pd.Timedelta(days=30)), max(self._end, ts.normalize() + self.SPAN)
            )
        if self._cal.is_open_on_minute(ts, ignore_breaks=False):
            return Status(True, None, self._cal.next_close(ts).to_pydatetime())
        return Status(False, self._cal.next_open(ts).to_pydatetime(), None)


@cache
def get(name: str) -> Calendar:
    if name == "24/7":
        return AlwaysOpen()
    if name == "FX":
        return FxWeek()
    return Exchange(name)


class CachedStatus:
    """Status per calendar, recomputed only outside the span it is known for (from when it was
    computed to the next transition), so the feed can ask on every tick without calling into
    pandas, and a caller walking through time in any order (history) still gets it right."""

    def __init__(self, always_open: frozenset[str] = frozenset()) -> None:
        self._cache: dict[str, tuple[Status, datetime, datetime | None]] = {}
        # Calendars treated as open at every hour: for scripted prices only (local and test
        # stacks), so a test of a futures account does not depend on the hour CI runs at.
        self.always_open = always_open

    def status(self, calendar: str, at: datetime) -> Status:
        if calendar in self.always_open:
            return Status(True, None, None)
        hit = self._cache.get(calendar)
        if hit is not None and hit[1] <= at and (hit[2] is None or at < hit[2]):
            return hit[0]
        st = get(calendar).status(at)
        until = st.next_close if st.is_open else st.next_open
        self._cache[calendar] = (st, at, until)
        return st
