"""The simulated provider: GBM paths for every instrument, on a timer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from services.market.domain.breaker import CircuitBreaker
from services.market.domain.instruments import Instrument
from services.market.domain.simulated import GbmPath
from services.market.providers.base import Emit


class SimulatedProvider:
    name = "simulated"

    def __init__(self, instruments: list[Instrument], seed: int, interval: float) -> None:
        self.paths = {i.symbol: GbmPath(i, seed) for i in instruments}
        self.symbols = frozenset(self.paths)
        self.interval = interval
        self.breaker = CircuitBreaker()
        self.last_tick_at: datetime | None = None

    def rebase(self, symbol: str, mid: Decimal) -> None:
        """Continue from the price another provider last published (no jump on failover)."""
        self.paths[symbol].mid = float(mid)

    def step(self, emit: Emit) -> None:
        now = datetime.now(UTC)
        for path in self.paths.values():
            emit(path.step(self.interval, now))
        self.last_tick_at = now

    async def run(self, emit: Emit) -> None:
        while True:
            self.step(emit)
            await asyncio.sleep(self.interval)

    def detail(self) -> str:
        return f"geometric Brownian motion, {len(self.paths)} symbols, every {self.interval}s"
