"""One reader of a table per process, fanned out to every open stream that follows it.

Each stream used to poll its table itself (challenges' events every 0.5 s and at every local
commit, risk's alerts every second), so the database's load grew with the number of open
browsers: 150 streams of one trader took it from 12 to 313 transactions a second. Now a
stream reads the table only to replay what came before it joined; after that it is fed by
the fan-out, whose one query per wake-up serves every stream of the process. A stream that
falls too far behind (a full queue) is dropped and catches up from the table again, so a
slow reader costs only itself.

Rows are ordered by a position (an outbox sequence; an alert's (time, id)) that grows in
commit order; `read(after, limit, scope)` returns rows past a position, oldest first, of one
scope (a challenge, a user) or of all (scope None).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import structlog

log = structlog.get_logger("fanout")

Row = Any  # a table row, read by key


class Comparable(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __le__(self, other: Any, /) -> bool: ...
    def __gt__(self, other: Any, /) -> bool: ...


P = TypeVar("P", bound=Comparable)  # a position, growing in commit order

QUEUE = 2000  # rows a subscriber may have waiting before it is made to catch up alone
PAGE = 500


@dataclass(eq=False)
class Subscriber(Generic[P]):
    scope: Any  # None: every row
    start: P  # the fan-out's position when it joined: rows after it come from the queue
    queue: asyncio.Queue[Row | None] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    overflowed: bool = False


class Fanout(Generic[P]):
    def __init__(
        self,
        read: Callable[[P, int, Any], Awaitable[list[Row]]],
        latest: Callable[[], Awaitable[P]],
        position: Callable[[Row], P],
        scope_of: Callable[[Row], Any],
        wake: Callable[[], asyncio.Event],
        poll: float = 0.5,
    ) -> None:
        self._read = read
        self._latest = latest  # the newest position committed
        self._position = position
        self._scope_of = scope_of
        self._wake = wake  # set when this process commits rows, so its own streams hear at once
        self._poll = poll  # how soon other processes' rows are seen
        self._subs: set[Subscriber[P]] = set()
        self._cursor: P | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def subscribe(self, scope: Any) -> Subscriber[P]:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fanout")
        await self._started.wait()
        assert self._cursor is not None
        sub: Subscriber[P] = Subscriber(scope, self._cursor)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber[P]) -> None:
        self._subs.discard(sub)

    async def _run(self) -> None:
        while True:  # the starting point, once: streams replay anything before it themselves
            try:
                self._cursor = await self._latest()
                break
            except Exception as exc:
                log.warning("fan-out cannot start", error=type(exc).__name__)
                await asyncio.sleep(self._poll)
        self._started.set()
        while True:
            wake = self._wake()
            assert self._cursor is not None
            try:
                rows = await self._read(self._cursor, PAGE, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fan-out read failed", error=type(exc).__name__)
                rows = []
            for r in rows:
                self._cursor = self._position(r)
                self._publish(r)
            if len(rows) < PAGE:
                try:
                    await asyncio.wait_for(wake.wait(), self._poll)
                except TimeoutError:
                    pass

    def _publish(self, row: Row) -> None:
        scope = self._scope_of(row)
        for sub in list(self._subs):
            if sub.scope is not None and scope != sub.scope:
                continue
            try:
                sub.queue.put_nowait(row)
            except asyncio.QueueFull:
                sub.overflowed = True
                self._subs.discard(sub)
                sub.queue.get_nowait()
                sub.queue.put_nowait(None)  # wakes the reader, which sees `overflowed`

    async def follow(self, after: P | None, scope: Any) -> AsyncIterator[Row]:
        """Every row past `after` (None: from now on) of `scope` (None: all), then live
        ones, forever."""
        async with aclosing(self.follow_batches(after, scope)) as runs:  # unsubscribed when we are closed
            async for rows in runs:
                for r in rows:
                    yield r

    async def follow_batches(self, after: P | None, scope: Any, most: int = PAGE) -> AsyncGenerator[list[Row], None]:
        """`follow`'s rows in runs: each list every row ready at that moment, up to `most`
        (a replayed page, or what the fan-out queued meanwhile), so a busy consumer pays a
        message's fixed cost once per run rather than once per row."""
        cursor = after
        while True:
            sub = await self.subscribe(scope)
            try:
                if cursor is None:
                    cursor = sub.start
                while cursor < sub.start:  # what came before the fan-out's rows: from the table
                    page = await self._read(cursor, most, scope)
                    rows = [r for r in page if self._position(r) <= sub.start]
                    if rows:
                        cursor = self._position(rows[-1])
                        yield rows
                    if len(rows) < most:
                        break
                if cursor < sub.start:
                    cursor = sub.start
                while not sub.overflowed:
                    run: list[Row] = []
                    r = await sub.queue.get()
                    while r is not None and not sub.overflowed:
                        if self._position(r) > cursor:
                            cursor = self._position(r)
                            run.append(r)
                        if len(run) >= most or sub.queue.empty():
                            break
                        r = sub.queue.get_nowait()
                    if run:
                        yield run
                    if r is None:
                        break  # behind: replay from the table, then join again
            finally:
                self.unsubscribe(sub)
