"""Who runs the providers: exactly one market replica, the ingestion leader.

The leader (a PostgreSQL lease, services/common/leader.py) runs the providers and the router,
publishes every tick to its own hub and to the bus, and alone writes candles and the replay
position. The other replicas apply the leader's ticks from the bus (bus.py), so every replica
serves the same stream, quotes and candles. When the leader dies another takes over within the
lease's TTL and continues from the last published prices: the simulation is rebased on them,
the replay resumes from the cursor the last replayed tick carried, and the open candles it has
been aggregating from the same ticks are the ones it goes on with (no jump back, no duplicate).
Without a bus (NATS_URL empty) a replica is alone and always leads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import grpc
import nats.errors
import structlog
from prometheus_client import Gauge

from services.common.errors import ServiceError
from services.market.bus import RECEIVED, BusTick, TickBus
from services.market.domain.ticks import Tick
from services.market.feed import PriceRouter
from services.market.providers.base import Provider
from services.market.providers.replay import ReplayProvider
from services.market.recording import Recorder

log = structlog.get_logger("ingestion")

LEADING = Gauge("market_ingest_leader", "1 while this replica runs the providers (the ingestion leader).")


class Ingestion:
    def __init__(
        self,
        router: PriceRouter,
        providers: list[Provider],
        replay: ReplayProvider | None,
        bus: TickBus | None,
        heartbeat_every: float,
        recorder: Recorder | None = None,
    ) -> None:
        self.router, self.providers, self.replay, self.bus = router, providers, replay, bus
        self.recorder = recorder
        self.heartbeat_every = heartbeat_every
        self.leading = False
        self.term = 0
        # The fencing term, from the database lease (Leader.lease_term), never from a message:
        # a forged tick with a huge term must not make this replica ignore the real leader.
        self.lease_term: Callable[[], int] = lambda: self.term
        self.recheck_term: Callable[[], None] = lambda: None
        # Whether an admin's scripted prices are allowed (MARKET_SCRIPTED_PRICES); the bus's
        # control requests obey it like the gRPC SetPrice does.
        self.scripted = False
        self._seq = 0
        self._replay_seen: dict[str, list[Any]] = {}  # per symbol, the cursor after its last tick
        self._tasks: list[asyncio.Task[None]] = []

    # --- leadership -----------------------------------------------------------------------------

    async def on_change(self, leading: bool, term: int) -> None:
        if leading and not self.leading:
            await self._lead(term)
        elif not leading and self.leading:
            await self._follow()

    async def _lead(self, term: int) -> None:
        self.leading, self.term, self._seq = True, term, 0
        LEADING.set(1)
        if self.replay is not None and self._replay_seen:
            self.replay.restore(self._replay_seen)  # exactly where the last leader's replay stopped
        self.router.continue_from_latest()
        self.router.candles.rewrite(self.router.candles.current.values())  # aggregated as a follower
        if self.recorder is not None:
            await self.recorder.begin(term)
        self.router.on_published = self._published
        for p in self.providers:
            self._spawn(self.router.run_provider(p), f"provider-{p.name}")
        self._spawn(self.router.scripted_heartbeat(self.heartbeat_every), "scripted-heartbeat")
        if self.bus is not None:
            await self.bus.serve_control(self._control)
        log.info("leading ingestion", term=term)

    async def _follow(self) -> None:
        self.leading = False
        LEADING.set(0)
        self.router.on_published = None
        if self.recorder is not None:
            self.recorder.end()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.bus is not None:
            await self.bus.stop_control()
        log.info("following the ingestion leader")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    # --- the stream between replicas ------------------------------------------------------------

    def _published(self, tick: Tick) -> None:
        if self.recorder is not None:
            self.recorder.record(tick)
        if self.bus is not None:
            self._send(tick)

    def _send(self, tick: Tick) -> None:
        assert self.bus is not None
        self._seq += 1
        replay = None
        if tick.provider == "replay" and self.replay is not None and tick.symbol in self.replay.cursors:
            replay = self.replay.cursor_state(tick.symbol)
        self.bus.send(BusTick(tick, self.term, self._seq, replay))

    def apply(self, t: BusTick) -> None:
        """A tick from the leader (every replica hears them; the leader ignores its own)."""
        current = self.lease_term()
        if self.leading or t.term != current:
            if t.term > current:
                self.recheck_term()  # a takeover this replica has not read yet, or a forgery
            RECEIVED.labels("ignored").inc()
            return
        if t.replay is not None:
            self._replay_seen[t.tick.symbol] = t.replay
        self.router.apply(t.tick)
        RECEIVED.labels("applied").inc()

    # --- control --------------------------------------------------------------------------------

    async def set_price(self, symbol: str, bid: Decimal, ask: Decimal) -> Tick:
        """An admin's scripted price, set by the leader wherever the request arrived."""
        if self.leading or self.bus is None:
            return self.router.set_price(symbol, bid, ask)
        body = {"op": "set_price", "symbol": symbol, "bid": str(bid), "ask": str(ask)}
        answer = await self._ask_leader(body, "set the price")
        return Tick(
            symbol,
            Decimal(answer["bid"]),
            Decimal(answer["ask"]),
            datetime.fromtimestamp(answer["time"], UTC),
            "scripted",
        )

    async def provider_health(self) -> list[dict[str, Any]]:
        """The providers as the leader sees them (a follower runs none: it asks the leader)."""
        if self.leading or self.bus is None:
            return self._local_health()
        answer = await self._ask_leader({"op": "provider_health"}, "report")
        return list(answer["providers"])

    async def _ask_leader(self, body: dict[str, Any], doing: str) -> dict[str, Any]:
        """A control request to the leader, its answer; UNAVAILABLE while there is none."""
        assert self.bus is not None
        try:
            answer = await self.bus.request(body)
        except (TimeoutError, nats.errors.NoRespondersError, nats.errors.TimeoutError) as exc:
            raise ServiceError(
                grpc.StatusCode.UNAVAILABLE, f"no ingestion leader to {doing}; try again", reason="NO_LEADER"
            ) from exc
        if "error" in answer:
            raise RuntimeError(f"the ingestion leader refused: {answer['message']}")
        return answer

    def _local_health(self) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [
            {
                "name": p.name,
                "healthy": self.router.provider_healthy(p, now),
                "circuit_state": p.breaker.state,
                "detail": p.detail(),
                "last_tick_at": p.last_tick_at.timestamp() if p.last_tick_at is not None else None,
            }
            for p in self.router.providers.values()
        ]

    async def _control(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("op") == "provider_health":
            return {"providers": self._local_health()}
        if body.get("op") != "set_price":
            raise ValueError("unknown control request")
        if not self.scripted:
            # Whoever reaches the bus gets no more than the gRPC SetPrice would give them.
            log.warning("scripted price refused on the bus: scripted prices are off")
            raise PermissionError("scripted prices are disabled")
        tick = self.router.set_price(body["symbol"], Decimal(body["bid"]), Decimal(body["ask"]))
        return {"bid": str(tick.bid), "ask": str(tick.ask), "time": tick.time.timestamp()}
