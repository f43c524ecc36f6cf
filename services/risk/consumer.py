"""Consumer of the challenges event feed, split across risk's replicas by leased partitions.

Each replica leases a share of the 16 partitions of the challenge ids (services/common/
partition_leases.py) and follows only their events (`WatchEventBatches(partitions=…)`: a run of
events per message), from the oldest of their cursors. Events are applied in runs
(applying.py): whatever has arrived within `linger` (50 ms) of the first, up to `batch`, in
one transaction together with each partition's cursor, locked first; an event at or below its
partition's cursor is skipped, so after a crash, a restart or a partition changing hands
nothing is applied twice and nothing skipped (fills are keyed by the event's sequence, alerts
by their dedup key, and a cursor only moves forward).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import structlog
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine
from tradesense.challenges.v1 import challenges_pb2, challenges_pb2_grpc

from services.common.clients import ServiceIdentity
from services.common.db import driver
from services.common.partition_leases import PARTITIONS, Leases, partition_of
from services.risk import applying
from services.risk.domain import alerts as alert_rules

log = structlog.get_logger("consumer")

CONSUMER = "challenges-events"
APPLIED = Counter("risk_events_applied_total", "Challenge events applied.", ("type",))
LAG = Gauge("risk_consumer_last_sequence", "Last challenges event sequence applied.")
ALERTS = Counter("risk_alerts_total", "Alerts raised.", ("kind",))
OWNED = Gauge("risk_partitions_owned", "Event-feed partitions this replica consumes.")
BATCH = Histogram(
    "risk_consumer_batch_events", "Events applied in one transaction.", buckets=(1, 2, 5, 10, 25, 50, 100, 200)
)


def cursor_name(partition: int) -> str:
    return f"{CONSUMER}:{partition}"


class Consumer:
    def __init__(
        self,
        db: AsyncEngine,
        channel: grpc.aio.Channel,
        identity: ServiceIdentity,
        leases: Leases | None = None,
        batch: int = 200,
        linger: float = 0.05,
    ) -> None:
        self.linger = linger
        self.db = db
        self.stub = challenges_pb2_grpc.ChallengesServiceStub(channel)
        self.identity = identity
        self.leases = leases  # None: this replica consumes every partition
        self.batch = batch
        self.new_alerts = asyncio.Event()
        self._moved = asyncio.Event()  # our partitions changed: the stream restarts

    def partitions_changed(self, gained: set[int], lost: set[int]) -> None:
        OWNED.set(len(self._owned()))
        self._moved.set()

    def _owned(self) -> set[int]:
        return set(range(PARTITIONS)) if self.leases is None else set(self.leases.owned)

    def _owns(self, cid: uuid.UUID) -> bool:
        return self.leases is None or self.leases.owns(cid)

    def _handles(self, partition: int) -> bool:
        return self.leases is None or self.leases.handles(partition)

    def _alerted(self, raised: list[alert_rules.Alert]) -> None:
        for a in raised:
            ALERTS.labels(a.kind).inc()
        if raised:
            self.new_alerts.set()
            self.new_alerts = asyncio.Event()

    async def watch_inactivity(self, after: timedelta, every: float = 60.0) -> None:
        """Periodic scan: ACTIVE challenges (of our partitions) whose last event is older than `after`."""
        while True:
            await asyncio.sleep(every)
            try:
                now = datetime.now(UTC)
                raised = []
                async with driver(self.db) as conn:
                    rows = await conn.fetch(
                        "SELECT challenge_id, user_id, last_event_at FROM challenge_state "
                        "WHERE status = 'ACTIVE' AND last_event_at < $1",
                        now - after,
                    )
                    for r in rows:
                        if not self._owns(r["challenge_id"]):
                            continue
                        a = alert_rules.inactivity(str(r["challenge_id"]), r["last_event_at"], now, after)
                        if a is not None and await applying.insert_alert(conn, r["challenge_id"], r["user_id"], a, now):
                            raised.append(a)
                self._alerted(raised)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("inactivity scan failed", error=str(exc)[:200])

    async def cursors(self, conn: asyncpg.Connection, partitions: list[int]) -> dict[int, int]:
        rows = await conn.fetch(
            "SELECT consumer, last_sequence FROM consumer_cursors WHERE consumer = ANY($1::text[])",
            [cursor_name(p) for p in partitions],
        )
        seen = {r["consumer"]: int(r["last_sequence"]) for r in rows}
        return {p: seen.get(cursor_name(p), 0) for p in partitions}

    async def run(self) -> None:
        delay = 0.2
        while True:
            self._moved.clear()
            partitions = sorted(self._owned())
            if not partitions:
                await self._wait_moved(1.0)
                continue
            if not any(self._handles(p) for p in partitions):
                await asyncio.sleep(0.2)  # our leases are not certain this moment: until a renewal
                continue
            try:
                async with driver(self.db) as conn:
                    after = min((await self.cursors(conn, partitions)).values())
                    call = self.stub.WatchEventBatches(
                        challenges_pb2.WatchEventsRequest(after_sequence=after, partitions=partitions),
                        metadata=await self.identity.metadata(),
                    )
                    await self._consume(conn, call)
                    delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event feed interrupted", error=str(exc)[:200])
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _wait_moved(self, within: float) -> None:
        try:
            await asyncio.wait_for(self._moved.wait(), within)
        except TimeoutError:
            pass

    async def _consume(self, conn: asyncpg.Connection, call: grpc.aio.UnaryStreamCall) -> None:
        """Apply the stream in runs until it ends or our partitions change."""
        # Each message is a run of events (WatchEventBatches): a gRPC message's fixed cost on
        # both ends is paid once per run, not once per event.
        queue: asyncio.Queue[list[challenges_pb2.OutboxEvent] | None] = asyncio.Queue(8)

        async def read() -> None:
            try:
                async for message in call:
                    await queue.put(list(message.events))
            finally:
                await queue.put(None)

        reader = asyncio.create_task(read())
        moved = asyncio.create_task(self._moved.wait())
        try:
            while not self._moved.is_set():  # set: restart from the cursors (asked by apply too)
                got = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({got, moved}, return_when=asyncio.FIRST_COMPLETED)
                if got not in done:
                    got.cancel()
                    return  # partitions changed: restart from their cursors
                first = got.result()
                if first is None:
                    reader.result()  # the stream's error, if it ended with one
                    return
                events = first
                # A busy feed: wait a moment for the rest of a run, so the fixed cost of a
                # transaction is shared by many events (an idle feed's event waits at most `linger`).
                deadline = asyncio.get_running_loop().time() + self.linger
                while len(events) < self.batch:
                    if queue.empty():
                        left = deadline - asyncio.get_running_loop().time()
                        if left <= 0:
                            break
                        try:
                            nxt = await asyncio.wait_for(queue.get(), left)
                        except TimeoutError:
                            break
                    else:
                        nxt = queue.get_nowait()
                    if nxt is None:
                        queue.put_nowait(None)
                        break
                    events.extend(nxt)
                for i in range(0, len(events), self.batch):  # a message may hold more than a run
                    if self._moved.is_set():
                        break  # a partition left as it was: later events must not move its cursor past it
                    await self.apply(conn, events[i : i + self.batch])
        finally:
            call.cancel()
            moved.cancel()
            reader.cancel()
            await asyncio.gather(reader, moved, return_exceptions=True)

    async def apply(self, conn: asyncpg.Connection, events: list[challenges_pb2.OutboxEvent]) -> None:
        """One run of events, with the cursors of their partitions, in one transaction."""
        by_partition: dict[int, list[challenges_pb2.OutboxEvent]] = {}
        for e in events:
            by_partition.setdefault(partition_of(uuid.UUID(e.challenge_id)), []).append(e)
        # A partition we may not handle this moment (a lease renewal late, the liveness lock
        # lost) is left as it is, cursor included, and the stream restarts from the cursors
        # once we may again: its events are applied then, or by the replica that takes it.
        parts = sorted(p for p in by_partition if self._handles(p))
        if len(parts) < len(by_partition):
            self._moved.set()
        if not parts:
            return
        async with conn.transaction():
            locked = await conn.fetch(
                "SELECT consumer, last_sequence FROM consumer_cursors WHERE consumer = ANY($1::text[]) "
                "ORDER BY consumer FOR UPDATE",
                [cursor_name(p) for p in parts],
            )
            cursor = {r["consumer"]: int(r["last_sequence"]) for r in locked}
            fresh = [e for p in parts for e in by_partition[p] if e.sequence > cursor.get(cursor_name(p), 0)]
            fresh.sort(key=lambda e: e.sequence)
            if fresh:
                ids = sorted({uuid.UUID(e.challenge_id) for e in fresh})
                batch = applying.Batch(await applying.load(conn, ids))
                for e in fresh:
                    batch.apply(e)
                raised = await applying.write(conn, batch)
            else:
                raised = []
            moved = {p: max(e.sequence for e in by_partition[p]) for p in parts}
            moved = {p: seq for p, seq in moved.items() if seq > cursor.get(cursor_name(p), 0)}
            if moved:
                await conn.execute(
                    "INSERT INTO consumer_cursors (consumer, last_sequence, updated_at) "
                    "SELECT c, s, now() FROM unnest($1::text[], $2::bigint[]) AS v(c, s) "
                    "ON CONFLICT (consumer) DO UPDATE SET last_sequence = GREATEST(consumer_cursors.last_sequence, "
                    "EXCLUDED.last_sequence), updated_at = now()",
                    [cursor_name(p) for p in moved],
                    list(moved.values()),
                )
        self._alerted(raised)
        BATCH.observe(len(fresh))
        for e in fresh:
            APPLIED.labels(e.type).inc()
        LAG.set(max(e.sequence for e in events))
