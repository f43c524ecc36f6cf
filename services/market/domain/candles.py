"""OHLCV candles aggregated from ticks, for the chart intervals the API offers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

INTERVALS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}


def bucket_start(t: datetime, interval: str) -> datetime:
    """Start of the candle holding `t` (UTC-aligned; daily candles start at 00:00 UTC)."""
    seconds = INTERVALS[interval]
    epoch = int(t.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


@dataclass
class Candle:
    symbol: str
    interval: str
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    def add(self, price: Decimal, volume: Decimal) -> None:
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.close = price
        self.volume += volume

    @property
    def close_time(self) -> datetime:
        return self.open_time + timedelta(seconds=INTERVALS[self.interval])


class CandleAggregator:
    """Current candle per (symbol, interval); the candles it closed and changed since
    the last `drain()` are what the store persists."""

    def __init__(self, intervals: tuple[str, ...] = tuple(INTERVALS)) -> None:
        self.intervals = intervals
        self.current: dict[tuple[str, str], Candle] = {}
        self._dirty: dict[tuple[str, str, datetime], Candle] = {}

    def add(self, symbol: str, time: datetime, price: Decimal, volume: Decimal = Decimal(0)) -> None:
        for interval in self.intervals:
            start = bucket_start(time, interval)
            key = (symbol, interval)
            c = self.current.get(key)
            if c is None or start > c.open_time:
                c = Candle(symbol, interval, start, price, price, price, price, volume)
                self.current[key] = c
            elif start < c.open_time:
                continue  # a late tick for a candle already closed: ignored, candles stay monotonic
            else:
                c.add(price, volume)
            self._dirty[(symbol, interval, c.open_time)] = c

    def rewrite(self, candles: Iterable[Candle]) -> None:
        """Write these at the next drain too (a failed write's, or the open candles a new leader
        aggregated as a follower), unless a newer state of one is already due."""
        for c in candles:
            self._dirty.setdefault((c.symbol, c.interval, c.open_time), c)

    def drain(self) -> list[Candle]:
        out = list(self._dirty.values())
        self._dirty.clear()
        return [Candle(**vars(c)) for c in out]  # copies: the store writes a snapshot
