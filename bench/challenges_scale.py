"""Challenges at a firm's scale: live challenges with open positions in PostgreSQL, shared by three
replicas' partitions.

    python -m bench.challenges_scale [--challenges 200000] [--positions 5] [--replicas 3]

Seeds `challenges` ACTIVE FTMO accounts, each holding `positions` open positions, then measures
what a replica of the challenges service does with its share (the partitions it leases):
- cold start: index and judge its share exactly (`Ledger.load_live`, what start-up runs);
- takeover: after another replica dies (kill -9), the survivors each claim up to their fair
  share of its partitions (ceil(16 / survivors), as the leases do); the one that gains the most
  indexes them and judges exactly what needs it (what a lease takeover runs,
  `Leases.on_change` → `Ledger.take_over`);
- its memory: the process's RSS before and after, per 100,000 live challenges indexed.
The replicas are `Ledger`s in this one process, each owning a third of the partitions, run one
after another on the machine's two cores with PostgreSQL beside them. The lease handover is
measured for real beside it (`handover`): the survivors' `Leases` here, the dying replica's in a
process of its own, killed with SIGKILL; from the kill to the survivors holding every partition.
One challenge in 100 holds a losing BTCUSD position past its daily loss, so both paths also
judge and write breaches.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import asyncpg
import grpc
import psutil

from bench.report import git_rev, save
from devstack.postgres import EmbeddedPostgres
from devstack.stack import free_port
from services.challenges import store
from services.challenges.domain import engine
from services.challenges.domain.engine import Account
from services.challenges.domain.marking import MarkIndex
from services.challenges.domain.packs import BUILT_IN, FTMO_2STEP
from services.challenges.domain.plans import PLANS
from services.challenges.domain.session import Spec
from services.challenges.ledger import Ledger
from services.challenges.partitions import PARTITIONS, partition_of
from services.challenges.prices import CachedQuote, MarketView
from services.challenges.server import settle_heap
from services.common.config import ServiceSettings
from services.common.db import create_engine
from services.common.migrations import migrate
from services.common.partition_leases import Leases

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "challenges" / "migrations"
SYMBOLS = {  # symbol: (contract size, price)
    "BTCUSD": ("1", "50000"),
    "ETHUSD": ("1", "3000"),
    "XAUUSD": ("100", "2300"),
    "US500": ("1", "5200"),
    "NAS100": ("1", "18000"),
}


def market() -> MarketView:
    """The instruments and a fresh quote for each, as the price stream keeps them."""
    view = MarketView(grpc.aio.insecure_channel("127.0.0.1:9"), cast(Any, None))
    now = datetime.now(UTC)
    view.specs = {
        s: Spec(s, Decimal(size), "USD", Decimal("0.01"), Decimal(100), Decimal("0.01"))
        for s, (size, _) in SYMBOLS.items()
    }
    view.quotes = {s: CachedQuote(Decimal(p), Decimal(p) + 1, now, True) for s, (_, p) in SYMBOLS.items()}
    return view


def _position(i: int, k: int, symbol: str) -> tuple[Decimal, Decimal]:
    """(quantity, average price): flat P&L at the seeded quote, but one challenge in 100 is long
    a BTCUSD bought $6,000 above it (past FTMO's $5,000 daily loss)."""
    price = Decimal(SYMBOLS[symbol][1])
    if i % 100 == 0 and symbol == "BTCUSD":
        return Decimal(1), price + 6000
    return Decimal("0.01"), price


async def seed(url: str, n: int, per: int) -> None:
    rules = FTMO_2STEP.rules_for(1, Decimal("100000.00"))
    now = datetime.now(UTC)
    account = Account.new(rules.initial_balance)
    engine.start(account, rules, now)
    rules_json, account_json = rules.to_json(), json.dumps(account.to_json())
    conn = await asyncpg.connect(url, server_settings={"search_path": "challenges"})
    try:
        ids = [uuid.uuid4() for _ in range(n)]
        await conn.copy_records_to_table(
            "challenges",
            columns=[
                "id", "user_id", "plan_id", "phase", "status", "rules", "account", "initial_balance", "balance",
                "equity", "currency", "created_at", "started_at", "updated_at",
            ],
            records=[
                (cid, uuid.uuid4(), "ftmo-phase1", 1, "ACTIVE", rules_json, account_json, Decimal(100000),
                 Decimal(100000), Decimal(100000), "USD", now, now, now)
                for cid in ids
            ],
        )  # fmt: skip
        names = list(SYMBOLS)
        await conn.copy_records_to_table(
            "positions",
            columns=["challenge_id", "symbol", "quantity", "avg_price", "updated_at"],
            records=[(cid, names[k], *_position(i, k, names[k]), now) for i, cid in enumerate(ids) for k in range(per)],
        )
        await conn.execute("ANALYZE challenges; ANALYZE positions")
    finally:
        await conn.close()


# A replica's leases alone, in a process of its own: what dies in `handover`.
_LEASE_HOLDER = """
import asyncio, sys
from services.common.config import ServiceSettings
from services.common.db import create_engine
from services.common.partition_leases import Leases
async def main():
    db = create_engine(ServiceSettings(service_name="challenges", database_url=sys.argv[1]))
    await Leases(db, sys.argv[2]).run()
asyncio.run(main())
"""


async def handover(url: str, replicas: int, kills: int) -> list[float]:
    """Seconds from SIGKILL of one replica's process to the survivors holding all 16 partitions,
    once per kill: `replicas - 1` survivors' Leases here, the victim's in a process of its own."""
    settings = ServiceSettings(service_name="challenges", database_url=url)  # type: ignore[arg-type]
    engines = [create_engine(settings) for _ in range(replicas - 1)]
    changed = asyncio.Event()

    def note(gained: set[int], lost: set[int]) -> None:
        changed.set()

    async def until(cond: Callable[[], bool]) -> None:
        while not cond():
            changed.clear()
            await changed.wait()

    def held() -> int:
        return sum(len(s.owned) for s in survivors)

    survivors = [Leases(e, f"survivor-{k}", on_change=note) for k, e in enumerate(engines)]
    tasks = [asyncio.create_task(s.run()) for s in survivors]
    fair = math.ceil(PARTITIONS / replicas)
    out = []
    try:
        for k in range(kills):
            victim = await asyncio.create_subprocess_exec(sys.executable, "-c", _LEASE_HOLDER, url, f"victim-{k}")
            await until(lambda: held() < PARTITIONS and all(len(s.owned) <= fair for s in survivors))  # its share
            await asyncio.sleep(1 + k * 0.37)  # each kill at another moment of the survivors' 1 s steps
            victim.kill()
            t0 = time.perf_counter()
            await until(lambda: held() == PARTITIONS)
            out.append(time.perf_counter() - t0)
            await victim.wait()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in survivors:
            await s.release_all()
        for e in engines:
            await e.dispose()
    return out


async def run(url: str, n: int, per: int, replicas: int) -> dict[str, float]:
    settings = ServiceSettings(service_name="challenges", database_url=url)  # type: ignore[arg-type]
    db = create_engine(settings)
    await migrate(db, "challenges", MIGRATIONS)
    async with db.begin() as conn:
        await store.seed(conn, BUILT_IN, PLANS)
    t0 = time.perf_counter()
    await seed(url, n, per)
    seeded = time.perf_counter() - t0
    shares = [set(range(PARTITIONS)[k::replicas]) for k in range(replicas)]
    me = psutil.Process()
    rss0 = me.memory_info().rss
    owned = set(shares[0])  # the first replica's partitions, as its leases hold them
    first = Ledger(db, market(), MarkIndex(capacity=n), owns=lambda cid: partition_of(cid) in owned)
    t0 = time.perf_counter()
    cold_n = await first.load_live(shares[0])
    cold = time.perf_counter() - t0
    settle_heap()  # as the service does after loading
    rss1 = me.memory_info().rss
    indexed = len(first.clock_due)
    # Replica 2 of 3 dies: each survivor claims free partitions up to its fair share; the first
    # takes as many as the survivor that gains the most (they run in parallel, on their own cores).
    fair = math.ceil(PARTITIONS / (replicas - 1))
    most = max(fair - len(shares[k]) for k in range(replicas) if k != 1)
    gained = set(sorted(shares[1])[:most])
    owned |= gained
    t0 = time.perf_counter()
    takeover_n, takeover_judged = await first.take_over(gained)
    takeover = time.perf_counter() - t0
    rss2 = me.memory_info().rss
    await db.dispose()
    handovers = await handover(url, replicas, kills=5)
    return {
        "handover_s_median": sorted(handovers)[len(handovers) // 2],
        "handover_s_max": max(handovers),
        "seed_s": seeded,
        "cold_start_challenges": float(cold_n),
        "cold_start_s": cold,
        "indexed": float(indexed),
        "takeover_challenges": float(takeover_n),
        "takeover_partitions": float(len(gained)),
        "takeover_judged": float(takeover_judged),
        "takeover_s": takeover,
        "rss_mib_per_100k": (rss2 - rss0) / 2**20 / (len(first.clock_due) / 100_000),
        "rss_mib_after_cold_start": (rss1 - rss0) / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--challenges", type=int, default=200_000)
    ap.add_argument("--positions", type=int, default=5)
    ap.add_argument("--replicas", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        pg = EmbeddedPostgres(Path(d) / "pg", free_port(), durable=True)
        pg.start(Path(d) / "pg.log")
        try:
            m = asyncio.run(run(pg.url, args.challenges, args.positions, args.replicas))
        finally:
            pg.stop()
    share = m["cold_start_challenges"]
    rows = [
        [
            "cold start: index and judge its share",
            f"{share:,.0f} challenges, {share * args.positions:,.0f} positions",
            f"{m['cold_start_s']:.1f} s ({share / m['cold_start_s']:,.0f}/s)",
            "< 30 s",
            "yes" if m["cold_start_s"] < 30 else "no",
        ],
        [
            "takeover after kill -9 of a replica: index the most a survivor gains, judge what needs it",
            f"{m['takeover_partitions']:.0f} partitions: {m['takeover_challenges']:,.0f} challenges, "
            f"{m['takeover_judged']:,.0f} judged exactly",
            f"{m['takeover_s']:.1f} s, after the dead replica's partitions are claimed "
            f"{m['handover_s_median']:.1f} s after the kill (median of 5 kills, {m['handover_s_max']:.1f} s at "
            f"worst): from the kill {m['handover_s_median'] + m['takeover_s']:.1f} s typical, "
            f"{m['handover_s_max'] + m['takeover_s']:.1f} s at worst",
            "< 10 s",
            "yes" if m["handover_s_max"] + m["takeover_s"] < 10 else "no",
        ],
        [
            "memory of the live index",
            "per 100,000 live challenges",
            f"{m['rss_mib_per_100k']:.0f} MiB RSS",
            "—",
            "—",
        ],
    ]
    print(rows, m, flush=True)
    save(
        "challenges_scale",
        {
            "command": f"python -m bench.challenges_scale --challenges {args.challenges} "
            f"--positions {args.positions} --replicas {args.replicas}",
            "commit": git_rev(),
            "notes": f"{args.challenges:,} ACTIVE FTMO challenges with {args.positions} open positions each "
            f"(seeded by COPY in {m['seed_s']:.0f} s) in a durable embedded PostgreSQL; one replica's share is "
            f"1/{args.replicas} of the 16 partitions. Cold start: each challenge is judged exactly (rules, account "
            "and positions read under its row lock, the Decimal engine, the mark index refreshed), 100 per "
            "transaction, one transaction at a time: the process's one event loop and the database's round "
            "trips bound it. Takeover (Judging.take_over): the share is read without locks 2,000 challenges a "
            "statement and indexed, the current prices applied as ticks, and judged exactly only where the "
            "index puts it at a limit, a stop or a warning or a clock moment fell within the last minute; judged "
            "exactly like a cold start instead, 62,367 challenges took 12.2 s (2026-12-01). One challenge in 100 "
            "is seeded past its daily loss: both paths breach those. The takeover's bound: indexing runs on one core "
            "at ≈115 µs per challenge (decoding the row and its positions, the account's Decimals, the index's "
            "levels); the service freezes its loaded heap out of the collector's way (5.2 s before). The handover: "
            "a replica holds a session advisory lock while it lives; killed, its session ends and the survivors' "
            "next lease step (every 1 s) sees the lock free and claims its partitions (services/common/"
            "partition_leases.py). Before that lock the 5 s lease TTL came on top (from the kill 9.3 s typical, "
            "10.3 s at worst, 2026-12-02); it still decides for a replica cut off from the database without dying.",
            "results": m,
            "tables": [
                {
                    "title": "Challenges at a firm's scale",
                    "columns": ["what", "size", "time", "target", "met"],
                    "rows": rows,
                }
            ],
        },
    )


if __name__ == "__main__":
    main()
