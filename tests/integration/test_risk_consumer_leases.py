"""Risk never moves a partition's cursor past events it did not apply: a partition it may not
handle this moment (a lease renewal late, its liveness lock lost) keeps its cursor, and the
stream restarts from the cursors, so the events are applied once it may again (or by the
replica that takes the partition) — before, the cursor moved on and they were lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from tradesense.challenges.v1 import challenges_pb2

from services.common.config import ServiceSettings
from services.common.db import create_engine, driver
from services.common.migrations import migrate
from services.common.partition_leases import PARTITIONS, partition_of
from services.risk.consumer import Consumer, cursor_name
from services.risk.server import SPEC
from tests.conftest import Database

pytestmark = pytest.mark.integration


class Leases:
    """All partitions ours; `blocked` ones not to be handled this moment."""

    def __init__(self) -> None:
        self.owned = set(range(PARTITIONS))
        self.blocked: set[int] = set()

    def handles(self, partition: int) -> bool:
        return partition not in self.blocked

    def owns(self, cid: uuid.UUID) -> bool:
        return self.handles(partition_of(cid))


def _in_partition(p: int) -> uuid.UUID:
    return next(c for c in (uuid.uuid4() for _ in range(1000)) if partition_of(c) == p)


def _created(seq: int, cid: uuid.UUID) -> challenges_pb2.OutboxEvent:
    at = Timestamp()
    at.FromDatetime(datetime.now(UTC))
    payload = '{"reason": "created", "to": "ACTIVE", "initial_balance": "100000.00", "daily_loss": "5000.00"}'
    return challenges_pb2.OutboxEvent(
        sequence=seq, challenge_id=str(cid), user_id=str(uuid.uuid4()), type="status_changed",
        payload_json=payload, occurred_at=at,
    )  # fmt: skip


async def test_a_partition_not_handled_keeps_its_cursor_and_is_applied_later(database: Database) -> None:
    settings = ServiceSettings(service_name=SPEC.name, database_url=database.create_database())  # type: ignore[arg-type]
    db = create_engine(settings)
    leases = Leases()
    try:
        await migrate(db, SPEC.name, SPEC.migrations)
        async with grpc.aio.insecure_channel("127.0.0.1:9") as channel:  # never called here
            consumer = Consumer(db, channel, identity=None, leases=leases)  # type: ignore[arg-type]
            blocked, handled = _in_partition(3), _in_partition(4)
            events = [_created(1, blocked), _created(2, handled)]
            leases.blocked = {3}

            async def state() -> tuple[dict[str, Any], set[uuid.UUID]]:
                async with driver(db) as conn:
                    cursors = {
                        r["consumer"]: r["last_sequence"] for r in await conn.fetch("SELECT * FROM consumer_cursors")
                    }
                    known = {r["challenge_id"] for r in await conn.fetch("SELECT challenge_id FROM challenge_state")}
                return cursors, known

            async with driver(db) as conn:
                await consumer.apply(conn, events)
            cursors, known = await state()
            assert (cursors[cursor_name(3)], cursors[cursor_name(4)]) == (0, 2) and known == {handled}
            assert consumer._moved.is_set()  # the stream restarts from the cursors

            # Handled again: the replay from the cursors applies partition 3's event, and
            # partition 4's, at its cursor already, is not applied twice.
            leases.blocked = set()
            async with driver(db) as conn:
                await consumer.apply(conn, events)
            cursors, known = await state()
            assert (cursors[cursor_name(3)], cursors[cursor_name(4)]) == (1, 2) and known == {blocked, handled}
    finally:
        await db.dispose()
