"""Replay of real OHLCV bars with deterministic intrabar paths.

Each bar becomes a path Open → first extreme → second extreme → Close. Which extreme
comes first and when is drawn from a generator seeded by (seed, symbol, bar index),
and the path between the four waypoints is a linear walk with bounded noise clipped
to [Low, High]. So the path touches exactly the bar's high and low, starts at its
open, ends at its close, and is the same on every run: 1-hour candles aggregated from
replayed EURUSD ticks equal the file's rows.
"""

from __future__ import annotations

import csv
import itertools
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Bar:
    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


def load_bars(path: Path, tz: str = "UTC") -> list[Bar]:
    """The `backtesting` package's CSV format: ,Open,High,Low,Close,Volume."""
    bars = []
    with path.open() as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            t = datetime.fromisoformat(row[0])
            bars.append(
                Bar(
                    t.replace(tzinfo=UTC) if t.tzinfo is None else t,
                    Decimal(row[1]),
                    Decimal(row[2]),
                    Decimal(row[3]),
                    Decimal(row[4]),
                    Decimal(row[5]),
                )
            )
    return bars


def bar_duration(bars: list[Bar]) -> timedelta:
    """The most common spacing between bars (1 h, 1 day, 1 month ≈ 30 days)."""
    gaps = sorted(b.time - a.time for a, b in itertools.pairwise(bars))
    return gaps[len(gaps) // 2] if gaps else timedelta(hours=1)


def intrabar_path(bar: Bar, steps: int, seed: int, symbol: str, index: int, tick: Decimal) -> list[Decimal]:
    """`steps + 1` prices from open to close, touching high and low, rounded to `tick`."""
    if steps < 3:
        raise ValueError("need at least 3 steps to visit open, high, low and close")
    rng = np.random.default_rng([seed, zlib.crc32(symbol.encode()), index])
    o, h, lo, c = (float(x) for x in (bar.open, bar.high, bar.low, bar.close))
    high_first = bool(rng.random() < 0.5)
    a = round(steps * rng.uniform(0.1, 0.45))
    b = round(steps * rng.uniform(0.55, 0.9))
    a = min(max(a, 1), steps - 2)
    b = min(max(b, a + 1), steps - 1)
    first, second = (h, lo) if high_first else (lo, h)
    knots_x = [0, a, b, steps]
    knots_y = [o, first, second, c]
    base = np.interp(np.arange(steps + 1), knots_x, knots_y)
    # Noise that vanishes at every waypoint (a bridge per segment), within the bar's range.
    noise = rng.standard_normal(steps + 1) * (h - lo) * 0.05
    for x0, x1 in itertools.pairwise(knots_x):
        seg = noise[x0 : x1 + 1]
        seg -= np.linspace(seg[0], seg[-1], len(seg))
    path = np.clip(base + noise, lo, h)
    exact = {0: bar.open, a: first_dec(bar, high_first), b: second_dec(bar, high_first), steps: bar.close}
    out = []
    for i, p in enumerate(path):
        if i in exact:
            out.append(exact[i])
        else:
            q = (Decimal(repr(float(p))) / tick).to_integral_value() * tick
            out.append(min(max(q, bar.low), bar.high))
    return out


def first_dec(bar: Bar, high_first: bool) -> Decimal:
    return bar.high if high_first else bar.low


def second_dec(bar: Bar, high_first: bool) -> Decimal:
    return bar.low if high_first else bar.high


class ReplayCursor:
    """Walks the bars tick by tick, to the end of the file and back: odd loops play it
    backwards (each bar from its close to its open, through its high and low), so the price
    always continues from where it stopped and comes back to the file's own levels. Restarted
    at the first bar scaled to the last price instead, a file that ends far from its start
    compounded each loop (BTCUSD, $5.55 to $93,381: ×16,826 every 156 bars, $1.6 billion after
    the second). `scale` remains for a position saved by that version, and stays put."""

    def __init__(self, bars: list[Bar], symbol: str, steps_per_bar: int, seed: int, tick: Decimal) -> None:
        if not bars:
            raise ValueError("no bars")
        self.bars = bars
        self.symbol = symbol
        self.steps = steps_per_bar
        self.seed = seed
        self.tick = tick
        self.index = 0
        self.step = 0
        self.loop = 0
        self.scale = Decimal(1)
        self._path = self._make_path()

    def _make_path(self) -> list[Decimal]:
        bar = self.bars[self.index]
        if self.scale != 1:
            s, t = self.scale, self.tick
            bar = Bar(
                bar.time,
                (bar.open * s).quantize(t),
                (bar.high * s).quantize(t),
                (bar.low * s).quantize(t),
                (bar.close * s).quantize(t),
                bar.volume,
            )
        if self.backward:
            bar = Bar(bar.time, bar.close, bar.high, bar.low, bar.open, bar.volume)
        return intrabar_path(bar, self.steps, self.seed + self.loop, self.symbol, self.index, self.tick)

    @property
    def backward(self) -> bool:
        return self.loop % 2 == 1

    @property
    def bar(self) -> Bar:
        return self.bars[self.index]

    def next_price(self) -> tuple[Decimal, Decimal]:
        """The next price and its share of the bar's volume."""
        price = self._path[self.step]
        volume = self.bar.volume / (self.steps + 1)
        self.step += 1
        if self.step > self.steps:
            self.step = 0
            self.index += -1 if self.backward else 1
            if not 0 <= self.index < len(self.bars):  # the end of a pass: the same bar, the other way
                self.index = min(max(self.index, 0), len(self.bars) - 1)
                self.loop += 1
            self._path = self._make_path()
        return price, volume
