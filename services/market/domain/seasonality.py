"""The intraday shape of a market's activity: how much of its variance falls in each minute.

Real markets are not equally busy all day (Andersen & Bollerslev, "Intraday periodicity and
volatility persistence in financial markets", 1997): FX is quiet in the Asian session and
busiest when London and New York overlap; US stocks and index futures trace a U — the open and
the close are the busiest half-hours, lunch the quietest — and Globex is thin overnight. Each
shape is a multiplier of the variance per minute, normalised so that its mean over the
market's open minutes is 1: the annual volatility in calibration.py is kept, only moved within
the day. `quiet` says when spreads widen (out of hours).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
CASABLANCA = ZoneInfo("Africa/Casablanca")

# (from minute of the day, multiplier), in the session's own clock; each holds until the next.
_SHAPES: dict[str, tuple[ZoneInfo | None, tuple[tuple[int, float], ...]]] = {
    # UTC: Asia, London, the London-New York overlap, New York's afternoon, the rollover lull.
    "fx": (
        None,
        ((0, 0.55), (6 * 60, 0.9), (7 * 60, 1.3), (12 * 60, 1.7), (16 * 60, 0.9), (21 * 60, 0.35), (23 * 60, 0.55)),
    ),
    "crypto": (None, ((0, 0.8), (7 * 60, 1.0), (13 * 60, 1.3), (21 * 60, 0.9))),
    # New York: 09:30 open, lunch, the close at 16:00.
    "us_equity": (
        NEW_YORK,
        (
            (0, 1.0),
            (9 * 60 + 30, 2.2),
            (10 * 60, 1.1),
            (11 * 60 + 30, 0.7),
            (14 * 60, 0.9),
            (15 * 60 + 30, 1.6),
            (16 * 60, 1.0),
        ),
    ),
    # Chicago: Globex overnight (Europe's open a little busier), the 08:30 cash open, lunch, the close.
    "globex": (
        CHICAGO,
        (
            (0, 0.35),
            (2 * 60, 0.6),
            (4 * 60, 0.45),
            (8 * 60 + 30, 2.0),
            (9 * 60, 1.2),
            (11 * 60, 0.8),
            (13 * 60 + 30, 1.1),
            (15 * 60 + 15, 0.6),
            (16 * 60, 0.35),
        ),
    ),
    # Casablanca: 09:30 open to 15:30.
    "cse": (CASABLANCA, ((0, 1.0), (9 * 60 + 30, 1.5), (10 * 60, 0.9), (15 * 60, 1.4), (15 * 60 + 30, 1.0))),
}
_SHAPES["cfd_index"] = _SHAPES["globex"]

# The minutes of the day each market is open, for the normalisation (its own clock).
_OPEN: dict[str, tuple[int, int]] = {"us_equity": (570, 960), "cse": (570, 930)}


def _raw(session: str, minute: int) -> float:
    value = 1.0
    for start, m in _SHAPES[session][1]:
        if minute >= start:
            value = m
    return value


@cache
def _norm(session: str) -> float:
    lo, hi = _OPEN.get(session, (0, 1440))
    minutes = range(lo, hi)
    return sum(_raw(session, m) for m in minutes) / len(minutes)


def _minute(session: str, at: datetime) -> int:
    zone = _SHAPES[session][0]
    local = at.astimezone(zone) if zone is not None else at
    return local.hour * 60 + local.minute


def activity(session: str, at: datetime) -> float:
    """The variance multiplier of the minute `at` (mean 1 over the open minutes)."""
    m = _raw(session, _minute(session, at)) / _norm(session)
    if session == "crypto" and at.weekday() >= 5:
        m *= 0.7  # weekends are quieter
    return m


def quiet(session: str, at: datetime) -> bool:
    """Out of hours: spreads widen (FX in Asia and at the rollover, Globex overnight, crypto
    at weekends). Stocks are closed then."""
    minute = _minute(session, at)
    if session == "fx":
        return minute >= 21 * 60 or minute < 6 * 60
    if session in ("globex", "cfd_index"):
        return not (8 * 60 + 30 <= minute < 15 * 60 + 15)
    if session == "crypto":
        return at.weekday() >= 5
    return False
