"""The outbox read four ways: a challenge's events for its owner's browser (SSE), the same as
a paged list, its equity curve, and every event for internal consumers (risk) — one reader
per process feeds every live stream (services/common/fanout.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from google.api import httpbody_pb2
from sqlalchemy.ext.asyncio import AsyncEngine
from tradesense.challenges.v1 import challenges_pb2 as pb

from services.challenges import store
from services.challenges.domain.session import Spec
from services.challenges.wire import event_pb
from services.common import sse
from services.common.db import driver
from services.common.fanout import Fanout

EVENTS_AFTER = (
    "SELECT sequence, challenge_id, user_id, type, payload::text AS payload, occurred_at "
    "FROM events WHERE sequence > $1 "
)
# A challenge in one of these can still change; past them its stream ends.
OPEN = ("PENDING", "ACTIVE", "PAUSED")
# The equity curve's intervals, and the most points one answer holds.
INTERVALS = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "15m": timedelta(minutes=15),
             "1h": timedelta(hours=1), "1d": timedelta(days=1)}  # fmt: skip
MAX_POINTS = 2000
# The last equity in each interval: fills carry the exact equity after them, the throttled
# equity updates the floating equity in between.
_CURVE = (
    "SELECT date_bin($2::interval, occurred_at, TIMESTAMPTZ '2000-01-01') AS t, "
    "(array_agg(payload->>'equity' ORDER BY sequence DESC))[1] AS equity FROM events "
    "WHERE challenge_id = $1 AND type IN ('equity_updated', 'trade_executed') "
    "AND occurred_at >= $3 AND occurred_at < $4 GROUP BY 1 ORDER BY 1 LIMIT $5"
)


class EventStreams:
    def __init__(
        self,
        db: AsyncEngine,
        new_events: Callable[[], asyncio.Event],
        specs: Callable[[], Mapping[str, Spec]] = dict,
    ) -> None:
        self.db = db
        self.specs = specs  # the market's instrument specs as they are now
        self.fanout: Fanout[int] = Fanout(
            self.events_after, self._last_event, lambda r: int(r["sequence"]), lambda r: r["challenge_id"], new_events
        )

    async def events_after(
        self, after: int, limit: int, challenge_id: uuid.UUID | None, types: list[str] | None = None
    ) -> list[Any]:
        # Every event the service streams passes here (risk follows them all): the driver's own
        # connection and the payload as text, the cheapest read of the outbox.
        async with driver(self.db) as conn:
            if challenge_id is None:
                return list(await conn.fetch(EVENTS_AFTER + "ORDER BY sequence LIMIT $2", after, limit))
            return list(
                await conn.fetch(
                    EVENTS_AFTER + "AND challenge_id = $3 AND (cardinality($4::text[]) = 0 OR type = ANY($4::text[])) "
                    "ORDER BY sequence LIMIT $2",
                    after,
                    limit,
                    challenge_id,
                    types or [],
                )
            )

    async def equity_curve(
        self, challenge_id: uuid.UUID, interval: timedelta, start: datetime, end: datetime
    ) -> list[tuple[datetime, str]]:
        async with driver(self.db) as conn:
            rows = await conn.fetch(_CURVE, challenge_id, interval, start, end, MAX_POINTS)
        return [(r["t"], r["equity"]) for r in rows if r["equity"]]

    async def _last_event(self) -> int:
        async with self.db.connect() as conn:
            return await store.last_sequence(conn)

    def follow(self, after: int, challenge_id: uuid.UUID | None) -> AsyncIterator[Any]:
        """Replay from the cursor, then follow live, fed by the process's one outbox reader."""
        return self.fanout.follow(after, challenge_id)

    def follow_batches(self, after: int) -> AsyncIterator[list[Any]]:
        """Every event from the cursor on, in runs of what is ready (internal consumers)."""
        return self.fanout.follow_batches(after, None)

    async def _challenge_events(self, challenge_id: uuid.UUID, after: int, status: str) -> AsyncIterator[sse.Event]:
        if status not in OPEN:  # ended: what is left to replay, then the end
            while rows := await self.events_after(after, 500, challenge_id):
                for r in rows:
                    after = r["sequence"]
                    yield sse.Event(r["type"], event_pb(r, self.specs()), r["sequence"])
            yield sse.END
            return
        async for r in self.follow(after, challenge_id):
            e = event_pb(r, self.specs())
            yield sse.Event(r["type"], e, r["sequence"])
            if r["type"] == "status_changed" and pb.ChallengeStatus.Name(e.status_changed.to_status) not in OPEN:
                yield sse.END
                return

    def challenge_sse(
        self, challenge_id: uuid.UUID, after: int, status: str, heartbeat: float = sse.HEARTBEAT
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        """A challenge's events as Server-Sent Events, from after `after`; `status` is the
        challenge's when the stream opens (an ended one replays and ends)."""
        return sse.stream(self._challenge_events(challenge_id, after, status), heartbeat)
