"""The price router: providers in priority order per symbol, with fallback.

Every provider emits ticks; for each symbol the router publishes only those of the
first *healthy* provider in the symbol's chain (breaker closed and a tick within
`stale_after`). When the primary fails or stalls the next one takes over, continuing
from the last published price; when the primary recovers it takes back. Symbols
pinned by the scripted source ignore every provider. Closed markets publish nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import structlog
from prometheus_client import Gauge

from services.market.domain.calendars import CachedStatus
from services.market.domain.candles import CandleAggregator
from services.market.domain.instruments import Instrument
from services.market.domain.ticker import Rolling24h
from services.market.domain.ticks import Tick, round_to_tick
from services.market.hub import PriceHub
from services.market.providers.base import Provider
from services.market.providers.simulated import SimulatedProvider

log = structlog.get_logger("feed")

PROVIDER_UP = Gauge("market_provider_healthy", "1 when the provider's breaker is closed and it ticks.", ("provider",))
ACTIVE = Gauge(
    "market_symbol_provider_active", "1 for the provider currently serving a symbol.", ("symbol", "provider")
)


class PriceRouter:
    def __init__(
        self,
        hub: PriceHub,
        instruments: dict[str, Instrument],
        providers: list[Provider],
        stale_after: float = 5.0,
    ) -> None:
        self.hub = hub
        self.instruments = instruments
        self.providers = {p.name: p for p in providers}
        self.chain = {s: [p for p in providers if s in p.symbols] for s in instruments}
        self.stale_after = timedelta(seconds=stale_after)
        self.active: dict[str, str] = {}
        self.last_seen: dict[tuple[str, str], datetime] = {}
        self.scripted: set[str] = set()
        self.calendars = CachedStatus()
        self.candles = CandleAggregator()
        self.rolling = Rolling24h()
        self.sim = next((p for p in providers if isinstance(p, SimulatedProvider)), None)
        # The ingestion leader hands each tick it publishes to the other replicas (bus.py).
        self.on_published: Callable[[Tick], None] | None = None

    # --- choosing -------------------------------------------------------------------

    def _healthy(self, provider: Provider, symbol: str, now: datetime) -> bool:
        seen = self.last_seen.get((provider.name, symbol))
        return provider.breaker.state == "closed" and seen is not None and now - seen <= self.stale_after

    def _choose(self, symbol: str, now: datetime) -> str | None:
        for p in self.chain.get(symbol, ()):
            if self._healthy(p, symbol, now):
                return p.name
        return None

    def market_open(self, symbol: str, now: datetime) -> bool:
        return self.calendars.status(self.instruments[symbol].calendar, now).is_open

    # --- ticks -------------------------------------------------------------------------

    def on_tick(self, tick: Tick) -> None:
        sym = tick.symbol
        if sym not in self.instruments:
            return
        self.last_seen[(tick.provider, sym)] = tick.time
        if sym in self.scripted:
            return
        chosen = self._choose(sym, tick.time)
        previous = self.active.get(sym)
        if chosen != previous:
            self._switch(sym, previous, chosen)
            if chosen == "simulated" and previous is not None:
                return  # the simulation was just rebased; its next tick continues from there
        if tick.provider != chosen or not self.market_open(sym, tick.time):
            return
        self.publish(tick)

    def _switch(self, symbol: str, old: str | None, new: str | None) -> None:
        if old is not None:
            ACTIVE.labels(symbol, old).set(0)
            log.warning("provider switch", symbol=symbol, old=old, new=new)
        if new is not None:
            ACTIVE.labels(symbol, new).set(1)
            last = self.hub.latest.get(symbol)
            if new == "simulated" and self.sim is not None and last is not None:
                self.sim.rebase(symbol, last.mid)
            self.active[symbol] = new
        else:
            self.active.pop(symbol, None)

    def publish(self, tick: Tick) -> None:
        self.apply(tick)
        if self.on_published is not None:
            self.on_published(tick)

    def apply(self, tick: Tick) -> None:
        """A published tick, here or at the leader: the stream, the candles, the ticker."""
        self.hub.publish(tick)
        self.candles.add(tick.symbol, tick.time, tick.mid, tick.volume)
        self.rolling.update(self.candles.current[(tick.symbol, "1m")])
        if tick.provider == "scripted":
            self.scripted.add(tick.symbol)  # a follower that takes over keeps the pin

    def continue_from_latest(self) -> None:
        """On taking over ingestion: the simulation continues from the last published prices."""
        if self.sim is None:
            return
        for sym, tick in self.hub.latest.items():
            if sym in self.sim.symbols:
                self.sim.rebase(sym, tick.mid)

    def set_price(self, symbol: str, bid: Decimal, ask: Decimal) -> Tick:
        """The scripted source: pins the symbol to this price until the next call."""
        inst = self.instruments[symbol]
        tick = Tick(
            symbol,
            round_to_tick(bid, inst.tick_size),
            round_to_tick(ask, inst.tick_size),
            datetime.now(UTC),
            "scripted",
        )
        self.scripted.add(symbol)
        if self.sim is not None:
            self.sim.rebase(symbol, tick.mid)
        self.publish(tick)
        return tick

    def seed_last_prices(self, last_close: dict[str, Decimal], now: datetime) -> None:
        """Every instrument has a last price from start-up on, even while its market is
        closed (the last candle's close, else the catalogue's reference price), so a quote
        request on a closed market says MARKET_CLOSED rather than "no quote"."""
        for sym, inst in self.instruments.items():
            if sym in self.hub.latest:
                continue
            mid = last_close.get(sym, inst.start_price)
            half = inst.tick_size * inst.spread_ticks / 2
            bid = max(round_to_tick(mid - half, inst.tick_size), inst.tick_size)
            self.hub.latest[sym] = Tick(
                sym, bid, max(round_to_tick(mid + half, inst.tick_size), bid + inst.tick_size), now, "last"
            )

    async def scripted_heartbeat(self, every: float) -> None:
        """A scripted price stays the quote until set again: re-publish it with a fresh time,
        as a real feed keeps quoting an unchanged book."""
        while True:
            await asyncio.sleep(every)
            now = datetime.now(UTC)
            for sym in list(self.scripted):
                last = self.hub.latest.get(sym)
                if last is not None:
                    self.publish(Tick(sym, last.bid, last.ask, now, "scripted"))

    # --- running providers -------------------------------------------------------------------

    async def run_provider(self, provider: Provider) -> None:
        """Keep a provider running; an unexpected crash counts as a failure and restarts it."""
        while True:
            try:
                await provider.run(self.on_tick)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                provider.breaker.record_failure(f"{type(exc).__name__}: {exc}")
                log.error("provider crashed", provider=provider.name, exc_info=exc)
                await asyncio.sleep(1.0)

    def provider_healthy(self, provider: Provider, now: datetime) -> bool:
        healthy = (
            provider.breaker.state == "closed"
            and provider.last_tick_at is not None
            and (now - provider.last_tick_at <= self.stale_after)
        )
        PROVIDER_UP.labels(provider.name).set(1 if healthy else 0)
        return healthy
