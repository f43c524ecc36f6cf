"""One reader of the outbox per process, fanned out to every open event stream.

Each stream used to poll the events table itself (every 0.5 s, and at every local commit), so
the database's load grew with the number of open browsers: 150 streams of one trader took it
from 12 to 313 transactions a second. Now a stream reads the table only to replay what came
before it joined; after that it is fed from the hub, whose one query per wake-up serves every
stream of the process. A stream that falls too far behind (a full queue) is dropped from the
hub and catches up from the table again, so a slow reader costs only itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger("event_hub")

Row = Any  # an outbox row: sequence, challenge_id, user_id, type, payload, occurred_at
# Rows after a sequence, oldest first, at most `limit`, optionally of one challenge only.
Read = Callable[[int, int, uuid.UUID | None], Awaitable[list[Row]]]

QUEUE = 2000  # rows a subscriber may have waiting before it is made to catch up alone
PAGE = 500


class Overflow(Exception):
    """The subscriber fell behind: replay from its cursor."""


@dataclass(eq=False)
class Subscriber:
    challenge_id: uuid.UUID | None
    start: int  # the hub's cursor when it joined: rows after it come from the queue
    queue: asyncio.Queue[Row | None] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    overflowed: bool = False


class EventHub:
    def __init__(
        self, read: Read, latest: Callable[[], Awaitable[int]], wake: Callable[[], asyncio.Event], poll: float = 0.5
    ) -> None:
        self._read = read
        self._latest = latest  # the newest sequence committed
        self._wake = wake  # the ledger's event, set when this process commits outbox rows
        self._poll = poll
        self._subs: set[Subscriber] = set()
        self._cursor: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def subscribe(self, challenge_id: uuid.UUID | None) -> Subscriber:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-hub")
        await self._started.wait()
        assert self._cursor is not None
        sub = Subscriber(challenge_id, self._cursor)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    async def _run(self) -> None:
        while True:  # the starting point, once: streams replay anything before it themselves
            try:
                self._cursor = await self._latest()
                break
            except Exception as exc:
                log.warning("event hub cannot start", error=type(exc).__name__)
                await asyncio.sleep(self._poll)
        self._started.set()
        while True:
            wake = self._wake()
            try:
                rows = await self._read(self._cursor, PAGE, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event hub read failed", error=type(exc).__name__)
                rows = []
            for r in rows:
                self._cursor = r["sequence"]
                self._publish(r)
            if len(rows) < PAGE:
                try:
                    await asyncio.wait_for(wake.wait(), self._poll)
                except TimeoutError:
                    pass

    def _publish(self, row: Row) -> None:
        for sub in list(self._subs):
            if sub.challenge_id is not None and row["challenge_id"] != sub.challenge_id:
                continue
            try:
                sub.queue.put_nowait(row)
            except asyncio.QueueFull:
                sub.overflowed = True
                self._subs.discard(sub)
                sub.queue.get_nowait()
                sub.queue.put_nowait(None)  # wakes the reader, which sees `overflowed`

    async def follow(self, after: int, challenge_id: uuid.UUID | None) -> AsyncIterator[Row]:
        """Every row after `after` (of one challenge, or all), then live ones, forever."""
        cursor = after
        while True:
            sub = await self.subscribe(challenge_id)
            try:
                while cursor < sub.start:  # what came before the hub's rows: from the table
                    rows = [r for r in await self._read(cursor, PAGE, challenge_id) if r["sequence"] <= sub.start]
                    for r in rows:
                        cursor = r["sequence"]
                        yield r
                    if len(rows) < PAGE:
                        break
                cursor = max(cursor, sub.start)
                while True:
                    r = await sub.queue.get()
                    if r is None or sub.overflowed:
                        break  # behind: replay from the table, then join again
                    if r["sequence"] > cursor:
                        cursor = r["sequence"]
                        yield r
            finally:
                self.unsubscribe(sub)
