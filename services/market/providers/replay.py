"""Replay of the real OHLCV files shipped by the `backtesting` package (opt-in: MARKET_REPLAY).

EURUSD (hourly, 2017–2018), GOOG (daily, 2004–2013) and BTCUSD (monthly, 2012–2024), used for
their shape, not their level or clock: each file is rebased to the instrument's reference
level (calibration.py) when a replay starts fresh, and plays at its own bar length — an hourly
bar an hour — unless `seconds_per_bar` accelerates it (60: EURUSD an hour a minute, BTCUSD a
month a minute; for demos and tests, named in `make run`'s banner). A bar's intrabar path has
at most MAX_PATH points; a longer bar holds each point for several ticks.
"""

from __future__ import annotations

import asyncio
import importlib.resources
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.market.domain.breaker import CircuitBreaker
from services.market.domain.instruments import Instrument
from services.market.domain.replay import Bar, ReplayCursor, bar_duration, load_bars
from services.market.domain.ticks import Tick, round_to_tick
from services.market.providers.base import Emit

FILES = {"EURUSD": "EURUSD.csv", "GOOG": "GOOG.csv", "BTCUSD": "BTCUSD.csv"}
MAX_PATH = 3600  # points of one bar's path (a month at real time would be 5 million ticks)


def data_dir() -> Path:
    return Path(str(importlib.resources.files("backtesting") / "test"))


class ReplayProvider:
    name = "replay"

    def __init__(self, instruments: dict[str, Instrument], seed: int, interval: float, seconds_per_bar: float) -> None:
        self.instruments = {s: instruments[s] for s in FILES if s in instruments}
        self.symbols = frozenset(self.instruments)
        self.interval = interval
        self.breaker = CircuitBreaker()
        self.last_tick_at: datetime | None = None
        self.bar_a_minute = seconds_per_bar == 60
        self.cursors: dict[str, ReplayCursor] = {}
        self.acceleration: dict[str, float] = {}
        self.hold: dict[str, int] = {}  # ticks each path point is held for
        self._held: dict[str, tuple[int, Decimal, Decimal]] = {}
        for sym, inst in self.instruments.items():
            bars = load_bars(data_dir() / FILES[sym])
            bar_seconds = seconds_per_bar or bar_duration(bars).total_seconds()
            ticks = max(3, int(bar_seconds / interval))
            steps = min(ticks, MAX_PATH)
            self.hold[sym] = max(1, round(ticks / steps))
            cursor = ReplayCursor(bars, sym, steps, seed, inst.tick_size)
            cursor.scale = self._rebased(inst, bars[0])
            cursor._path = cursor._make_path()
            self.cursors[sym] = cursor
            self.acceleration[sym] = bar_duration(bars).total_seconds() / bar_seconds

    @staticmethod
    def _rebased(inst: Instrument, bar: Bar) -> Decimal:
        """The scale that puts `bar` at the instrument's reference level."""
        return (inst.start_price / bar.open).quantize(Decimal("1e-12"))

    def state(self) -> dict[str, Any]:
        return {s: self.cursor_state(s) for s in self.cursors}

    def cursor_state(self, symbol: str) -> list[Any]:
        c = self.cursors[symbol]
        return [c.index, c.step, c.loop, str(c.scale)]

    def begin_after(self, bars: int) -> None:
        """A first start: play from `bars` bars in, so the bars before are the recorded past."""
        for sym, c in self.cursors.items():
            c.index, c.step = min(bars, len(c.bars) - 1), 0
            c.scale = self._rebased(self.instruments[sym], c.bars[c.index])
            c._path = c._make_path()

    def recorded_past(self, symbol: str) -> tuple[list[Bar], Decimal]:
        """The bars before the cursor (what the replay would have played) and their scale."""
        c = self.cursors[symbol]
        return c.bars[: c.index], c.scale

    def restore(self, state: dict[str, Any]) -> None:
        """Resume where the last run stopped instead of replaying from the first bar."""
        for sym, (index, step, loop, scale) in state.items():
            c = self.cursors.get(sym)
            if c is not None and 0 <= index < len(c.bars):
                c.index, c.loop, c.scale = int(index), int(loop), Decimal(scale)
                c._path = c._make_path()
                c.step = min(int(step), c.steps)

    def step(self, emit: Emit) -> None:
        now = datetime.now(UTC)
        for sym, cursor in self.cursors.items():
            inst = self.instruments[sym]
            count, mid, volume = self._held.get(sym, (0, Decimal(0), Decimal(0)))
            if count == 0:
                mid, volume = cursor.next_price()
                volume /= self.hold[sym]
            self._held[sym] = ((count + 1) % self.hold[sym], mid, volume)
            # The instrument's typical spread, relative to price: replayed levels can be far
            # from today's (BTCUSD traded at $5 in 2012).
            relative = inst.tick_size * inst.spread_ticks / inst.start_price
            half = max(mid * relative / 2, inst.tick_size / 2)
            bid = max(round_to_tick(mid - half, inst.tick_size), inst.tick_size)
            ask = max(round_to_tick(mid + half, inst.tick_size), bid + inst.tick_size)
            emit(Tick(sym, bid, ask, now, self.name, volume.quantize(inst.quantity_step)))
        self.last_tick_at = now

    async def run(self, emit: Emit) -> None:
        while True:
            self.step(emit)
            await asyncio.sleep(self.interval)

    def detail(self) -> str:
        parts = [
            f"{s} bar {self.cursors[s].index}/{len(self.cursors[s].bars)} ×{a:g}" for s, a in self.acceleration.items()
        ]
        return "real OHLCV replay: " + ", ".join(parts)
