"""Judgement without an order: a tick put a challenge at a limit, its clock is due, another
replica changed it, or this replica took over its partition. Judged exactly (Decimal engine),
in batches: one lock statement, one read of their positions, one write of everything they did.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from services.challenges import ledger_sql as sql
from services.challenges.changes import Changes, Row, Work
from services.challenges.commits import Commits
from services.challenges.domain.events import Event
from services.challenges.domain.session import Session
from services.challenges.index_sync import IndexSync
from services.challenges.partitions import PARTITIONS, partition_of
from services.challenges.states import States
from services.common.db import driver

log = structlog.get_logger("judging")

# Attempts at a judgement that lost a deadlock (PostgreSQL aborts one side after a second).
JUDGE_TRIES = 3
# Challenges judged in one transaction at most (judge_many splits larger sets).
JUDGE_BATCH = 100
# Challenges fetched at a time from the cursor that reads a taken-over share.
TAKEOVER_CHUNK = 1000
# How far back a takeover looks for clock moments nobody judged (a reset, a flat time, a
# deadline): the old owner judged its share until it stopped renewing its leases, which is at
# most a lease TTL (5 s) plus a renewal before they came free; a minute covers that with room
# for a clock period and a queue of judgements the dead process never ran.
TAKEOVER_LOOKBACK = timedelta(seconds=60)


def judgement(s: Session, symbol: str | None, now: datetime) -> list[Event]:
    """What the clock (symbol None) or the last tick in `symbol` does to a session."""
    if symbol is None or symbol not in s.quotes:
        # The clock judges flat accounts too: a time limit or inactivity needs no position.
        return s._roll(now) + s._judge(now)
    q = s.quotes[symbol]
    return s.on_tick(symbol, q.bid, q.ask, now)


class Judging:
    def __init__(
        self,
        db: AsyncEngine,
        states: States,
        changes: Changes,
        sync: IndexSync,
        commits: Commits,
        owns: Callable[[uuid.UUID], bool],
    ) -> None:
        self.db, self.states, self.changes, self.sync, self.commits, self.owns = (
            db,
            states,
            changes,
            sync,
            commits,
            owns,
        )

    async def judge_many(self, wanted: dict[uuid.UUID, str | None]) -> None:
        """Judge several challenges, up to JUDGE_BATCH in one transaction.

        A big price move can put hundreds of challenges at a limit with one tick; judged one
        transaction each, they queued behind each other (bench.breach_latency). A batch that
        fails is judged again one challenge at a time, so one bad challenge holds back no
        other (its failure is logged; a lone challenge's failure is raised).
        """
        ids = sorted(wanted)
        for i in range(0, len(ids), JUDGE_BATCH):
            batch = {cid: wanted[cid] for cid in ids[i : i + JUDGE_BATCH]}
            try:
                await self._retrying(batch)
            except Exception:
                if len(wanted) == 1:
                    raise
                for cid, symbol in batch.items():
                    try:
                        await self._retrying({cid: symbol})
                    except Exception as exc:
                        log.error("judge failed", challenge_id=str(cid), error=str(exc)[:200])

    async def _retrying(self, wanted: dict[uuid.UUID, str | None]) -> None:
        # Rows are locked in id order, the order every multi-row writer uses; a deadlock with
        # another replica's batch or an order's statement is retried.
        for attempt in range(JUDGE_TRIES):
            try:
                await self._judge(wanted)
                return
            except asyncpg.DeadlockDetectedError:
                if attempt == JUDGE_TRIES - 1:
                    raise

    async def _judge(self, wanted: dict[uuid.UUID, str | None]) -> None:
        now = datetime.now(UTC)
        work: list[Work] = []
        unchanged: list[tuple[Row, Session]] = []
        async with driver(self.db) as conn:
            async with conn.transaction():
                rows = await sql.lock_challenges(conn, sorted(wanted))
                held = await sql.positions_of(conn, [r["id"] for r in rows])
                for row in rows:
                    try:
                        s = self.states.session(row, held[row["id"]])
                        events = judgement(s, wanted[row["id"]], now)
                    except Exception as exc:  # one challenge's bug is not the others'
                        log.error("judge failed", challenge_id=str(row["id"]), error=str(exc)[:200])
                        continue
                    if events:
                        work.append((row, s, events, {}))
                    else:
                        unchanged.append((row, s))
                written = await self.changes.persist(conn, work, now) if work else []
        for (read, session, _, _), (change, last) in zip(work, written, strict=True):
            self.changes.written(change, last)
            self.sync.refresh(read["id"], read["user_id"], session, read["version"] + 1)
        if work:
            self.commits.committed()
        for read, session in unchanged:
            self.sync.refresh(read["id"], read["user_id"], session, read["version"])

    async def load_live(self, partitions: set[int] | None = None) -> int:
        """Index the live challenges of our partitions, catching up on missed day rolls."""
        wanted = sorted(range(PARTITIONS) if partitions is None else partitions)
        async with driver(self.db) as conn:
            # Only the ids of our share: the rows themselves are read, locked, in the batches
            # that judge them.
            ids = await sql.live_share_ids(conn, PARTITIONS, wanted)
        if not ids:
            return 0
        try:
            await self.judge_many(dict.fromkeys(ids))
        except Exception as exc:  # the only one (several are judged one by one on failure)
            log.error("could not load challenge", challenge_id=str(ids[0]), error=str(exc)[:200])
        return len(ids)

    async def take_over(self, partitions: set[int]) -> tuple[int, int]:
        """Index a share another replica judged until moments ago (its leases expired), and
        judge exactly what needs it now: what the index puts at a limit, a stop or a warning
        at the current prices, as at every tick; each challenge's clock resumes from the
        lookback, so a reset, flat time or deadline the old owner missed is due at once (the
        marker's clock judges it within a second).

        A cold start judges every challenge exactly (`load_live`: nobody may have judged them
        for hours); a takeover need not, and judging 60,000 challenges under their locks one
        batch after another took 12 s (bench.challenges_scale). Read without locks: a newer
        version committed meanwhile (an order here) is already in the index, and the index
        keeps the newer one (`IndexSync.refresh`). Returns (indexed, judged exactly).
        """
        since = datetime.now(UTC) - TAKEOVER_LOOKBACK
        wanted = sorted(partitions)
        due: dict[uuid.UUID, str | None] = {}
        count = 0
        # A reader task fills a short queue from one cursor while the rows are indexed here, so
        # PostgreSQL's scan and our indexing overlap; indexing yields every few hundred rows.
        chunks: asyncio.Queue[list[Any] | None] = asyncio.Queue(maxsize=2)
        reader = asyncio.create_task(self._read_share(wanted, chunks))
        try:
            while (chunk := await chunks.get()) is not None:
                for i, (row, held) in enumerate(chunk):
                    if i % 250 == 0:
                        await asyncio.sleep(0)  # orders, ticks and the reader go on meanwhile
                    if not self._index_unlocked(row, held, since):
                        due[row["id"]] = None
                count += len(chunk)
            await reader  # its failure, if any
        finally:
            reader.cancel()
        # The current prices, applied as ticks: the new rows' floating P&L, and the candidates.
        index = self.sync.index
        for symbol, q in list(self.states.market.quotes.items()):
            judge, warn, _ = index.on_price(symbol, float(q.bid), float(q.ask))
            for slot in (*judge, *warn):
                cid = index.ids[int(slot)]
                if isinstance(cid, uuid.UUID) and cid not in due and partition_of(cid) in partitions:
                    due[cid] = symbol
        due = {cid: symbol for cid, symbol in due.items() if self.owns(cid)}  # not lost meanwhile
        if due:
            await self.judge_many(due)
        log.info("partitions taken over", partitions=wanted, indexed=count, judged=len(due))
        return count, len(due)

    def _index_unlocked(self, row: dict[str, Any], held: list[Any], clock_from: datetime) -> bool:
        """Index a challenge read without a lock; False if it could not be (judge it exactly)."""
        try:
            s = self.states.session(row, held)
            self.sync.refresh(row["id"], row["user_id"], s, row["version"], clock_from)
            return True
        except Exception as exc:  # judged exactly then, where a failure is logged
            log.warning("take over: could not index", challenge_id=str(row["id"]), error=str(exc)[:200])
            return False

    async def _read_share(self, wanted: list[int], out: asyncio.Queue[list[Any] | None]) -> None:
        """Fill `out` with the share's rows, then None (also after a failure, which the
        consumer's `await` of this task then raises)."""
        try:
            async with driver(self.db) as conn:
                async for chunk in sql.live_share(conn, PARTITIONS, wanted, TAKEOVER_CHUNK):
                    await out.put(chunk)
        except Exception:
            await out.put(None)
            raise
        await out.put(None)

    async def follow_outbox(self, poll: float = 0.3) -> None:
        """Keep the index of our challenges current when another replica changes them
        (an order handled there): replay their outbox events since we started."""
        async with driver(self.db) as conn:
            cursor = int(await conn.fetchval("SELECT coalesce(max(sequence), 0) FROM events"))
        while True:
            # A timer, not our own commits, paces this: what this replica commits is already
            # in its index, and waking per order cost a query per order.
            try:
                async with driver(self.db) as conn:
                    rows: list[Any] = await conn.fetch(
                        "SELECT sequence, challenge_id FROM events WHERE sequence > $1 ORDER BY sequence LIMIT 1000",
                        cursor,
                    )
                todo: set[uuid.UUID] = set()
                for r in rows:
                    cursor = r["sequence"]
                    cid = r["challenge_id"]
                    if self.owns(cid) and not self.commits.mine(cid, r["sequence"]):
                        todo.add(cid)
                await self.judge_many(dict.fromkeys(todo))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox follow failed", error=str(exc)[:200])
            await asyncio.sleep(poll)
