"""Wiring for the market-data service."""

from __future__ import annotations

from pathlib import Path

import grpc

from services.common.auth_interceptor import AuthInterceptor
from services.common.clients import channel, remote_verifier
from services.common.config import ServiceSettings
from services.common.server import Runtime, ServiceSpec, Wiring
from services.market import store
from services.market.domain.instruments import CATALOGUE
from services.market.feed import Feed
from services.market.hub import PriceHub
from services.market.servicer import MarketServicer
from tradesense.market.v1 import market_pb2, market_pb2_grpc

HERE = Path(__file__).resolve().parent


class MarketSettings(ServiceSettings):
    market_seed: int = 42
    market_tick_interval: float = 0.5
    # The admin-only SetPrice source for tests and demos; keep off in production.
    market_scripted_prices: bool = False


async def setup(runtime: Runtime) -> Wiring:
    s: MarketSettings = runtime.settings
    async with runtime.engine.begin() as conn:
        await store.seed(conn, CATALOGUE)
    hub = PriceHub()
    feed = Feed(hub, list(CATALOGUE), seed=s.market_seed, interval=s.market_tick_interval)
    runtime.spawn(feed.run(), "feed")
    auth = channel(s.auth_addr)

    async def close() -> None:
        await auth.close()

    runtime.on_shutdown.append(close)
    servicer = MarketServicer(
        runtime.engine, hub, feed, {i.symbol: i for i in CATALOGUE}, scripted=s.market_scripted_prices
    )

    def register(server: grpc.aio.Server) -> list[str]:
        market_pb2_grpc.add_MarketServiceServicer_to_server(servicer, server)
        return [market_pb2.DESCRIPTOR.services_by_name["MarketService"].full_name]

    return Wiring(register, [AuthInterceptor(remote_verifier(s, auth))])


SPEC = ServiceSpec(
    name="market",
    grpc_port=50053,
    metrics_port=9103,
    migrations=HERE / "migrations",
    setup=setup,
    settings_cls=MarketSettings,
)
