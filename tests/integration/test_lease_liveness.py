"""A replica whose process dies is replaced at the survivors' next step, not a lease TTL later
(services/common/partition_leases.py): its session's advisory lock is gone with it. The
replicas here are two Leases on their own engines against a real PostgreSQL; a process's
death is its sessions ending (pg_terminate_backend ends them the way a killed client's closed
socket does), with its leases left as they were, unexpired."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.challenges.server import SPEC
from services.common.config import ServiceSettings
from services.common.db import create_engine, driver
from services.common.migrations import migrate
from services.common.partition_leases import LIVENESS_LOCK, PARTITIONS, Leases
from tests.conftest import Database

pytestmark = pytest.mark.integration

TTL = 30.0  # far longer than the test: only the lock can explain a takeover


async def _unexpired(engine: AsyncEngine, owner: str) -> int:
    async with driver(engine) as conn:
        return int(
            await conn.fetchval("SELECT count(*) FROM partition_leases WHERE owner = $1 AND expires_at > now()", owner)
        )


async def _until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not cond():  # noqa: ASYNC110 - the state is another task's, set without an event
            await asyncio.sleep(0.02)


@asynccontextmanager
async def _engines(database: Database, n: int) -> AsyncIterator[list[AsyncEngine]]:
    """`n` engines (a replica's each, and an observer's) on a fresh, migrated challenges schema."""
    settings = ServiceSettings(service_name=SPEC.name, database_url=database.create_database())  # type: ignore[arg-type]
    engines = [create_engine(settings) for _ in range(n)]
    try:
        await migrate(engines[0], SPEC.name, SPEC.migrations)
        yield engines
    finally:
        for e in engines:
            await e.dispose()


async def test_a_dead_replicas_share_is_claimed_at_once_and_a_live_ones_never(database: Database) -> None:
    async with _engines(database, 3) as engines:
        a = Leases(engines[0], "replica-a", ttl=TTL)
        b = Leases(engines[1], "replica-b", ttl=TTL)
        # The first step takes each one's liveness lock; then both registered, the share rebalanced.
        for _ in range(3):
            await a.step()
            await b.step()
        assert (len(a.owned), len(b.owned)) == (PARTITIONS // 2, PARTITIONS // 2)
        assert a._locked and b._locked

        # Both alive: however often b steps, a keeps its share.
        for _ in range(3):
            await b.step()
        assert len(b.owned) == PARTITIONS // 2 and await _unexpired(engines[2], "replica-a") == PARTITIONS // 2

        # A replica advertising no key (one that holds no lock) is judged by its leases' expiry
        # alone: b does not take them either.
        async with driver(engines[2]) as conn:
            await conn.execute("UPDATE replicas SET liveness_key = NULL WHERE owner = 'replica-a'")
        await b.step()
        assert len(b.owned) == PARTITIONS // 2
        await a.step()  # a advertises its key again

        # a's process dies: its session ends (and with it the lock), its leases stay unexpired.
        await _end_session_of(engines[2], a)
        await a.stop_liveness()  # before it could take the lock again: a is gone
        assert await _unexpired(engines[2], "replica-a") == PARTITIONS // 2
        await b.step()
        assert len(b.owned) == PARTITIONS  # at b's next step, 30 s before a's leases would expire
        assert await _unexpired(engines[2], "replica-a") == 0
        await b.stop_liveness()


async def test_a_replica_whose_lock_connection_closes_stops_handling_at_once(database: Database) -> None:
    """Its lock seen free, another may claim its share before its next step: it stops handling
    then, and a step that began with the lock and ended without it gives no validity either."""
    async with _engines(database, 2) as engines:
        a = Leases(engines[0], "replica-a", ttl=TTL)
        await a.step()
        assert a._locked
        some = next(iter(a.owned))
        cid = next(c for c in (uuid.uuid4() for _ in range(1000)) if c.int % PARTITIONS == some)
        assert a.owns(cid)
        await _end_session_of(engines[1], a)
        await _until(lambda: not a.owns(cid))  # the lock's connection closed: no more handling
        await _until(lambda: a._locked)  # taken again on a new connection
        await a.step()
        assert a.owns(cid)
        await a.stop_liveness()


async def _end_session_of(observer: AsyncEngine, replica: Leases) -> None:
    """End the session holding the replica's liveness lock, as a killed process's closed socket
    does, and wait until the replica has heard."""
    async with driver(observer) as conn:
        ended = await conn.fetchval(
            "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l WHERE l.locktype = 'advisory' "
            "AND l.objsubid = 2 AND l.classid::text::bigint = $1 AND l.objid::text::bigint = $2",
            LIVENESS_LOCK,
            replica.liveness_key,
        )
    assert ended == 1
    await _until(lambda: not replica._locked)
