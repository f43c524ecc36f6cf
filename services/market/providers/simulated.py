"""The simulated provider: every instrument drawn from its calibrated model (domain/model.py),
stepped on a timer; a market that is closed does not move."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from services.market.domain.breaker import CircuitBreaker
from services.market.domain.instruments import Instrument
from services.market.domain.model import CalibratedPath
from services.market.providers.base import Emit


class SimulatedProvider:
    name = "simulated"

    def __init__(self, instruments: list[Instrument], seed: int, interval: float) -> None:
        self.paths = {i.symbol: CalibratedPath(i, seed) for i in instruments}
        self.symbols = frozenset(self.paths)
        self.interval = interval
        self.breaker = CircuitBreaker()
        self.last_tick_at: datetime | None = None
        # Whether a symbol's market is open (the price router's calendars, set at wiring).
        self.is_open: Callable[[str, datetime], bool] = lambda _symbol, _at: True

    def rebase(self, symbol: str, mid: Decimal) -> None:
        """Continue from the price another provider last published (no jump on failover)."""
        self.paths[symbol].mid = float(mid)

    def step(self, emit: Emit) -> None:
        now = datetime.now(UTC)
        for sym, path in self.paths.items():
            emit(path.step(self.interval, now, self.is_open(sym, now)))
        self.last_tick_at = now

    async def run(self, emit: Emit) -> None:
        while True:
            self.step(emit)
            await asyncio.sleep(self.interval)

    def detail(self) -> str:
        return (
            f"calibrated model (GARCH(1,1), Student-t, intraday seasonality), {len(self.paths)} symbols, "
            f"every {self.interval}s"
        )
