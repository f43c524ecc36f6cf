"""Which challenges this replica handles: leased partitions of the challenge ids.

Work that must happen once — challenges' mark-to-market and day rolls, risk's consumption of
the event feed — is split into 16 partitions (`challenge_id.int % 16`). Each replica
heartbeats, renews its leases every second (5 s TTL, in the database's clock), claims expired
ones up to its fair share and releases extras, so shares rebalance as replicas come and go and
a dead replica's share is taken over within a TTL. A replica stops handling a partition a
second before its lease can expire, so two replicas never handle the same challenge at once
(and every write is also guarded by a row lock or a cursor, so a handover is never a double).
The tables, in the service's schema: `replicas (owner, seen_at)` and
`partition_leases (partition, owner, expires_at)` with one row per partition.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import structlog
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import driver

log = structlog.get_logger("partitions")

PARTITIONS = 16


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

    def owns(self, cid: uuid.UUID) -> bool:
        """Whether this replica may handle the challenge now: its partition is ours and the lease
        certainly valid (a renewal late past the margin stops all handling until it succeeds)."""
        return time.monotonic() < self._valid_until and partition_of(cid) in self.owned

    def holds(self, cid: uuid.UUID) -> bool:
        """Whether the challenge's partition is our share, valid lease or not: what a replica keeps
        indexed (and judges again as soon as the lease is renewed)."""
        return partition_of(cid) in self.owned

    async def step(self) -> None:
        started = time.monotonic()
        ttl = timedelta(seconds=self.ttl)
        async with driver(self.db) as conn:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO replicas (owner, seen_at) VALUES ($1, now()) "
                    "ON CONFLICT (owner) DO UPDATE SET seen_at = now()",
                    self.owner,
                )
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
        self._valid_until = started + self.ttl - self.margin
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

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("lease renewal failed", error=str(exc)[:200])
            await asyncio.sleep(self.interval)

    async def release_all(self) -> None:
        """Graceful shutdown: hand the share over at once instead of after the TTL."""
        self._valid_until = 0.0
        async with driver(self.db) as conn:
            await conn.execute(
                "UPDATE partition_leases SET owner = '', expires_at = '-infinity' WHERE owner = $1", self.owner
            )
            await conn.execute("DELETE FROM replicas WHERE owner = $1", self.owner)
