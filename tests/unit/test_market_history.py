"""The past a fresh market starts with: consistent across intervals, ending where live begins,
only when the market is open, the same for the same seed (issue 18)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.market.domain import history
from services.market.domain.calendars import CachedStatus
from services.market.domain.candles import Candle, bucket_start
from services.market.domain.instruments import CATALOGUE
from services.market.domain.replay import Bar

NOW = datetime(2026, 12, 1, 22, 30, 17, tzinfo=UTC)  # a Tuesday
BY_SYMBOL = {i.symbol: i for i in CATALOGUE}
CAL = CachedStatus()


def _past(symbol: str, seed: int = 42, recorded: list[Candle] | None = None) -> dict[str, list[Candle]]:
    inst = BY_SYMBOL[symbol]
    out: dict[str, list[Candle]] = defaultdict(list)
    for c in history.past(inst, NOW, inst.start_price, seed, lambda t: CAL.status(inst.calendar, t).is_open, recorded):
        out[c.interval].append(c)
    return {k: sorted(v, key=lambda c: c.open_time) for k, v in out.items()}


def test_every_coarser_candle_bounds_the_finer_ones_inside_it() -> None:
    candles = _past("BTCUSD")
    for fine, coarse in (("1m", "5m"), ("1m", "1h"), ("1h", "1d"), ("15m", "1h"), ("1m", "1d")):
        by_start = {c.open_time: c for c in candles[coarse]}
        inside: dict[datetime, list[Candle]] = defaultdict(list)
        for c in candles[fine]:
            inside[bucket_start(c.open_time, coarse)].append(c)
        assert inside, (fine, coarse)
        for start, parts in inside.items():
            outer = by_start[start]
            assert outer.low <= min(p.low for p in parts) and max(p.high for p in parts) <= outer.high
            if coarse == "1d" and start == bucket_start(candles["1m"][0].open_time, "1d"):
                continue  # the day the minutes start in opens in the hourly segment
            assert (outer.open, outer.close) == (parts[0].open, parts[-1].close), (fine, coarse, start)


def test_history_ends_before_the_live_minute_at_the_live_price_and_reaches_back() -> None:
    candles = _past("BTCUSD")
    minutes = candles["1m"]
    assert minutes[-1].open_time == bucket_start(NOW, "1m") - timedelta(minutes=1)
    assert minutes[-1].close == BY_SYMBOL["BTCUSD"].start_price
    assert len(minutes) >= history.MINUTES
    assert candles["1h"][0].open_time <= NOW - timedelta(days=30)
    assert candles["1d"][0].open_time <= NOW - timedelta(days=365)
    # The walk is continuous: each candle opens where the one before it closed (24/7: no gaps).
    for a, b in itertools.pairwise(minutes):
        assert b.open == a.close
    for candle in (c for cs in candles.values() for c in cs):
        assert candle.low <= min(candle.open, candle.close) <= max(candle.open, candle.close) <= candle.high


def test_a_closed_market_has_no_candles() -> None:
    # NYSE: nothing on the weekend of 28–29 November 2026, nothing at 03:00 New York.
    minutes = _past("AAPL")["1m"]
    hours = _past("AAPL")["1h"]
    assert all(CAL.status("XNYS", c.open_time).is_open for c in minutes)
    weekend = {datetime(2026, 11, 28).date(), datetime(2026, 11, 29).date()}
    assert not [c for c in hours if c.open_time.date() in weekend]
    assert len(minutes) < history.MINUTES  # a trading day is 6.5 hours


def test_the_same_seed_gives_the_same_past() -> None:
    assert _past("ES") == _past("ES")
    assert _past("ES", seed=7)["1h"] != _past("ES")["1h"]


def test_recorded_bars_become_the_last_minutes() -> None:
    inst = BY_SYMBOL["EURUSD"]
    start = datetime(2017, 1, 2, tzinfo=UTC)
    prices = [Decimal(p) for p in ("1.05", "1.06", "1.04", "1.055")]
    bars = [Bar(start + timedelta(hours=i), *prices, Decimal("1234.5678")) for i in range(120)]
    recorded = history.recorded_minutes(inst, bars, Decimal(1), NOW)
    minutes = _past("EURUSD", recorded=recorded)["1m"]
    assert minutes[-120:] == recorded
    assert recorded[-1].open_time == bucket_start(NOW, "1m") - timedelta(minutes=1)
    assert recorded[0].volume == Decimal("1234.57")  # at the instrument's lot step, not 27 decimals
    assert minutes[-121].close != Decimal(0)


def test_a_full_day_of_recorded_bars_needs_no_simulated_minutes() -> None:
    inst = BY_SYMBOL["BTCUSD"]
    start = datetime(2017, 1, 2, tzinfo=UTC)
    bars = [Bar(start + timedelta(hours=i), *[Decimal(900)] * 4, Decimal(1)) for i in range(history.MINUTES)]
    minutes = _past("BTCUSD", recorded=history.recorded_minutes(inst, bars, Decimal(2), NOW))["1m"]
    assert minutes[-history.MINUTES].close == Decimal(1800)  # at the replay's scale
