"""One reader per process feeds every stream of a table (issue 16, item 8): a stream replays
what came before it joined from the table, then only the fan-out reads; a stream that falls
behind catches up alone. The table here is a list; the reads it serves are counted."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from services.common import fanout
from services.common.fanout import Fanout


class Table:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.reads = 0
        self.wake = asyncio.Event()

    def add(self, cid: uuid.UUID, n: int = 1) -> None:
        for _ in range(n):
            self.rows.append({"sequence": len(self.rows) + 1, "challenge_id": cid})
        self.wake.set()
        self.wake = asyncio.Event()

    async def read(self, after: int, limit: int, cid: uuid.UUID | None) -> list[dict[str, Any]]:
        self.reads += 1
        found = [r for r in self.rows if r["sequence"] > after and (cid is None or r["challenge_id"] == cid)]
        return found[:limit]

    async def latest(self) -> int:
        return len(self.rows)


def _fanout(table: Table) -> Fanout[int]:
    return Fanout(table.read, table.latest, lambda r: r["sequence"], lambda r: r["challenge_id"], lambda: table.wake, 5)


async def _take(stream: Any, n: int) -> list[int]:
    return [(await anext(stream))["sequence"] for _ in range(n)]


async def test_streams_replay_then_share_one_reader() -> None:
    table = Table()
    a, b = uuid.uuid4(), uuid.uuid4()
    table.add(a, 3)
    table.add(b, 2)
    hub = Fanout(
        table.read, table.latest, lambda r: r["sequence"], lambda r: r["challenge_id"], lambda: table.wake, poll=5
    )
    mine = hub.follow(0, a)
    everything = hub.follow(2, None)
    assert await _take(mine, 3) == [1, 2, 3]  # replayed from the table
    assert await _take(everything, 3) == [3, 4, 5]
    await asyncio.sleep(0.01)
    reads = table.reads
    streams = [hub.follow(5, None) for _ in range(50)]
    firsts = [asyncio.ensure_future(_take(s, 1)) for s in streams]
    await asyncio.sleep(0.01)
    table.add(a)
    assert [await f for f in firsts] == [[6]] * 50
    assert await _take(mine, 1) == [6] and await _take(everything, 1) == [6]
    assert table.reads - reads <= 1 + 50  # each new stream's replay, and one read for the row
    # All live now: three more rows reach all 52 streams for a read or two each, not 52.
    reads = table.reads
    for _ in range(3):
        table.add(a)
        await asyncio.sleep(0.01)
    for s in [*streams, mine, everything]:
        assert len(await _take(s, 3)) == 3
    assert table.reads - reads <= 6


async def test_a_stream_that_falls_behind_catches_up_from_the_table_in_order() -> None:
    table = Table()
    cid = uuid.uuid4()
    hub = Fanout(
        table.read, table.latest, lambda r: r["sequence"], lambda r: r["challenge_id"], lambda: table.wake, poll=5
    )
    slow = hub.follow(0, None)
    first = asyncio.ensure_future(_take(slow, 1))
    await asyncio.sleep(0.01)
    table.add(cid)
    assert await first == [1]
    table.add(cid, fanout.QUEUE + 10)  # more than its queue holds, while it reads nothing
    await asyncio.sleep(0.05)
    got = await _take(slow, fanout.QUEUE + 10)
    assert got == list(range(2, fanout.QUEUE + 12))  # nothing lost, nothing twice


async def test_a_busy_stream_gets_what_is_ready_in_runs_and_a_replay_in_pages() -> None:
    """follow_batches: the replay a page per run, then each run every row queued meanwhile,
    in order, none twice, and the stream unsubscribed once closed."""
    table = Table()
    cid = uuid.uuid4()
    table.add(cid, 7)
    hub = Fanout(
        table.read, table.latest, lambda r: r["sequence"], lambda r: r["challenge_id"], lambda: table.wake, poll=5
    )
    runs = hub.follow_batches(0, None, most=5)
    assert [r["sequence"] for r in await anext(runs)] == [1, 2, 3, 4, 5]
    assert [r["sequence"] for r in await anext(runs)] == [6, 7]
    waiting = asyncio.ensure_future(anext(runs))
    await asyncio.sleep(0.01)
    table.add(cid, 3)  # one wake-up of the fan-out: three rows queued together
    assert [r["sequence"] for r in await waiting] == [8, 9, 10]
    table.add(cid, 12)
    await asyncio.sleep(0.01)
    assert [r["sequence"] for r in await anext(runs)] == [11, 12, 13, 14, 15]  # at most `most`
    assert [r["sequence"] for r in await anext(runs)] == [16, 17, 18, 19, 20]
    assert [r["sequence"] for r in await anext(runs)] == [21, 22]
    await runs.aclose()
    assert not hub._subs
