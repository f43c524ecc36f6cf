"""Market's resident memory under load (issue 27, item 7): what its pod limit is set from.

    python -m bench.market_memory [--subscribers 200] [--seconds 120]

A stack of auth and market on a fresh database (history backfilled at start, as a first
`make run`), then `--subscribers` gRPC price streams of every symbol held for `--seconds` while
market ticks every 0.5 s, records, and writes candles; market's RSS sampled every second.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import grpc
import psutil
from tradesense.market.v1 import market_pb2, market_pb2_grpc

from bench.report import git_rev, save
from devstack.stack import Stack, StackConfig

MIB = 2**20


async def subscribe(addr: str, n: int, seconds: float, rss: list[float], proc: psutil.Process) -> int:
    received = 0

    async def one(stub: market_pb2_grpc.MarketServiceStub) -> None:
        nonlocal received
        call = stub.StreamPrices(market_pb2.StreamPricesRequest())
        try:
            async for _ in call:
                received += 1
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass

    async with grpc.aio.insecure_channel(addr) as ch:
        stub = market_pb2_grpc.MarketServiceStub(ch)
        tasks = [asyncio.create_task(one(stub)) for _ in range(n)]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rss.append(proc.memory_info().rss / MIB)
            await asyncio.sleep(1.0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return received


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=120)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cfg = StackConfig.ephemeral(
            Path(d),
            services=("auth", "market"),
            with_gateway=False,
            env={"LOG_LEVEL": "WARNING", "ANONYMOUS_STREAMS_PER_ADDRESS": "0", "ANONYMOUS_STREAMS_TOTAL": "0"},
        )
        with Stack(cfg) as stack:
            proc = psutil.Process(stack.procs["market"].pid)
            started = proc.memory_info().rss / MIB
            rss: list[float] = []
            received = asyncio.run(subscribe(stack.grpc_addr("market"), args.subscribers, args.seconds, rss, proc))
            idle = proc.memory_info().rss / MIB
    peak = max(rss)
    row = [f"{args.subscribers} streams, {args.seconds:g} s", f"{started:.0f}", f"{peak:.0f}", f"{idle:.0f}", received]
    print(row)
    save(
        "market_memory",
        {
            "command": f"python -m bench.market_memory --subscribers {args.subscribers} --seconds {args.seconds:g}",
            "commit": git_rev(),
            "notes": "Market's RSS (psutil, every second) on a fresh database: after start-up (history backfilled, "
            "calendars built), the peak while the streams were held, and after they closed. The pod's limit "
            "(k8s/base/market.yaml, 512 Mi) is set from the peak with headroom. Before issue 27 market held "
            "534–589 MB in `make run`: exchange-calendars built minute indexes for 20 years of four calendars "
            "(≈350 MB); now about a year either side of today (≈22 MB).",
            "results": {"rss_started_mib": started, "rss_peak_mib": peak, "rss_after_mib": idle, "messages": received},
            "tables": [
                {
                    "title": "Market RSS (MiB)",
                    "columns": ["load", "after start-up", "peak", "after", "messages received"],
                    "rows": [row],
                }
            ],
        },
    )


if __name__ == "__main__":
    main()
