"""Group commit for orders: orders of different challenges that arrive together are read in
one statement and written in one (see order_path.OrderPath._run).

Each round trip and each statement has a fixed cost on both sides (the driver's protocol
work, the event loop's wake-ups, PostgreSQL's executor start and commit); under load most
of an order's database work was that fixed part, so sharing it is the cheapest order. A
batch holds at most one order per challenge, and a challenge is in at most one batch at a
time, so a batch never races itself. An idle service sends each order at once (a batch of
one), so batching adds no wait; under load, orders that arrive while a batch is being
written go together in the next one — with one writer, the batch size follows the load.
Busy (the last batch held more than one order), the writer also lingers a moment before
taking the next batch: a write is one round trip, often shorter than the time the service
takes to accept the next orders, and without the pause batches stayed at one or two orders
and paid the per-statement cost each (measured: ~800 orders/s without, ~1,300/s with 2 ms).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Histogram

BATCH_SIZE = Histogram(
    "challenges_order_batch_size",
    "Orders written together in one statement.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


@dataclass(eq=False)
class PendingOrder:
    challenge_id: uuid.UUID
    user_id: uuid.UUID
    key: str | None
    act: Callable[..., Any]
    extra: dict[str, Any]
    result: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def resolve(self, value: Any) -> None:
        if not self.result.done():  # the caller may have given up (cancelled)
            self.result.set_result(value)

    def fail(self, exc: BaseException) -> None:
        if not self.result.done():
            self.result.set_exception(exc)


class OrderBatcher:
    """A queue of orders drained by a few workers, each writing one batch at a time."""

    def __init__(
        self,
        run: Callable[[list[PendingOrder]], Awaitable[None]],
        workers: int = 1,
        max_batch: int = 64,
        backlog: int = 8,
        linger: float = 0.0,
    ) -> None:
        self._run = run
        self._linger = linger
        self._backlog = backlog
        self._workers = workers
        self._max_batch = max_batch
        self._pending: deque[PendingOrder] = deque()
        self._in_flight: set[uuid.UUID] = set()
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def submit(self, order: PendingOrder) -> Any:
        if not self._tasks:  # started by the first order, on the serving loop
            self._wake = asyncio.Event()
            self._tasks = [asyncio.create_task(self._work(), name=f"orders-{i}") for i in range(self._workers)]
        assert self._wake is not None
        self._pending.append(order)
        self._wake.set()
        return await order.result

    def _take(self) -> list[PendingOrder]:
        """The oldest orders of distinct challenges that no other batch holds.

        A second batch starts beside one in flight only once enough orders wait for it:
        started at once, batches would stay at one order each and every order would pay the
        full per-statement cost again, which is what saturates first.
        """
        if self._in_flight and len(self._pending) < self._backlog:
            return []
        batch: list[PendingOrder] = []
        held: list[PendingOrder] = []
        taken: set[uuid.UUID] = set()
        while self._pending and len(batch) < self._max_batch:
            order = self._pending.popleft()
            if order.challenge_id in taken or order.challenge_id in self._in_flight:
                held.append(order)
            else:
                batch.append(order)
                taken.add(order.challenge_id)
        self._pending.extendleft(reversed(held))  # they keep their place in the queue
        self._in_flight |= taken
        return batch

    async def _work(self) -> None:
        assert self._wake is not None
        busy = False
        while True:
            if busy and self._linger and len(self._pending) < self._max_batch:
                await asyncio.sleep(self._linger)
            batch = self._take()
            busy = len(batch) > 1
            if not batch:
                self._wake.clear()
                await self._wake.wait()
                continue
            BATCH_SIZE.observe(len(batch))
            try:
                await self._run(batch)
            except Exception as exc:  # the whole batch failed (database down): each caller hears it
                for order in batch:
                    order.fail(exc)
            finally:
                self._in_flight.difference_update(o.challenge_id for o in batch)
                if self._pending:
                    self._wake.set()  # orders held back for these challenges may go now

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
