"""Wiring for the market-data service."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import grpc
import structlog
from pydantic import SecretStr
from sqlalchemy import text
from tradesense.market.v1 import market_pb2, market_pb2_grpc

from services.common.clients import channel
from services.common.config import ServiceSettings
from services.common.db import create_engine
from services.common.leader import Leader
from services.common.remote_auth import remote_auth
from services.common.server import Runtime, ServiceSpec, Wiring
from services.market import store
from services.market.bus import TickBus
from services.market.domain import history
from services.market.domain.calendars import CachedStatus
from services.market.domain.candles import Candle
from services.market.domain.instruments import CATALOGUE
from services.market.feed import PriceRouter
from services.market.hub import PriceHub
from services.market.ingestion import Ingestion
from services.market.providers.base import Provider
from services.market.providers.live import LiveExchangeProvider
from services.market.providers.replay import ReplayProvider
from services.market.providers.simulated import SimulatedProvider
from services.market.recording import Recorder
from services.market.servicer import MarketServicer

HERE = Path(__file__).resolve().parent
log = structlog.get_logger("market")


class MarketSettings(ServiceSettings):
    market_seed: int = 42
    market_tick_interval: float = 0.5
    # The replay of the shipped real files (EURUSD hourly, GOOG daily, BTCUSD monthly): off by
    # default — the calibrated model is the default feed everywhere no live one is reachable.
    market_replay: bool = False
    # Wall seconds per replayed bar. 0: the bar's own length (an hourly bar an hour, real time);
    # anything else accelerates time (demos, tests) and `make run` says so in its banner.
    market_replay_seconds_per_bar: float = 0.0
    # The calibrated model for every instrument; off only to see a feed stall for real (tests).
    market_simulated: bool = True
    # A live exchange (Binance-style REST) for BTCUSD/ETHUSD; empty = off, no network needed.
    market_live_url: str = ""
    market_live_interval: float = 1.0
    market_stale_after_seconds: float = 5.0
    # The admin-only SetPrice source for tests and demos; keep off in production.
    market_scripted_prices: bool = False
    # Calendars (comma-separated, e.g. "GLOBEX") open at every hour; honoured only with
    # scripted prices, for tests that must not depend on the wall clock. Never in production.
    market_always_open: str = ""
    market_flush_interval: float = 1.0
    # The bus between market replicas (NATS). Empty: this replica is alone and always leads.
    # `tls://` with NATS_TLS_CA_FILE in Kubernetes; the user and password from the Secret.
    nats_url: str = ""
    nats_user: str = "market"
    nats_password: SecretStr = SecretStr("")
    nats_tls_ca_file: str = ""
    # The ingestion leader's lease: a dead leader is replaced within about this long.
    market_leader_ttl_seconds: float = 3.0
    # Days of recorded ticks kept (whole days are dropped past it).
    market_record_days: int = 7
    # Recorded-session exports at once in this process (and one per user).
    market_exports_max: int = 4


async def flush_forever(
    runtime: Runtime,
    router: PriceRouter,
    replay: ReplayProvider | None,
    ingestion: Ingestion,
    recorder: Recorder,
    every: float,
) -> None:
    while True:
        await asyncio.sleep(every)
        if not ingestion.leading:
            router.candles.drain()  # the leader writes them; this replica keeps only the open ones
            continue
        try:
            await flush(runtime, router, replay)
        except Exception as exc:
            log.warning("candle flush failed", error=str(exc))
        try:
            await recorder.flush()
        except Exception as exc:
            log.warning("recording failed", error=str(exc)[:200])


async def flush(runtime: Runtime, router: PriceRouter, replay: ReplayProvider | None) -> None:
    rows = router.candles.drain()
    try:
        async with runtime.engine.begin() as conn:
            await store.upsert_candles(conn, rows)
            if replay is not None:
                await store.save_state(conn, "replay", replay.state(), datetime.now(UTC))
    except Exception:
        router.candles.rewrite(rows)  # put them back so nothing is lost
        raise


async def backfill(
    runtime: Runtime, router: PriceRouter, replay: ReplayProvider | None, seed: int, fresh_replay: bool
) -> int:
    """Give every symbol without candles its past (domain/history.py), before the feed starts."""
    async with runtime.engine.begin() as conn:
        # Replicas starting together on an empty database: one writes the past, the others see it.
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('market-history'))"))
        missing = [s for s in router.instruments if s not in await store.symbols_with_candles(conn)]
        if not missing:
            return 0
        if replay is not None and fresh_replay:
            replay.begin_after(history.MINUTES)
        opens: dict[tuple[str, datetime], bool] = {}  # per calendar, not per symbol

        def is_open(calendar: str, t: datetime) -> bool:
            if (calendar, t) not in opens:
                opens[(calendar, t)] = router.calendars.status(calendar, t).is_open
            return opens[(calendar, t)]

        now, rows = datetime.now(UTC), list[Candle]()
        for sym in missing:
            inst = router.instruments[sym]
            recorded = None
            # A bar a minute: the replay's recent bars are the last day's minutes, as played.
            if replay is not None and sym in replay.cursors and replay.bar_a_minute:
                bars, scale = replay.recorded_past(sym)
                recorded = history.recorded_minutes(inst, bars[-history.MINUTES :], scale, now)
            rows += history.past(inst, now, inst.start_price, seed, partial(is_open, inst.calendar), recorded)
        await store.insert_history(conn, rows)
    log.info("history backfilled", symbols=len(missing), candles=len(rows))
    return len(missing)


async def setup(runtime: Runtime) -> Wiring:
    s: MarketSettings = runtime.settings
    instruments = {i.symbol: i for i in CATALOGUE}
    async with runtime.engine.begin() as conn:
        await store.seed(conn, CATALOGUE)
    # Providers in priority order: live (if configured) → replay of real bars → simulation.
    providers: list[Provider] = []
    if s.market_live_url:
        providers.append(LiveExchangeProvider(s.market_live_url, instruments, interval=s.market_live_interval))
    replay = None
    if s.market_replay:
        replay = ReplayProvider(instruments, s.market_seed, s.market_tick_interval, s.market_replay_seconds_per_bar)
        providers.append(replay)
    sim = None
    if s.market_simulated:
        sim = SimulatedProvider(list(CATALOGUE), s.market_seed, s.market_tick_interval)
        providers.append(sim)

    hub = PriceHub()
    router = PriceRouter(hub, instruments, providers, stale_after=s.market_stale_after_seconds)
    if s.market_scripted_prices and s.market_always_open:
        router.calendars = CachedStatus(frozenset(c.strip() for c in s.market_always_open.split(",") if c.strip()))
    if sim is not None:
        sim.is_open = router.market_open  # a closed market does not move
    async with runtime.engine.connect() as conn:
        replay_state = await store.load_state(conn, "replay") if replay is not None else {}
    if replay is not None:
        replay.restore(replay_state)
    await backfill(runtime, router, replay, s.market_seed, fresh_replay=not replay_state)
    async with runtime.engine.connect() as conn:
        for c in await store.latest_candles(conn):
            router.candles.current[(c.symbol, c.interval)] = c  # resume open candles
        for c in await store.minute_candles_since(conn, datetime.now(UTC) - timedelta(hours=24)):
            router.rolling.update(c)
    router.seed_last_prices(
        {sym: c.close for (sym, interval), c in router.candles.current.items() if interval == "1m"}, datetime.now(UTC)
    )
    bus = None
    if s.nats_url:
        bus = TickBus(
            s.nats_url,
            f"market-{socket.gethostname()}-{os.getpid()}",
            user=s.nats_user,
            password=s.nats_password.get_secret_value(),
            tls_ca_file=s.nats_tls_ca_file,
        )
    recorder = Recorder(runtime.engine, instruments, s.market_record_days)
    ingestion = Ingestion(router, providers, replay, bus, s.market_tick_interval, recorder)
    ingestion.scripted = s.market_scripted_prices
    owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    # The lease on a connection of its own: however busy the pool (exports, charts), renewing
    # it never waits for a connection and leadership does not flap.
    lease_db = create_engine(s, pool_size=1)
    leader = Leader(lease_db, "ingestion", owner, ttl=s.market_leader_ttl_seconds, on_change=ingestion.on_change)
    ingestion.lease_term, ingestion.recheck_term = (lambda: leader.lease_term), leader.recheck
    if bus is None:
        await ingestion.on_change(True, 0)  # alone: no one to elect
    else:
        await bus.connect()
        await bus.follow(ingestion.apply)
        runtime.spawn(bus.pump(), "bus-out")
        await leader.step()  # lead at once when no one else does
        runtime.spawn(leader.run(), "leader")
    runtime.spawn(flush_forever(runtime, router, replay, ingestion, recorder, s.market_flush_interval), "flush")
    runtime.on_stopping.append(hub.close_all)

    async def final_flush() -> None:
        if ingestion.leading:
            await flush(runtime, router, replay)
            await recorder.flush()
        await leader.release()
        await ingestion.on_change(False, leader.term)
        if bus is not None:
            await bus.close()

    runtime.on_shutdown.append(final_flush)
    runtime.on_shutdown.append(lease_db.dispose)
    auth = channel(s.auth_addr)

    async def close() -> None:
        await auth.close()

    runtime.on_shutdown.append(close)
    servicer = MarketServicer(
        runtime.engine,
        hub,
        router,
        instruments,
        scripted=s.market_scripted_prices,
        ingestion=ingestion,
        exports=s.market_exports_max,
        heartbeat=s.sse_heartbeat_seconds,
    )

    def register(server: grpc.aio.Server) -> list[str]:
        market_pb2_grpc.add_MarketServiceServicer_to_server(servicer, server)
        return [market_pb2.DESCRIPTOR.services_by_name["MarketService"].full_name]

    return Wiring(register, [remote_auth(runtime, auth)])


SPEC = ServiceSpec(
    name="market",
    grpc_port=50053,
    metrics_port=9103,
    migrations=HERE / "migrations",
    setup=setup,
    settings_cls=MarketSettings,
)
