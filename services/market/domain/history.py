"""The past a fresh market starts with, so that a chart has history from the first start.

Per symbol, ending at the minute the live feed starts in and at its current price: the last
`MINUTES` minutes as 1-minute candles, the `HOURS` hours before them as hourly candles and the
`DAYS` days before those as daily ones, each segment ending at the open of the one after it.
Coarser candles over a finer segment are aggregated from it (a 1h candle bounds its 1m candles;
the current hour's and day's candles are still open and the live feed continues them). Only
minutes the symbol's market is open have candles, as live.

The last day's minutes come from the live feed's own model (domain/model.py: calibrated
volatility, GARCH clustering, fat tails, the intraday shape, still while the market is closed),
scaled to end at the price the feed starts from, so the chart a trader opens has the character
of what streams after it and no jump at the seam. (A replay accelerated to a bar a minute takes
its recent minutes from the file instead, as it plays them.) The hours and days before are a
seeded random walk with the instrument's volatility over its open time, walked backwards from
the price it must end at. The same seed gives the same past on every machine.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from services.market.domain import model
from services.market.domain.candles import INTERVALS, Candle, bucket_start
from services.market.domain.instruments import Instrument
from services.market.domain.replay import Bar
from services.market.domain.ticks import round_to_tick

MINUTES = 24 * 60  # 1m candles (and 5m / 15m aggregated from them) for the last day
HOURS = 30 * 24  # then hourly candles for 30 days
DAYS = 365  # then daily candles for a year
YEAR = 365 * 24 * 3600

IsOpen = Callable[[datetime], bool]


def _walk(end: float, n: int, step_seconds: int, vol: float, rng: np.random.Generator, open_year: float) -> np.ndarray:
    """(n, 4) open/high/low/close of `n` bars whose last close is `end`, walking back in time;
    `vol` is spread over `open_year` seconds of trading a year."""
    if n == 0:
        return np.empty((0, 4))
    sigma = vol * math.sqrt(step_seconds / open_year)
    r = rng.normal(0.0, sigma, n)
    # close[i] = end / exp(sum of the returns after bar i)
    after = np.concatenate([np.cumsum(r[::-1])[::-1][1:], [0.0]])
    close = end / np.exp(after)
    open_ = close / np.exp(r)
    wick = np.abs(rng.normal(0.0, sigma / 2, (2, n)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    return np.stack([open_, high, low, close], axis=1)


def _candles(
    inst: Instrument, interval: str, start: datetime, ohlc: np.ndarray, is_open: IsOpen, volume: Sequence[Decimal]
) -> list[Candle]:
    out = []
    step = timedelta(seconds=INTERVALS[interval])
    tick = inst.tick_size
    for i, (o, h, lo, c) in enumerate(ohlc):
        t = start + i * step
        if not is_open(t):
            continue
        op, cl = round_to_tick(Decimal(repr(float(o))), tick), round_to_tick(Decimal(repr(float(c))), tick)
        hi = max(round_to_tick(Decimal(repr(float(h))), tick), op, cl)
        low = max(min(round_to_tick(Decimal(repr(float(lo))), tick), op, cl), tick)
        out.append(Candle(inst.symbol, interval, t, op, hi, low, cl, volume[i]))
    return out


def aggregate(candles: list[Candle], interval: str) -> list[Candle]:
    """Coarser candles from finer ones (in time order): first open, extremes, last close, summed volume."""
    out: dict[datetime, Candle] = {}
    for c in candles:
        start = bucket_start(c.open_time, interval)
        agg = out.get(start)
        if agg is None:
            out[start] = Candle(c.symbol, interval, start, c.open, c.high, c.low, c.close, c.volume)
        else:
            agg.high, agg.low = max(agg.high, c.high), min(agg.low, c.low)
            agg.close, agg.volume = c.close, agg.volume + c.volume
    return list(out.values())


def recorded_minutes(inst: Instrument, bars: Sequence[Bar], scale: Decimal, before: datetime) -> list[Candle]:
    """The recorded bars (at the replay's scale) as the 1-minute candles that end at `before`."""
    first = bucket_start(before, "1m") - timedelta(minutes=len(bars))
    step = inst.quantity_step
    return [
        Candle(
            inst.symbol,
            "1m",
            first + timedelta(minutes=i),
            round_to_tick(b.open * scale, inst.tick_size),
            round_to_tick(b.high * scale, inst.tick_size),
            round_to_tick(b.low * scale, inst.tick_size),
            round_to_tick(b.close * scale, inst.tick_size),
            b.volume.quantize(step),
        )
        for i, b in enumerate(bars)
    ]


def past(
    inst: Instrument,
    now: datetime,
    price: Decimal,
    seed: int,
    is_open: IsOpen,
    recorded: list[Candle] | None = None,
) -> list[Candle]:
    """Every candle of `inst` before the live feed starts at `now` with `price` (see the module)."""
    rng = np.random.default_rng([seed, zlib.crc32(inst.symbol.encode())])
    vol, zero = inst.volatility, [Decimal(0)] * max(MINUTES, HOURS, DAYS)
    open_year = model.OPEN_HOURS_PER_YEAR[inst.calendar] * 3600
    live = bucket_start(now, "1m")  # the live feed's first minute: history ends before it
    minutes = [c for c in (recorded or [])[-MINUTES:] if is_open(c.open_time)]
    anchor = float(recorded[-MINUTES:][0].open) if recorded else float(price)  # where the walk back starts

    def walk(n: int, step: int) -> np.ndarray:
        nonlocal anchor
        # Daily bars: every calendar day is a bar, so the year's variance is spread over 365.
        bars = _walk(anchor, n, step, vol, rng, YEAR if step >= 86400 else open_year)
        if n:
            anchor = float(bars[0][0])
        return bars

    # The minutes, then back to the hour they start in (so no hourly candle is made of two
    # segments), then whole hours back to a day boundary, then days.
    first_minute = live - timedelta(minutes=MINUTES)
    n_sim = MINUTES - len((recorded or [])[-MINUTES:])
    drawn = model.minute_bars(inst, first_minute, n_sim, anchor, seed, is_open)
    if n_sim:
        anchor = float(drawn[0][0])
    minutes = _candles(inst, "1m", first_minute, drawn, is_open, zero) + minutes
    hour_end = bucket_start(first_minute, "1h")
    n_gap = int((first_minute - hour_end).total_seconds() // 60)
    minutes = _candles(inst, "1m", hour_end, walk(n_gap, 60), is_open, zero) + minutes
    hour_start = hour_end - timedelta(hours=HOURS)
    day_end = bucket_start(hour_start, "1d")
    hours = walk(HOURS, 3600)
    n_lead = int((hour_start - day_end).total_seconds() // 3600)
    hourly = _candles(inst, "1h", day_end, walk(n_lead, 3600), is_open, zero)
    hourly += _candles(inst, "1h", hour_start, hours, is_open, zero)
    daily = _candles(inst, "1d", day_end - timedelta(days=DAYS), walk(DAYS, 86400), lambda t: True, zero)
    # Coarser candles over the finer segments; the hour and day the minutes end in stay open.
    over_minutes = {iv: aggregate(minutes, iv) for iv in ("5m", "15m", "1h", "1d")}
    hourly_all = hourly + over_minutes["1h"]
    daily_all = daily + aggregate(hourly, "1d") + over_minutes["1d"]
    return minutes + over_minutes["5m"] + over_minutes["15m"] + hourly_all + _merge_days(daily_all)


def _merge_days(daily: list[Candle]) -> list[Candle]:
    """One candle per day where two segments meet inside a day (they are aggregated together)."""
    by_day: dict[datetime, list[Candle]] = {}
    for c in daily:
        by_day.setdefault(c.open_time, []).append(c)
    return [aggregate(parts, "1d")[0] for _, parts in sorted(by_day.items())]
