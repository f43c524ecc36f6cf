"""One leader among a service's replicas, by a lease row in its own PostgreSQL schema.

A replica leads while its lease is unexpired by the database's clock; it renews every
`interval` and counts itself leader only until `ttl - margin` after its last successful renewal
(local monotonic time), so a replica that cannot reach the database stops leading before
another can take over. Each new holder gets a higher `term`, a fencing token its followers use
to ignore a deposed leader that is still talking: `lease_term` is the current holder's term as
the database last said (read by followers at every step, and on demand), never a number a
message claims. The table:

    CREATE TABLE leader_leases (name text PRIMARY KEY, owner text NOT NULL,
                                term bigint NOT NULL, expires_at timestamptz NOT NULL)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import driver

log = structlog.get_logger("leader")

# Take the lease when it is free or expired, renew it when it is ours; a new owner's term is
# one higher. RETURNING gives a row only when we hold it afterwards.
_CLAIM = """
INSERT INTO leader_leases AS l (name, owner, term, expires_at) VALUES ($1, $2, 1, now() + $3::interval)
ON CONFLICT (name) DO UPDATE
   SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
       term = CASE WHEN l.owner = EXCLUDED.owner THEN l.term ELSE l.term + 1 END
 WHERE l.owner = EXCLUDED.owner OR l.expires_at < now()
RETURNING term
"""


_HELD = "SELECT term FROM leader_leases WHERE name = $1 AND expires_at > now()"


class Leader:
    def __init__(
        self,
        db: AsyncEngine,
        name: str,
        owner: str,
        ttl: float = 3.0,
        interval: float = 1.0,
        margin: float = 1.0,
        on_change: Callable[[bool, int], Awaitable[None]] | None = None,
    ) -> None:
        self.db, self.name, self.owner = db, name, owner
        self.ttl, self.interval, self.margin = ttl, interval, margin
        self.on_change = on_change
        self.term = 0
        self.lease_term = 0  # the unexpired lease's term, whoever holds it (0: none)
        self._leading = False
        self._valid_until = 0.0
        self._reading: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        return self._leading and time.monotonic() < self._valid_until

    async def step(self) -> None:
        started = time.monotonic()
        try:
            async with driver(self.db) as conn:
                term = await conn.fetchval(_CLAIM, self.name, self.owner, timedelta(seconds=self.ttl))
                self.lease_term = int(term) if term is not None else await self._held_term(conn)
        except Exception as exc:
            log.warning("lease renewal failed", lease=self.name, error=str(exc)[:200])
            term = None if time.monotonic() >= self._valid_until else self.term
        else:
            if term is not None:
                self._valid_until = started + self.ttl - self.margin
        await self._become(term is not None, int(term or self.term))

    async def _become(self, leading: bool, term: int) -> None:
        if leading == self._leading and term == self.term:
            return
        self._leading, self.term = leading, term
        log.info("leadership changed", lease=self.name, leading=leading, term=term)
        if self.on_change is not None:
            await self.on_change(leading, term)

    async def _held_term(self, conn: asyncpg.Connection) -> int:
        return int(await conn.fetchval(_HELD, self.name) or 0)

    def recheck(self) -> None:
        """Read the lease's term again soon (a message named a newer one): one read at a time."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_term())

    async def _read_term(self) -> None:
        try:
            async with driver(self.db) as conn:
                self.lease_term = await self._held_term(conn)
        except Exception as exc:
            log.warning("lease read failed", lease=self.name, error=str(exc)[:200])
        await asyncio.sleep(0.2)  # at most five reads a second, whatever the bus says

    async def run(self) -> None:
        while True:
            await self.step()
            # A leader that lost the database stops leading when its lease may have passed on.
            await asyncio.sleep(self.interval)

    async def release(self) -> None:
        """Graceful shutdown: hand over at once instead of after the TTL."""
        was = self._leading
        self._valid_until = 0.0
        if was:
            await self._become(False, self.term)
            async with driver(self.db) as conn:
                await conn.execute(
                    "UPDATE leader_leases SET expires_at = '-infinity' WHERE name = $1 AND owner = $2",
                    self.name,
                    self.owner,
                )
