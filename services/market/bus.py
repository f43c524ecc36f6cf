"""The tick stream between market replicas, over NATS.

The ingestion leader publishes every tick it publishes locally, in order, on one subject; the
other replicas apply them to their own hub and candles, so every replica serves one price
sequence. A message carries the leader's term (the lease's fencing token: a deposed leader
still talking is ignored) and a sequence number within it, and for a replayed tick the replay
cursor after it, so a follower that takes over continues the replay exactly where it stopped.
Control requests (an admin's scripted price) go to the leader on a request subject. Only the
`market` user may publish either (bus_permissions.py); a message still proves nothing by
itself: followers take the fencing term from the database lease, and the leader obeys
MARKET_SCRIPTED_PRICES for a control request as the gRPC SetPrice does.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import nats
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from prometheus_client import Counter, Histogram

from services.market.domain.ticks import Tick

log = structlog.get_logger("bus")

TICKS_SUBJECT = "tradesense.market.ticks"
CONTROL_SUBJECT = "tradesense.market.control"
REQUEST_TIMEOUT = 2.0  # seconds a control request waits for the leader

SENT = Counter("market_bus_ticks_sent_total", "Ticks this replica published to the other replicas.")
RECEIVED = Counter("market_bus_ticks_received_total", "Ticks applied from the ingestion leader.", ("outcome",))
LAG = Histogram(
    "market_bus_lag_seconds",
    "From a tick's time at the leader to its arrival at this replica.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)


@dataclass(frozen=True)
class BusTick:
    tick: Tick
    term: int
    seq: int
    replay: list[Any] | None  # the replay cursor after this tick, for a replayed symbol


def encode(t: BusTick) -> bytes:
    k = t.tick
    return json.dumps(
        [k.symbol, str(k.bid), str(k.ask), k.time.timestamp(), k.provider, str(k.volume), t.term, t.seq, t.replay],
        separators=(",", ":"),
    ).encode()


def decode(raw: bytes) -> BusTick:
    sym, bid, ask, ts, provider, volume, term, seq, replay = json.loads(raw)
    tick = Tick(sym, Decimal(bid), Decimal(ask), datetime.fromtimestamp(ts, UTC), provider, Decimal(volume))
    return BusTick(tick, int(term), int(seq), replay)


class TickBus:
    def __init__(self, url: str, name: str, user: str = "", password: str = "", tls_ca_file: str = "") -> None:
        self.url, self.name = url, name
        self._user, self._password, self._tls_ca_file = user, password, tls_ca_file
        self.nc: Client | None = None
        self._out: deque[bytes] = deque()
        self._control: Subscription | None = None
        self._wake = asyncio.Event()

    async def connect(self) -> None:
        tls = ssl.create_default_context(cafile=self._tls_ca_file) if self._tls_ca_file else None
        self.nc = await nats.connect(
            self.url,
            name=self.name,
            user=self._user or None,
            password=self._password or None,
            tls=tls,
            max_reconnect_attempts=-1,  # a bus restart is waited out, never fatal
            reconnect_time_wait=0.5,
            connect_timeout=2,
            no_echo=True,  # the leader does not hear its own ticks back
        )

    def send(self, t: BusTick) -> None:
        """Queue a tick for the other replicas (never awaits: called from the tick path)."""
        self._out.append(encode(t))
        self._wake.set()

    async def pump(self) -> None:
        """Publish queued ticks in order."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            assert self.nc is not None
            while self._out:
                await self.nc.publish(TICKS_SUBJECT, self._out.popleft())
                SENT.inc()

    async def follow(self, apply: Callable[[BusTick], None]) -> None:
        assert self.nc is not None

        async def on_msg(msg: Msg) -> None:
            try:
                t = decode(msg.data)
            except (ValueError, TypeError) as exc:
                RECEIVED.labels("malformed").inc()
                log.warning("malformed tick on the bus", error=str(exc)[:100])
                return
            LAG.observe(max((datetime.now(UTC) - t.tick.time).total_seconds(), 0.0))
            apply(t)

        await self.nc.subscribe(TICKS_SUBJECT, cb=on_msg)

    async def serve_control(self, handle: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> None:
        """Answer control requests (only the leader subscribes)."""
        assert self.nc is not None

        async def on_request(msg: Msg) -> None:
            try:
                answer = await handle(json.loads(msg.data))
            except Exception as exc:
                answer = {"error": type(exc).__name__, "message": str(exc)[:200]}
            await msg.respond(json.dumps(answer).encode())

        self._control = await self.nc.subscribe(CONTROL_SUBJECT, cb=on_request)

    async def stop_control(self) -> None:
        if self._control is not None:
            await self._control.unsubscribe()
            self._control = None

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.nc is not None
        msg = await self.nc.request(CONTROL_SUBJECT, json.dumps(body).encode(), timeout=REQUEST_TIMEOUT)
        answer: dict[str, Any] = json.loads(msg.data)
        return answer

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.drain()
            self.nc = None
