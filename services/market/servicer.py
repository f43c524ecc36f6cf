"""Thin gRPC translation for MarketService."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common import decimals, identity, pagination
from services.common.errors import invalid_argument, not_found, permission_denied
from services.market import store
from services.market.domain.instruments import Instrument
from services.market.domain.ticks import Tick
from services.market.feed import Feed
from services.market.hub import PriceHub
from tradesense.market.v1 import market_pb2, market_pb2_grpc

MAX_SYMBOLS_PER_REQUEST = 100


def _ts(dt: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


def instrument_pb(i: Instrument | RowMapping) -> market_pb2.Instrument:
    g = (lambda k: i[k]) if isinstance(i, RowMapping) else (lambda k: getattr(i, k))  # noqa: E731
    return market_pb2.Instrument(
        symbol=g("symbol"),
        display_name=g("display_name"),
        asset_class=market_pb2.AssetClass.Value(g("asset_class")),
        quote_currency=g("quote_currency"),
        tick_size=decimals.fmt(g("tick_size")),
        contract_size=decimals.fmt(g("contract_size")),
        min_quantity=decimals.fmt(g("min_quantity")),
        max_quantity=decimals.fmt(g("max_quantity")),
        quantity_step=decimals.fmt(g("quantity_step")),
        calendar=g("calendar"),
        exchange=g("exchange"),
    )


def price_pb(t: Tick) -> market_pb2.Price:
    return market_pb2.Price(
        symbol=t.symbol,
        bid=decimals.fmt(t.bid),
        ask=decimals.fmt(t.ask),
        last=decimals.fmt(t.mid),
        time=_ts(t.time),
        provider=t.provider,
    )


def split_symbols(raw: list[str]) -> list[str]:
    """`?symbols=A,B` and `?symbols=A&symbols=B` both work; order kept, duplicates dropped."""
    out: dict[str, None] = {}
    for item in raw:
        for s in item.split(","):
            s = s.strip().upper()
            if s:
                out[s] = None
    if len(out) > MAX_SYMBOLS_PER_REQUEST:
        raise invalid_argument({"symbols": f"at most {MAX_SYMBOLS_PER_REQUEST} symbols per request"})
    return list(out)


class MarketServicer(market_pb2_grpc.MarketServiceServicer):
    def __init__(
        self, engine: AsyncEngine, hub: PriceHub, feed: Feed, instruments: dict[str, Instrument], scripted: bool
    ) -> None:
        self.engine = engine
        self.hub = hub
        self.feed = feed
        self.instruments = instruments
        self.scripted_enabled = scripted

    def _known(self, symbol: str, field: str = "symbol") -> Instrument:
        inst = self.instruments.get(symbol.strip().upper())
        if inst is None:
            if not symbol.strip():
                raise invalid_argument({field: "is required"})
            raise not_found(f"symbol {symbol.strip().upper()[:32]!r}", reason="UNKNOWN_SYMBOL")
        return inst

    async def ListSymbols(self, request: market_pb2.ListSymbolsRequest, context: Any) -> market_pb2.ListSymbolsResponse:
        page = pagination.parse(request.page_size, request.page_token, default=100)
        asset_class = (
            market_pb2.AssetClass.Name(request.asset_class) if request.asset_class else None
        )
        after = str(page.cursor.get("after", "")) if page.cursor else None
        async with self.engine.connect() as conn:
            rows = await store.list_instruments(conn, asset_class=asset_class, after=after, limit=page.size + 1)
        more = len(rows) > page.size
        rows = rows[: page.size]
        return market_pb2.ListSymbolsResponse(
            instruments=[instrument_pb(r) for r in rows],
            next_page_token=pagination.token({"after": rows[-1]["symbol"]}) if more else "",
        )

    async def GetSymbol(self, request: market_pb2.GetSymbolRequest, context: Any) -> market_pb2.SymbolDetail:
        inst = self._known(request.symbol)
        detail = market_pb2.SymbolDetail(instrument=instrument_pb(inst))
        tick = self.hub.latest.get(inst.symbol)
        if tick is not None:
            detail.price.CopyFrom(price_pb(tick))
        return detail

    async def GetPrices(self, request: market_pb2.GetPricesRequest, context: Any) -> market_pb2.GetPricesResponse:
        symbols = split_symbols(list(request.symbols)) or sorted(self.instruments)
        for s in symbols:
            self._known(s, "symbols")
        return market_pb2.GetPricesResponse(
            prices=[price_pb(self.hub.latest[s]) for s in symbols if s in self.hub.latest]
        )

    async def StreamPrices(
        self, request: market_pb2.StreamPricesRequest, context: Any
    ) -> AsyncIterator[market_pb2.Price]:
        symbols = split_symbols(list(request.symbols))
        for s in symbols:
            self._known(s, "symbols")
        sub = self.hub.subscribe(symbols or None)
        try:
            while True:
                for tick in await sub.next_batch():
                    yield price_pb(tick)
        finally:
            # Client gone (cancelled) or server stopping: free the subscription.
            self.hub.unsubscribe(sub)

    async def GetQuote(self, request: market_pb2.GetQuoteRequest, context: Any) -> market_pb2.Quote:
        inst = self._known(request.symbol)
        tick = self.hub.latest.get(inst.symbol)
        if tick is None:
            raise not_found(f"quote for {inst.symbol}", reason="NO_QUOTE")
        age = datetime.now(UTC) - tick.time
        quote = market_pb2.Quote(price=price_pb(tick), market_open=True, instrument=instrument_pb(inst))
        quote.age.FromTimedelta(age)
        return quote

    async def SetPrice(self, request: market_pb2.SetPriceRequest, context: Any) -> market_pb2.Price:
        identity.require_admin()
        if not self.scripted_enabled:
            raise permission_denied("the scripted price source is disabled", reason="SCRIPTED_PRICES_DISABLED")
        inst = self._known(request.symbol)
        bid = decimals.parse(request.bid, "bid", positive=True)
        ask = decimals.parse(request.ask, "ask", positive=True)
        assert bid is not None and ask is not None
        if ask < bid:
            raise invalid_argument({"ask": "must not be below bid"})
        return price_pb(self.feed.set_price(inst.symbol, Decimal(bid), Decimal(ask)))
