"""Recorded sessions: everything the ingestion leader publishes, kept for backtests.

A session is one leader's term of publishing (started when it takes over, ended at its last
recorded tick). Ticks are kept compact: per flush and symbol one row of arrays — microseconds
after the row's start, and bid and ask as whole numbers of the instrument's tick size — in a
table partitioned by day; partitions older than `MARKET_RECORD_DAYS` are dropped whole, and
sessions with them. `ticks_csv` reads a session back in `simulate`'s ticks format.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import driver
from services.market.domain.instruments import Instrument
from services.market.domain.ticks import Tick

log = structlog.get_logger("recording")

CSV_HEADER = "time,symbol,bid,ask\n"
# Ticks held for the next flush at most: while the database is down they pile up, and past
# this (five minutes at 1,000 ticks/s, ~60 MB) the oldest of the ticking symbol are dropped
# and counted, so an outage costs the recording a gap, never the process its memory.
MAX_PENDING = 300_000
DROPPED = Counter(
    "market_recording_ticks_dropped_total", "Ticks not recorded: the pending buffer was full (database down)."
)


def _partition(day: date) -> str:
    return f"recorded_ticks_{day:%Y%m%d}"


class Recorder:
    def __init__(
        self, db: AsyncEngine, instruments: dict[str, Instrument], keep_days: int, max_pending: int = MAX_PENDING
    ) -> None:
        self.db, self.instruments, self.keep_days = db, instruments, keep_days
        self.max_pending = max_pending
        self.session_id: int | None = None
        self._pending: dict[str, deque[Tick]] = {}
        self._held = 0  # ticks in _pending
        self._symbols: set[str] = set()
        self._partitions: set[date] = set()
        self._pruned: date | None = None

    async def begin(self, term: int) -> None:
        """A new session: this replica starts publishing."""
        now = datetime.now(UTC)
        async with driver(self.db) as conn:
            self.session_id = await conn.fetchval(
                "INSERT INTO recorded_sessions (term, started_at, ended_at) VALUES ($1, $2, $2) RETURNING id", term, now
            )
        self._pending.clear()
        self._held = 0
        self._symbols.clear()
        log.info("recording session", session_id=self.session_id, term=term)

    def end(self) -> None:
        self.session_id = None
        self._pending.clear()
        self._held = 0

    @property
    def pending(self) -> int:
        return self._held

    def record(self, tick: Tick) -> None:
        if self.session_id is None:
            return
        ticks = self._pending.get(tick.symbol)
        if ticks is None:
            ticks = self._pending[tick.symbol] = deque()
        if self._held >= self.max_pending and ticks:
            ticks.popleft()
            DROPPED.inc()
        else:
            self._held += 1
        ticks.append(tick)

    async def flush(self) -> int:
        """Write what was recorded since the last flush; the number of ticks written."""
        if self.session_id is None or not self._pending:
            return 0
        batch, self._pending, self._held = self._pending, {}, 0
        rows = []
        last = max(t.time for ticks in batch.values() for t in ticks)
        for sym, ticks in batch.items():
            step = self.instruments[sym].tick_size
            start = ticks[0].time
            rows.append(
                (
                    self.session_id,
                    sym,
                    start,
                    [int((t.time - start) / timedelta(microseconds=1)) for t in ticks],
                    [int(t.bid / step) for t in ticks],
                    [int(t.ask / step) for t in ticks],
                )
            )
        count = sum(len(r[3]) for r in rows)
        self._symbols |= set(batch)
        try:
            await self._write(rows, count, last)
        except Exception:
            for sym, ticks in batch.items():  # kept for the next flush: a failed write loses nothing
                self._held += len(ticks)
                ticks.extend(self._pending.get(sym, ()))
                self._pending[sym] = ticks
            while self._held > self.max_pending:  # the cap again, oldest first in the biggest
                max(self._pending.values(), key=len).popleft()
                self._held -= 1
                DROPPED.inc()
            raise
        await self._prune(last.date())
        return count

    async def _write(self, rows: list[tuple[Any, ...]], count: int, last: datetime) -> None:
        async with driver(self.db) as conn:
            for day in {r[2].date() for r in rows} - self._partitions:
                await self._ensure_partition(conn, day)
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "recorded_ticks",
                    records=rows,
                    columns=["session_id", "symbol", "start", "offsets_us", "bids", "asks"],
                )
                await conn.execute(
                    "UPDATE recorded_sessions SET ended_at = $2, tick_count = tick_count + $3, symbols = $4 "
                    "WHERE id = $1",
                    self.session_id,
                    last,
                    count,
                    sorted(self._symbols),
                )

    async def _ensure_partition(self, conn: asyncpg.Connection, day: date) -> None:
        # A day's partition, created by whichever leader first records on it (and the next one,
        # so midnight never finds it missing).
        for d in (day, day + timedelta(days=1)):
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_partition(d)} PARTITION OF recorded_ticks "
                f"FOR VALUES FROM ('{d.isoformat()}') TO ('{(d + timedelta(days=1)).isoformat()}')"
            )
            self._partitions.add(d)

    async def _prune(self, today: date) -> None:
        """Drop the days past retention (once a day), and the sessions that ended before them."""
        if self._pruned == today:
            return
        self._pruned = today
        cutoff = today - timedelta(days=self.keep_days)
        async with driver(self.db) as conn:
            names = await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'recorded_ticks' "
                "AND pg_table_is_visible(p.oid)"
            )
            for r in names:
                day = datetime.strptime(r["relname"].removeprefix("recorded_ticks_"), "%Y%m%d").date()
                if day < cutoff:
                    await conn.execute(f"DROP TABLE IF EXISTS {r['relname']}")
                    self._partitions.discard(day)
                    log.info("recorded day dropped", day=day.isoformat())
            await conn.execute(
                "DELETE FROM recorded_sessions WHERE ended_at < $1",
                datetime.combine(cutoff, datetime.min.time(), UTC),
            )


async def sessions(db: AsyncEngine, before: int | None, limit: int) -> list[asyncpg.Record]:
    """Sessions newest first, those with an id below `before` (a page's cursor)."""
    async with driver(db) as conn:
        return list(
            await conn.fetch(
                "SELECT * FROM recorded_sessions WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
                before,
                limit,
            )
        )


async def session_exists(db: AsyncEngine, session_id: int) -> bool:
    async with driver(db) as conn:
        return await conn.fetchval("SELECT 1 FROM recorded_sessions WHERE id = $1", session_id) is not None


_PAGE = """
SELECT symbol, start, offsets_us, bids, asks FROM recorded_ticks
 WHERE session_id = $1 AND (cardinality($2::text[]) = 0 OR symbol = ANY($2::text[]))
   AND ($3::timestamptz IS NULL OR (start, symbol) > ($3, $4))
 ORDER BY start, symbol LIMIT $5
"""


async def ticks_csv(
    db: AsyncEngine,
    instruments: dict[str, Instrument],
    session_id: int,
    symbols: list[str],
    chunk: int = 65536,
    page: int = 200,
) -> AsyncIterator[str]:
    """A session's ticks in time order as CSV text, `chunk` characters at a time.

    Read a page of rows at a time by key (start, symbol — one row per flush and symbol, and a
    symbol's flushes never share a start), each page on a pooled connection taken for that one
    statement: nothing is held while the reader takes its time, so slow readers cannot starve
    the pool the leader's candles and everyone's charts need."""
    buf, size = [CSV_HEADER], len(CSV_HEADER)
    window: list[tuple[datetime, str, Decimal, Decimal]] = []
    window_end: datetime | None = None
    after: tuple[datetime | None, str] = (None, "")
    while True:
        async with driver(db) as conn:
            rows = await conn.fetch(_PAGE, session_id, symbols, after[0], after[1], page)
        for r in rows:
            inst = instruments.get(r["symbol"])
            if inst is None:
                continue
            step = inst.tick_size
            # Rows of one flush overlap in time: gather a flush's rows, then sort its ticks.
            if window_end is not None and r["start"] > window_end:
                lines = _lines(window)
                buf += lines
                size += sum(map(len, lines))
                window = []
            start = r["start"]
            for off, b, a in zip(r["offsets_us"], r["bids"], r["asks"], strict=True):
                t = start + timedelta(microseconds=off)
                window.append((t, r["symbol"], (b * step).quantize(step), (a * step).quantize(step)))
                window_end = t if window_end is None or t > window_end else window_end
        if size >= chunk:
            yield "".join(buf)
            buf, size = [], 0
        if len(rows) < page:
            break
        after = (rows[-1]["start"], rows[-1]["symbol"])
    buf += _lines(window)
    yield "".join(buf)


def _lines(window: list[tuple[datetime, str, Decimal, Decimal]]) -> list[str]:
    window.sort(key=lambda x: (x[0], x[1]))
    return [f"{t.isoformat().replace('+00:00', 'Z')},{s},{b},{a}\n" for t, s, b, a in window]
