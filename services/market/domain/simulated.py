"""Simulated prices: geometric Brownian motion per instrument, deterministic per seed."""

from __future__ import annotations

import math
import zlib
from datetime import datetime
from decimal import Decimal

import numpy as np

from services.market.domain.instruments import Instrument
from services.market.domain.ticks import Tick, round_to_tick

SECONDS_PER_YEAR = 365.25 * 24 * 3600


class GbmPath:
    """One instrument's mid price: S(t+dt) = S(t)·exp((μ − σ²/2)dt + σ√dt·Z)."""

    def __init__(self, inst: Instrument, seed: int, drift: float = 0.0) -> None:
        self.inst = inst
        # Stable per (seed, symbol): the same seed replays the same path on any machine.
        self.rng = np.random.default_rng([seed, zlib.crc32(inst.symbol.encode())])
        self.mid = float(inst.start_price)
        self.drift = drift

    def step(self, dt_seconds: float, now: datetime) -> Tick:
        dt = dt_seconds / SECONDS_PER_YEAR
        sigma = self.inst.volatility
        z = float(self.rng.standard_normal())
        self.mid *= math.exp((self.drift - 0.5 * sigma * sigma) * dt + sigma * math.sqrt(dt) * z)
        return self.tick_at(Decimal(repr(self.mid)), now)

    def tick_at(self, mid: Decimal, now: datetime) -> Tick:
        tick = self.inst.tick_size
        half_spread = tick * self.inst.spread_ticks / 2
        bid = round_to_tick(mid - half_spread, tick)
        ask = max(round_to_tick(mid + half_spread, tick), bid + tick)
        return Tick(self.inst.symbol, bid, ask, now, "simulated")
