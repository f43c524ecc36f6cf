"""Which challenges this replica handles: leased partitions of the challenge ids.

Work that must happen once — challenges' mark-to-market and day rolls, risk's consumption of
the event feed — is split into 16 partitions (`challenge_id.int % 16`). Each replica
heartbeats, renews its leases every second (5 s TTL, in the database's clock), claims expired
ones up to its fair share and releases extras, so shares rebalance as replicas come and go and
a dead replica's share is taken over within a TTL. A replica stops handling a partition a
second before its lease can expire, so two replicas never handle the same challenge at once
(and every write is also guarded by a row lock or a cursor, so a handover is never a double).

A process that dies (kill -9, OOM, a crash) is noticed sooner: each replica holds a session
advisory lock on a connection of its own while it lives and advertises its key in `replicas`;
the operating system closes a dead process's socket, PostgreSQL ends its session and frees the
lock, and the next replica to step finds an advertised key whose lock nobody holds, releases
that replica's leases and claims them — within a step (1 s) rather than the TTL. The TTL still
decides whatever the lock cannot tell: a replica cut off from the database (its session lives
on until PostgreSQL notices) and one that advertises no key. A replica stops handling the
moment its own lock connection closes, and a step that began with the lock held and ended
without it (or with a new one) does not extend its validity, so it never handles what another
may have claimed because its lock was seen free.

The tables, in the service's schema: `replicas (owner, seen_at, liveness_key)` and
`partition_leases (partition, owner, expires_at)` with one row per partition.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import timedelta

import asyncpg
import structlog
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import driver

log = structlog.get_logger("partitions")

PARTITIONS = 16
# The advisory-lock class of replicas' liveness locks (the two-key form: this, the replica's key).
LIVENESS_LOCK = 7245003


def partition_of(cid: uuid.UUID, partitions: int = PARTITIONS) -> int:
    return cid.int % partitions


class Leases:
    def __init__(
        self,
        db: AsyncEngine,
        owner: str,
        ttl: float = 5.0,
        interval: float = 1.0,
        margin: float = 1.0,
        on_change: Callable[[set[int], set[int]], None] | None = None,
        owned_gauge: Gauge | None = None,
    ) -> None:
        self.owned_gauge = owned_gauge
        self.db = db
        self.owner = owner
        self.ttl = ttl
        self.interval = interval
        self.margin = margin
        self.on_change = on_change
        self.owned: set[int] = set()
        self._valid_until = 0.0  # local monotonic time up to which our leases are certainly ours
        self.liveness_key = zlib.crc32(owner.encode()) & 0x7FFFFFFF
        self._locked = False  # our liveness lock is held (see hold_liveness)
        self._lock_generation = 0  # counts acquisitions: a lock lost and taken again within a step shows
        self._lock_taken = asyncio.Event()
        self._holder: asyncio.Task[None] | None = None

    def owns(self, cid: uuid.UUID) -> bool:
        """Whether this replica may handle the challenge now: its partition is ours and the lease
        certainly valid (a renewal late past the margin stops all handling until it succeeds)."""
        return self.handles(partition_of(cid))

    def handles(self, partition: int) -> bool:
        """`owns` for a whole partition."""
        return time.monotonic() < self._valid_until and partition in self.owned

    def holds(self, cid: uuid.UUID) -> bool:
        """Whether the challenge's partition is our share, valid lease or not: what a replica keeps
        indexed (and judges again as soon as the lease is renewed)."""
        return partition_of(cid) in self.owned

    async def step(self) -> None:
        if self._holder is None:  # the first step: take the liveness lock, then advertise it
            await self._start_liveness()
        started = time.monotonic()
        locked, generation = self._locked, self._lock_generation
        ttl = timedelta(seconds=self.ttl)
        async with driver(self.db) as conn:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO replicas (owner, seen_at, liveness_key) VALUES ($1, now(), $2) "
                    "ON CONFLICT (owner) DO UPDATE SET seen_at = now(), liveness_key = EXCLUDED.liveness_key",
                    self.owner,
                    self.liveness_key if locked else None,
                )
                await self._forget_dead(conn)
                live = await conn.fetchval("SELECT count(*) FROM replicas WHERE seen_at > now() - $1::interval", ttl)
                fair = math.ceil(PARTITIONS / max(1, live))
                mine = [
                    r["partition"]
                    for r in await conn.fetch(
                        "UPDATE partition_leases SET expires_at = now() + $2::interval WHERE owner = $1 "
                        "AND expires_at > now() RETURNING partition",
                        self.owner,
                        ttl,
                    )
                ]
                if len(mine) > fair:  # give some back so a new replica gets its share
                    extra = sorted(mine)[fair:]
                    # Stop handling them before the release can commit: once it has, another
                    # replica may claim them at once, and two must never handle one partition.
                    self._stop_handling(set(extra))
                    await conn.execute(
                        "UPDATE partition_leases SET owner = '', expires_at = '-infinity' "
                        "WHERE owner = $1 AND partition = ANY($2::int[])",
                        self.owner,
                        extra,
                    )
                    mine = sorted(mine)[:fair]
                elif len(mine) < fair:
                    claimed = await conn.fetch(
                        "UPDATE partition_leases SET owner = $1, expires_at = now() + $2::interval "
                        "WHERE partition IN (SELECT partition FROM partition_leases WHERE expires_at < now() "
                        "ORDER BY partition LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING partition",
                        self.owner,
                        ttl,
                        fair - len(mine),
                    )
                    mine += [r["partition"] for r in claimed]
                await conn.execute("DELETE FROM replicas WHERE seen_at < now() - interval '1 hour'")
        if not locked or (self._locked and self._lock_generation == generation):
            self._valid_until = started + self.ttl - self.margin
        else:  # the lock was lost meanwhile: another may have seen it free and claimed our share
            self._valid_until = 0.0
        new = set(mine)
        gained, lost = new - self.owned, self.owned - new
        self.owned = new
        if self.owned_gauge is not None:
            self.owned_gauge.set(len(new))
        if (gained or lost) and self.on_change is not None:
            log.info("partitions changed", owned=sorted(new), gained=sorted(gained), lost=sorted(lost))
            self.on_change(gained, lost)

    def _stop_handling(self, partitions: set[int]) -> None:
        if partitions & self.owned:
            self.owned = self.owned - partitions
            if self.owned_gauge is not None:
                self.owned_gauge.set(len(self.owned))
            if self.on_change is not None:
                self.on_change(set(), partitions)

    async def _forget_dead(self, conn: asyncpg.Connection) -> None:
        """Release the leases of replicas that advertise a liveness key whose lock nobody holds
        (their session ended: the process is gone), and forget them, so this step's share and
        claims count without them."""
        dead = await conn.fetch(
            "DELETE FROM replicas r WHERE r.owner <> $1 AND r.liveness_key IS NOT NULL AND NOT EXISTS ("
            " SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND l.classid::text::bigint = $2 AND l.objid::text::bigint = r.liveness_key) RETURNING r.owner",
            self.owner,
            LIVENESS_LOCK,
        )
        if dead:
            owners = [r["owner"] for r in dead]
            log.info("replicas gone", owners=owners)
            await conn.execute(
                "UPDATE partition_leases SET owner = '', expires_at = '-infinity' WHERE owner = ANY($1::text[])", owners
            )

    async def hold_liveness(self) -> None:
        """Hold this replica's liveness lock for as long as the process lives, on a connection
        of its own (taken from the pool for good); stop handling the moment it closes."""
        while True:
            try:
                async with driver(self.db) as conn:
                    await self._hold_on(conn)
                    return  # our key is another session's: the TTL alone speaks for us
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("liveness lock lost", error=str(exc)[:200])
            await asyncio.sleep(self.interval)

    async def _hold_on(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.Event()

        def closed(_: object) -> None:
            lost.set()
            if self._locked:
                self._locked = False
                self._valid_until = 0.0  # others may see it free now: stop handling until a step

        conn.add_termination_listener(closed)
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LIVENESS_LOCK, self.liveness_key):
                log.warning("liveness key held by another session", key=self.liveness_key)
                return
            self._locked, self._lock_generation = True, self._lock_generation + 1
            self._lock_taken.set()
            try:
                await lost.wait()
            finally:
                if not lost.is_set():  # shutting down: the connection goes back to the pool
                    self._locked, self._valid_until = False, 0.0  # free, it may be seen: hands off first
                    await conn.execute("SELECT pg_advisory_unlock($1, $2)", LIVENESS_LOCK, self.liveness_key)
            raise ConnectionError("the liveness lock's connection closed")
        finally:
            conn.remove_termination_listener(closed)

    async def _start_liveness(self) -> None:
        """Start holding the liveness lock, waiting a moment at most for it."""
        self._holder = asyncio.create_task(self.hold_liveness(), name="liveness")
        taken = asyncio.create_task(self._lock_taken.wait())
        await asyncio.wait([self._holder, taken], timeout=self.interval)
        taken.cancel()

    async def stop_liveness(self) -> None:
        """Release the liveness lock, handling nothing more until a step (shutdown)."""
        if self._holder is not None:
            self._holder.cancel()
            await asyncio.gather(self._holder, return_exceptions=True)

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.step()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("lease renewal failed", error=str(exc)[:200])
                await asyncio.sleep(self.interval)
        finally:
            if self._holder is not None:
                self._holder.cancel()

    async def release_all(self) -> None:
        """Graceful shutdown: hand the share over at once instead of after the TTL."""
        self._valid_until = 0.0
        async with driver(self.db) as conn:
            await conn.execute(
                "UPDATE partition_leases SET owner = '', expires_at = '-infinity' WHERE owner = $1", self.owner
            )
            await conn.execute("DELETE FROM replicas WHERE owner = $1", self.owner)
        await self.stop_liveness()
