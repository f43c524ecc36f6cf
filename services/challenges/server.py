"""Wiring for the challenges service."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import uuid
from pathlib import Path

import grpc
import structlog
from tradesense.challenges.v1 import challenges_pb2, challenges_pb2_grpc
from tradesense.risk.v1 import risk_pb2_grpc

from services.challenges import store
from services.challenges.domain.marking import MarkIndex
from services.challenges.domain.packs import BUILT_IN
from services.challenges.domain.plans import PLANS
from services.challenges.ledger import Ledger
from services.challenges.marker import Marker
from services.challenges.partitions import OWNED, Leases
from services.challenges.prices import MarketView
from services.challenges.servicer import ChallengesServicer
from services.common.clients import ServiceIdentity, channel
from services.common.config import ServiceSettings
from services.common.quotas import RateQuota
from services.common.remote_auth import remote_auth
from services.common.server import Runtime, ServiceSpec, Wiring

HERE = Path(__file__).resolve().parent
log = structlog.get_logger("challenges")


class ChallengesSettings(ServiceSettings):
    # An order fills on a quote at most this old (seconds); older means STALE_QUOTE.
    max_quote_age_seconds: float = 2.0
    # "stream": fill on the streamed quote cache (no network hop per order); "market": ask
    # market's GetQuote for every order (the audit mode: every fill's quote is a traced call).
    quote_source: str = "stream"
    mark_workers: int = 4
    # Order batches in flight at once. One makes orders that arrive while a batch is being
    # written share the next batch (group commit): measured 1.04 orders per batch with 4
    # writers against 3.8 with one, and ~40% more orders/s (bench/RESULTS.md).
    order_writers: int = 1
    # How long a busy order writer waits for more orders before writing the next batch.
    order_linger_ms: float = 2.0
    # Challenges whose last written state this process keeps, so their next order needs no
    # read (the write still checks the version); 0 reads every time.
    session_cache: int = 10_000
    # Challenges a trader may hold unstarted at once (RESOURCE_EXHAUSTED past it).
    max_pending_challenges: int = 10
    # ... and live (ACTIVE or PAUSED) at once: a start past it is refused.
    max_live_challenges: int = 20
    # Per-user quotas of one replica (services/common/quotas.py; 0: none): orders a second
    # with a burst, journal writes a minute.
    orders_per_second: float = 10
    order_burst: int = 50
    journal_writes_per_minute: float = 60
    journal_burst: int = 20


async def bootstrap(market: MarketView, ledger: Ledger, leases: Leases, started: asyncio.Event) -> None:
    """Instruments first (retrying while market starts), then every live challenge."""
    delay = 0.2
    while True:
        try:
            await market.load_instruments()
            break
        except grpc.aio.AioRpcError as exc:
            log.warning("market not reachable yet", code=exc.code().name)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)
    try:
        await asyncio.wait_for(market.connected.wait(), 10)  # current prices before judging
    except TimeoutError:
        pass
    await leases.step()  # our share first, then only its challenges
    share = set(leases.owned)
    started.set()  # partitions gained from now on are taken over from a live replica
    n = await ledger.load_live(share)
    log.info("live challenges loaded", count=n, partitions=sorted(leases.owned))
    settle_heap()


def settle_heap() -> None:
    """The index just loaded lives as long as the process: out of the collector's way.

    A full collection walks every tracked object, and an index of 100,000 challenges is
    millions of them; frozen, later collections skip them (garbage among them is still freed
    by reference counting). Measured: a takeover of 37,000 challenges beside a loaded index of
    75,000 took 5.2 s, 4.3 s with the index frozen (bench.challenges_scale).
    """
    gc.freeze()


async def setup(runtime: Runtime) -> Wiring:
    s: ChallengesSettings = runtime.settings
    async with runtime.engine.begin() as conn:
        await store.seed(conn, BUILT_IN, PLANS)
    auth = channel(s.auth_addr)
    market_ch = channel(s.market_addr)
    risk_ch = channel(s.risk_addr)
    market = MarketView(market_ch, ServiceIdentity(s, auth))
    owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    leases = Leases(runtime.engine, owner, owned_gauge=OWNED)
    ledger = Ledger(
        runtime.engine,
        market,
        MarkIndex(),
        max_quote_age=s.max_quote_age_seconds,
        always_ask_market=s.quote_source == "market",
        owns=leases.owns,
        holds=leases.holds,
        order_writers=s.order_writers,
        order_linger=s.order_linger_ms / 1000,
        session_cache=s.session_cache,
        max_pending=s.max_pending_challenges,
        max_live=s.max_live_challenges,
    )

    # Partitions held at start are loaded by bootstrap (judged exactly: nobody may have judged
    # them for a while); one gained later comes from a replica that judged it until moments
    # ago, and is taken over (Judging.take_over).
    started = asyncio.Event()

    def partitions_changed(gained: set[int], lost: set[int]) -> None:
        ledger.drop_partitions(lost)
        if gained and started.is_set():
            runtime.spawn(take_over(gained), "take-over")

    async def take_over(gained: set[int]) -> None:
        await ledger.take_over(gained)
        settle_heap()

    leases.on_change = partitions_changed
    marker = Marker(ledger, workers=s.mark_workers)
    market.listeners.append(marker.on_tick)
    runtime.spawn(market.follow(), "prices")
    runtime.spawn(bootstrap(market, ledger, leases, started), "bootstrap")
    runtime.spawn(leases.run(), "leases")
    runtime.spawn(ledger.follow_outbox(), "outbox-follower")
    for i, task in enumerate(marker.tasks()):
        runtime.spawn(task, f"marker-{i}")

    async def close() -> None:
        await leases.release_all()
        for ch in (auth, market_ch, risk_ch):
            await ch.close()

    runtime.on_shutdown.append(close)
    servicer = ChallengesServicer(
        runtime.engine,
        ledger,
        risk_pb2_grpc.RiskServiceStub(risk_ch),
        heartbeat=s.sse_heartbeat_seconds,
        order_quota=RateQuota(s.orders_per_second, s.order_burst, "ORDER_RATE_LIMITED", "orders"),
        journal_quota=RateQuota(
            s.journal_writes_per_minute / 60, s.journal_burst, "JOURNAL_RATE_LIMITED", "journal writes"
        ),
    )

    def register(server: grpc.aio.Server) -> list[str]:
        challenges_pb2_grpc.add_ChallengesServiceServicer_to_server(servicer, server)
        return [challenges_pb2.DESCRIPTOR.services_by_name["ChallengesService"].full_name]

    return Wiring(register, [remote_auth(runtime, auth)])


SPEC = ServiceSpec(
    name="challenges",
    grpc_port=50052,
    metrics_port=9102,
    migrations=HERE / "migrations",
    setup=setup,
    settings_cls=ChallengesSettings,
)
