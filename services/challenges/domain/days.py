"""Trading days in a rule pack's time zone, with its reset time, daylight saving included.

A trading day is named by the calendar date on which it ends. With a midnight reset
that is the local date; with a 17:00 Chicago reset (the CME convention) the session
that starts Monday 17:00 is Tuesday's.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _offset(reset: time) -> timedelta:
    return timedelta(hours=reset.hour, minutes=reset.minute, seconds=reset.second)


def trading_day(at: datetime, tz: ZoneInfo, reset: time) -> date:
    local = at.astimezone(tz)
    offset = _offset(reset)
    d = (local.replace(tzinfo=None) - offset).date()
    return d + timedelta(days=1) if offset else d


def day_start(day: date, tz: ZoneInfo, reset: time) -> datetime:
    """The instant trading day `day` begins (a wall-clock time in the zone, DST-aware)."""
    start_date = day - timedelta(days=1) if _offset(reset) else day
    return datetime.combine(start_date, reset, tz)


def next_reset(at: datetime, tz: ZoneInfo, reset: time) -> datetime:
    return day_start(trading_day(at, tz, reset) + timedelta(days=1), tz, reset)


def at_local(day: date, tz: ZoneInfo, reset: time, at: time) -> datetime:
    """The instant within trading day `day` at which the local clock shows `at` (Topstep's
    15:10 CT flat time in the session that began 17:00 the evening before)."""
    start = day_start(day, tz, reset)
    first = datetime.combine(start.date(), at, tz)
    return first if first >= start else datetime.combine(start.date() + timedelta(days=1), at, tz)
