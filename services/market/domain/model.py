"""The default feed's price model: each instrument as calibration.py says the real one behaves.

A step of `dt` seconds while the market is open moves the mid by a log-return of variance

    σ² · dt / open_seconds_per_year · activity(t) · g

σ the instrument's annual volatility over its open time (so a stock moves in its 6.5 hours,
not spread over 24), `activity` the intraday shape (seasonality.py), and `g` a GARCH(1,1)
factor updated each minute from the minute's own standardised return,

    g ← (1 − α − β) + α·z² + β·g        α = 0.06, β = 0.92

so quiet and busy spells cluster (a shock lifts the next minutes' variance; half-life about
35 minutes) while the mean of g stays 1 and the annual volatility is kept. Innovations are
Student-t with 5 degrees of freedom scaled to unit variance: fat tails, where a Gaussian walk
never moves 5σ. While the market is closed nothing moves. Spreads are the typical spread,
wider out of hours, with a little noise, never below a tick. Seeded per (seed, symbol): the
same seed draws the same path on any machine.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from services.market.domain import seasonality
from services.market.domain.calibration import PROFILES, Profile
from services.market.domain.instruments import Instrument
from services.market.domain.ticks import Tick, round_to_tick

ALPHA, BETA = 0.06, 0.92
NU = 5.0  # Student-t degrees of freedom
_T_SCALE = math.sqrt((NU - 2) / NU)  # a t(ν) draw times this has unit variance
SPREAD_NOISE = 0.25  # lognormal σ of the spread around its typical width

# Open hours a year by calendar: the time the annual volatility is spread over.
OPEN_HOURS_PER_YEAR = {
    "FX": 52 * 120,  # Sunday 17:00 to Friday 17:00 New York
    "24/7": 365.25 * 24,
    "XNYS": 252 * 6.5,
    "XCAS": 250 * 6.0,
    "CME": 52 * 115,  # index futures' Globex week: 23 hours a day, five days
    "GLOBEX": 52 * 115,
}


def profile(inst: Instrument) -> Profile:
    """The instrument's calibration (or one made from its catalogue entry)."""
    return PROFILES.get(inst.symbol) or Profile(inst.start_price, inst.volatility, inst.spread_ticks, 1.0, "crypto")


def minute_variance(inst: Instrument) -> float:
    """The variance of one open minute's log-return at activity 1 and g = 1."""
    return profile(inst).volatility ** 2 * 60 / (OPEN_HOURS_PER_YEAR[inst.calendar] * 3600)


class CalibratedPath:
    """One instrument's mid, spread and GARCH state."""

    def __init__(self, inst: Instrument, seed: int) -> None:
        self.inst = inst
        self.profile = profile(inst)
        self.rng = np.random.default_rng([seed, zlib.crc32(inst.symbol.encode())])
        self.mid = float(self.profile.reference)
        self.g = 1.0
        self._per_minute = minute_variance(inst)
        self._minute: int | None = None  # the minute being accumulated
        self._minute_return = 0.0
        self._minute_expected = 0.0

    def _close_minute(self, minute: int) -> None:
        if self._minute is not None and self._minute_expected > 0:
            z2 = self._minute_return**2 / self._minute_expected
            self.g = (1 - ALPHA - BETA) + ALPHA * min(z2, 50.0) + BETA * self.g
        self._minute, self._minute_return, self._minute_expected = minute, 0.0, 0.0

    def move(self, dt_seconds: float, at: datetime) -> float:
        """Advance the mid by one open step; returns the log-return."""
        minute = int(at.timestamp() // 60)
        if minute != self._minute:
            self._close_minute(minute)
        base = self._per_minute * dt_seconds / 60 * seasonality.activity(self.profile.session, at)
        var = base * self.g
        r = math.sqrt(var) * float(self.rng.standard_t(NU)) * _T_SCALE
        self._minute_return += r
        self._minute_expected += var
        self.mid *= math.exp(r)
        return r

    def step(self, dt_seconds: float, now: datetime, is_open: bool = True) -> Tick:
        if is_open:
            self.move(dt_seconds, now)
        return self.tick_at(Decimal(repr(self.mid)), now)

    def spread_ticks(self, at: datetime) -> int:
        p = self.profile
        typical = p.spread_ticks * (p.quiet_spread if seasonality.quiet(p.session, at) else 1.0)
        return max(1, round(typical * math.exp(SPREAD_NOISE * float(self.rng.standard_normal()))))

    def tick_at(self, mid: Decimal, now: datetime) -> Tick:
        tick = self.inst.tick_size
        half = tick * self.spread_ticks(now) / 2
        bid = max(round_to_tick(mid - half, tick), tick)
        ask = max(round_to_tick(mid + half, tick), bid + tick)
        return Tick(self.inst.symbol, bid, ask, now, "simulated")


def minute_bars(
    inst: Instrument, first: datetime, n: int, end: float, seed: int, is_open: Callable[[datetime], bool]
) -> np.ndarray:
    """(n, 4) open/high/low/close of the `n` minutes from `first`, drawn from the same model as
    the live feed (six 10-second steps a minute; closed minutes do not move) and scaled so the
    last close is `end`: a fresh market's last day has the live feed's character and meets it
    at its first price."""
    path = CalibratedPath(inst, seed)
    out = np.empty((n, 4))
    for i in range(n):
        t = first + timedelta(minutes=i)
        moving = is_open(t)
        o = hi = lo = path.mid
        for k in range(6):
            if moving:
                path.move(10.0, t + timedelta(seconds=10 * k))
            hi, lo = max(hi, path.mid), min(lo, path.mid)
        out[i] = (o, hi, lo, path.mid)
    if n:
        out *= end / out[-1, 3]
    return out
