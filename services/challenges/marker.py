"""Mark-to-market and day rolls, driven by the price stream and the clock.

Each tick goes through the vectorised index; the few challenges it puts at a limit
(or a stop, or a warning level) are judged exactly by a small pool of workers, each
taking what is queued (up to a batch) into one transaction. A challenge already queued is
not queued twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import structlog
from prometheus_client import Counter, Histogram

from services.challenges import ledger_sql as sql
from services.challenges.domain.events import EquityUpdated
from services.challenges.ledger import Ledger
from services.challenges.prices import CachedQuote
from services.common.db import driver

log = structlog.get_logger("marker")

TICKS = Counter("challenges_mark_ticks_total", "Price ticks applied to the mark-to-market index.")
JUDGED = Counter(
    "challenges_mark_judged_total",
    "Challenges judged exactly after a tick or when their clock was due (a day roll, a flat time).",
    ("why",),
)
TICK_SECONDS = Histogram(
    "challenges_mark_tick_seconds",
    "Time to apply one tick to the index.",
    buckets=(0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1),
)


class Marker:
    def __init__(self, ledger: Ledger, workers: int = 4, equity_every: float = 5.0, batch: int = 50) -> None:
        self.ledger = ledger
        # Candidates a worker judges in one transaction: one tick can bring hundreds, and
        # the workers' batches overlap their database round trips.
        self.batch = batch
        self.equity_every = equity_every
        self.touched: set[uuid.UUID] = set()
        self.last_equity: dict[uuid.UUID, tuple[float, str]] = {}  # cid -> (monotonic time, equity sent)
        self.queue: asyncio.Queue[tuple[uuid.UUID, str | None]] = asyncio.Queue()
        self.pending: set[uuid.UUID] = set()
        self.workers = workers

    def on_tick(self, symbol: str, q: CachedQuote) -> None:
        with TICK_SECONDS.time():
            judge, warn, touched = self.ledger.index.on_price(symbol, float(q.bid), float(q.ask))
        TICKS.inc()
        ids = self.ledger.index.ids
        self.touched.update(ids[int(slot)] for slot in touched)  # type: ignore[misc]
        for slot in list(judge) + list(warn):
            self._enqueue(ids[int(slot)], symbol)  # type: ignore[arg-type]

    def _enqueue(self, cid: uuid.UUID, symbol: str | None) -> None:
        if cid not in self.pending:
            self.pending.add(cid)
            self.queue.put_nowait((cid, symbol))

    async def work(self) -> None:
        while True:
            queued = [await self.queue.get()]
            while len(queued) < self.batch and not self.queue.empty():
                queued.append(self.queue.get_nowait())
            wanted: dict[uuid.UUID, str | None] = {}
            for cid, symbol in queued:
                self.pending.discard(cid)
                if self.ledger.owns(cid):  # else the partition moved to another replica meanwhile
                    wanted[cid] = symbol
            if not wanted:
                continue
            try:
                await self.ledger.judge_many(wanted)
                for symbol in wanted.values():
                    JUDGED.labels("tick" if symbol else "clock").inc()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("judge failed", challenges=len(wanted), error=str(exc)[:200])

    async def clock(self, every: float = 1.0) -> None:
        """Judge each challenge when its clock is due: a day roll, a flat time, a deadline."""
        while True:
            await asyncio.sleep(every)
            now = datetime.now(UTC)
            for cid, at in list(self.ledger.clock_due.items()):
                if now >= at:
                    self.ledger.clock_due.pop(cid, None)
                    self._enqueue(cid, None)

    async def equity_updates(self, every: float = 1.0) -> None:
        """Throttled `equity_updated` events: at most one per challenge per `equity_every`
        seconds, only when its floating equity moved by a cent, all in one transaction a
        second. Informational (the index's float equity, rounded to the cent); the
        challenge's exact equity is in its detail."""
        while True:
            await asyncio.sleep(every)
            now, mono = datetime.now(UTC), time.monotonic()
            rows = []
            index = self.ledger.index
            for cid in list(self.touched):
                slot = index.slot_of.get(cid)
                uid = self.ledger.owner.get(cid)
                last = self.last_equity.get(cid)
                # Live ones only: an ended challenge's slot keeps its last balance.
                if slot is None or uid is None or cid not in self.ledger.clock_due or not self.ledger.owns(cid):
                    self.touched.discard(cid)
                    continue
                if last is not None and mono - last[0] < self.equity_every:
                    continue
                self.touched.discard(cid)
                equity = f"{index.balance[slot] + index.unreal[slot]:.2f}"
                if last is not None and last[1] == equity:
                    continue
                self.last_equity[cid] = (mono, equity)
                rows.append((cid, uid, EquityUpdated(now, equity)))
            if not rows:
                continue
            try:
                async with driver(self.ledger.db) as conn:
                    async with conn.transaction():
                        await sql.append_events(conn, rows, live_only=True)
                self.ledger.events_committed()
            except Exception as exc:
                log.warning("equity events failed", error=str(exc)[:200])

    def tasks(self) -> list:  # type: ignore[type-arg]
        return [self.work() for _ in range(self.workers)] + [self.clock(), self.equity_updates()]
