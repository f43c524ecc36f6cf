"""Group commit of orders: who shares a batch, and what a caller hears."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.challenges.order_batch import OrderBatcher, PendingOrder


def _order(cid: uuid.UUID, n: int) -> PendingOrder:
    return PendingOrder(cid, uuid.uuid4(), f"k{n}", lambda *a: None, {"n": n})


class Recorder:
    """A batch runner that records its batches and holds each until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.running: set[uuid.UUID] = set()
        self.overlaps = 0
        self.release = asyncio.Event()

    async def __call__(self, batch: list[PendingOrder]) -> None:
        ids = {o.challenge_id for o in batch}
        self.overlaps += len(ids & self.running)
        self.running |= ids
        self.batches.append([o.extra["n"] for o in batch])
        await self.release.wait()
        self.running -= ids
        for o in batch:
            o.resolve(o.extra["n"])


async def test_orders_that_arrive_together_share_one_batch_one_per_challenge() -> None:
    run = Recorder()
    batcher = OrderBatcher(run, workers=2, backlog=1)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # The first order starts a batch alone; the rest queue behind it while it is held.
    orders = [_order(a, 0), _order(a, 1), _order(b, 2), _order(c, 3), _order(a, 4), _order(b, 5)]
    results = [asyncio.create_task(batcher.submit(o)) for o in orders]
    await asyncio.sleep(0.01)
    run.release.set()
    assert await asyncio.gather(*results) == [0, 1, 2, 3, 4, 5]
    await batcher.close()
    # a's orders never share a batch nor run at the same time, and keep their order.
    assert run.overlaps == 0
    assert all(len(set(batch)) == len(batch) for batch in run.batches)
    flat = [n for batch in run.batches for n in batch]
    assert [n for n in flat if n in (0, 1, 4)] == [0, 1, 4]
    assert sorted(flat) == [0, 1, 2, 3, 4, 5]
    assert len(run.batches) < len(orders)  # some were written together
    assert max(len(batch) for batch in run.batches) == 3  # one order each of a, b and c


async def test_a_failed_batch_fails_each_of_its_orders_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def run(batch: list[PendingOrder]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database restarting")
        for o in batch:
            o.resolve("filled")

    batcher = OrderBatcher(run, workers=1)
    first = asyncio.create_task(batcher.submit(_order(uuid.uuid4(), 0)))
    with pytest.raises(ConnectionError):
        await first
    assert await batcher.submit(_order(uuid.uuid4(), 1)) == "filled"
    await batcher.close()


async def test_a_caller_that_gives_up_does_not_break_the_batch() -> None:
    run = Recorder()
    batcher = OrderBatcher(run, workers=1)
    cid = uuid.uuid4()
    gone = asyncio.create_task(batcher.submit(_order(cid, 0)))
    await asyncio.sleep(0.01)
    gone.cancel()
    run.release.set()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await batcher.submit(_order(cid, 1)) == 1  # the worker lives on
    await batcher.close()


async def test_a_second_writer_waits_for_a_backlog_before_starting_a_batch() -> None:
    run = Recorder()
    batcher = OrderBatcher(run, workers=2, backlog=3)
    ids = [uuid.uuid4() for _ in range(4)]
    results = [asyncio.create_task(batcher.submit(_order(ids[0], 0)))]
    await asyncio.sleep(0.01)
    results += [asyncio.create_task(batcher.submit(_order(ids[n], n))) for n in (1, 2)]
    await asyncio.sleep(0.01)
    assert run.batches == [[0]]  # two waiting orders are not yet worth a second batch
    results.append(asyncio.create_task(batcher.submit(_order(ids[3], 3))))
    await asyncio.sleep(0.01)
    assert run.batches == [[0], [1, 2, 3]]  # three are
    run.release.set()
    assert await asyncio.gather(*results) == [0, 1, 2, 3]
    await batcher.close()


async def test_a_busy_writer_lingers_for_more_orders_and_an_idle_one_does_not() -> None:
    run = Recorder()
    run.release.set()  # batches are written at once
    batcher = OrderBatcher(run, workers=1, linger=0.2)
    # Idle: a lone order is written without waiting for company.
    assert await asyncio.wait_for(batcher.submit(_order(uuid.uuid4(), 0)), 0.1) == 0
    # Busy (two orders in the last batch): orders that come during the linger go together.
    await asyncio.gather(*(batcher.submit(_order(uuid.uuid4(), n)) for n in (1, 2)))
    later = [asyncio.create_task(batcher.submit(_order(uuid.uuid4(), 3)))]
    await asyncio.sleep(0.05)
    later.append(asyncio.create_task(batcher.submit(_order(uuid.uuid4(), 4))))
    assert await asyncio.gather(*later) == [3, 4]
    assert run.batches == [[0], [1, 2], [3, 4]]
    await batcher.close()
