"""What challenges knows of the market: instruments (once) and a live quote cache.

The cache follows market's price stream under the service's own identity, so an
order fills against a fresh streamed quote without a network hop. When the cached
quote is too old (or missing) the order path asks market's GetQuote, which also says
whether the market is open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import grpc
import structlog
from tradesense.market.v1 import market_pb2, market_pb2_grpc

from services.challenges.domain.session import Quote, Spec
from services.common.clients import ServiceIdentity

log = structlog.get_logger("prices")


@dataclass(frozen=True)
class CachedQuote(Quote):
    market_open: bool

    def age(self, now: datetime) -> float:
        return (now - self.time).total_seconds()


def quote_from(p: market_pb2.Price) -> CachedQuote:
    return CachedQuote(Decimal(p.bid), Decimal(p.ask), p.time.ToDatetime(UTC), p.market_open)


class MarketView:
    def __init__(self, channel: grpc.aio.Channel, identity: ServiceIdentity) -> None:
        self.stub = market_pb2_grpc.MarketServiceStub(channel)
        self.identity = identity
        self.specs: dict[str, Spec] = {}
        self.quotes: dict[str, CachedQuote] = {}
        self.listeners: list[Callable[[str, CachedQuote], None]] = []
        self.connected = asyncio.Event()

    async def load_instruments(self) -> None:
        token = ""
        specs = {}
        while True:
            r = await self.stub.ListSymbols(market_pb2.ListSymbolsRequest(page_size=500, page_token=token), timeout=5)
            for i in r.instruments:
                specs[i.symbol] = Spec(
                    i.symbol,
                    Decimal(i.contract_size),
                    i.quote_currency,
                    Decimal(i.min_quantity),
                    Decimal(i.max_quantity),
                    Decimal(i.quantity_step),
                    Decimal(i.tick_size) if i.tick_size else None,
                )
            token = r.next_page_token
            if not token:
                break
        self.specs = specs

    async def follow(self) -> None:
        """Follow every price, reconnecting with back-off; never returns."""
        delay = 0.2
        while True:
            try:
                if not self.specs:
                    await self.load_instruments()
                call = self.stub.StreamPrices(market_pb2.StreamPricesRequest(), metadata=await self.identity.metadata())
                async for p in call:
                    self.connected.set()
                    delay = 0.2
                    q = quote_from(p)
                    self.quotes[p.symbol] = q
                    for listener in self.listeners:
                        listener(p.symbol, q)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("price stream lost", error=str(exc)[:200])
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def fresh_quote(self, symbol: str, max_age: float, force: bool = False) -> CachedQuote:
        """A quote no older than `max_age` seconds, from the cache or from market.

        Raises LookupError(reason) with STALE_QUOTE / MARKET_CLOSED / NO_QUOTE.
        """
        now = datetime.now(UTC)
        q = self.quotes.get(symbol)
        if force or q is None or q.age(now) > max_age:
            try:
                r = await self.stub.GetQuote(
                    market_pb2.GetQuoteRequest(symbol=symbol), metadata=await self.identity.metadata(), timeout=2
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise LookupError("NO_QUOTE") from None
                raise
            q = CachedQuote(Decimal(r.price.bid), Decimal(r.price.ask), r.price.time.ToDatetime(UTC), r.market_open)
            self.quotes[symbol] = q
        if not q.market_open:
            raise LookupError("MARKET_CLOSED")
        if q.age(now) > max_age:
            raise LookupError("STALE_QUOTE")
        return q
