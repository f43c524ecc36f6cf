"""Drives the providers: each simulated instrument steps on a timer into the hub.

Symbols pinned by the scripted source (SetPrice) stop receiving simulated ticks, so
a test that sets a price sees exactly that price until it sets another.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from services.market.domain.instruments import Instrument
from services.market.domain.simulated import GbmPath
from services.market.domain.ticks import Tick, round_to_tick
from services.market.hub import PriceHub


class Feed:
    def __init__(self, hub: PriceHub, instruments: list[Instrument], seed: int, interval: float) -> None:
        self.hub = hub
        self.interval = interval
        self.paths = {i.symbol: GbmPath(i, seed) for i in instruments}
        self.instruments = {i.symbol: i for i in instruments}
        self.scripted: set[str] = set()
        self.last_tick_at: datetime | None = None
        now = datetime.now(UTC)
        for path in self.paths.values():
            self.hub.publish(path.tick_at(path.inst.start_price, now))

    def step(self) -> None:
        now = datetime.now(UTC)
        for sym, path in self.paths.items():
            if sym not in self.scripted:
                self.hub.publish(path.step(self.interval, now))
        self.last_tick_at = now

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.step()

    def set_price(self, symbol: str, bid: Decimal, ask: Decimal) -> Tick:
        inst = self.instruments[symbol]
        tick = Tick(
            symbol,
            round_to_tick(bid, inst.tick_size),
            round_to_tick(ask, inst.tick_size),
            datetime.now(UTC),
            "scripted",
        )
        self.scripted.add(symbol)
        self.paths[symbol].mid = float((tick.bid + tick.ask) / 2)
        self.hub.publish(tick)
        return tick
