"""Recorded sessions: what it costs market's ingestion leader to record 1,000 ticks a second.

    python -m bench.recording [--rate 1000] [--seconds 30] [--runs 3]

Ticks over the whole catalogue at `rate` a second go through the leader's `Recorder` and are
flushed once a second, as the service does, into a fresh PostgreSQL (embedded). Reported: the
flush's wall time and the process's CPU per tick (recording + flushing), and the bytes per
tick the day's partition and its index take on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

from bench.report import git_rev, median_of, percentile, save
from devstack.postgres import EmbeddedPostgres
from devstack.stack import free_port
from services.common.config import ServiceSettings
from services.common.db import create_engine, driver
from services.common.migrations import migrate
from services.market.domain.instruments import CATALOGUE
from services.market.domain.ticks import Tick, round_to_tick
from services.market.recording import Recorder

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "market" / "migrations"


async def run(url: str, rate: int, seconds: float) -> dict[str, float]:
    settings = ServiceSettings(service_name="market", database_url=url)  # type: ignore[arg-type]
    engine = create_engine(settings)
    await migrate(engine, "market", MIGRATIONS)
    async with driver(engine) as conn:
        await conn.execute("TRUNCATE recorded_ticks, recorded_sessions")
    instruments = {i.symbol: i for i in CATALOGUE}
    rec = Recorder(engine, instruments, keep_days=7)
    await rec.begin(1)
    rng = np.random.default_rng(1)
    symbols = list(instruments)
    price = {s: instruments[s].start_price for s in symbols}
    flushes, written = [], 0
    cpu0, start = time.process_time(), time.monotonic()
    next_flush = start + 1.0
    k = 0
    while time.monotonic() - start < seconds:
        # One second's ticks, stamped as they would be, then the flush.
        now = datetime.now(UTC)
        for i in range(rate):
            sym = symbols[k % len(symbols)]
            k += 1
            inst = instruments[sym]
            p = price[sym] = max(price[sym] * Decimal(1 + float(rng.normal(0, 0.0002))), inst.tick_size)
            bid = round_to_tick(p, inst.tick_size)
            rec.record(Tick(sym, bid, bid + inst.tick_size, now + timedelta(microseconds=i * 1_000_000 // rate), "b"))
        t0 = time.perf_counter()
        written += await rec.flush()
        flushes.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(max(next_flush - time.monotonic(), 0))
        next_flush += 1.0
    cpu = time.process_time() - cpu0
    async with driver(engine) as conn:
        size = await conn.fetchval(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'recorded_ticks'"
        )
        count = await conn.fetchval("SELECT tick_count FROM recorded_sessions WHERE id = $1", rec.session_id)
    await engine.dispose()
    assert count == written
    return {
        "ticks": float(written),
        "flush_ms_p50": percentile(flushes, 50),
        "flush_ms_p99": percentile(flushes, 99),
        "cpu_us_per_tick": cpu / written * 1e6,
        "bytes_per_tick": float(size) / written,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        pg = EmbeddedPostgres(Path(d) / "pg", free_port(), durable=True)
        pg.start(Path(d) / "pg.log")
        try:
            m = median_of([asyncio.run(run(pg.url, args.rate, args.seconds)) for _ in range(args.runs)])
        finally:
            pg.stop()
    rows = [
        [
            f"{args.rate:,} ticks/s over {len(CATALOGUE)} symbols, flushed every second",
            f"p50 {m['flush_ms_p50']:.1f} ms, p99 {m['flush_ms_p99']:.1f} ms",
            f"{m['cpu_us_per_tick']:.1f} µs",
            f"{m['bytes_per_tick']:.1f} B",
        ]
    ]
    print(rows, flush=True)
    save(
        "recording",
        {
            "command": f"python -m bench.recording --rate {args.rate} --seconds {args.seconds:g} --runs {args.runs}",
            "commit": git_rev(),
            "notes": "One process records and flushes (COPY of one row of arrays per symbol and second: "
            "µs offsets, bid and ask in whole ticks) into a durable embedded PostgreSQL; the bytes are the "
            "day partition's table, TOAST and index. CPU is the recording process's (the database's is apart).",
            "results": m,
            "tables": [
                {
                    "title": "Recording what market publishes",
                    "columns": ["load", "flush (wall)", "process CPU per tick", "disk per tick"],
                    "rows": rows,
                }
            ],
        },
    )


if __name__ == "__main__":
    main()
