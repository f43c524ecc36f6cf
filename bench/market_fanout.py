"""Price fan-out: ticks published by the market service reach 1,000 concurrent subscribers.

The driver sets a scripted price R times a second (the admin-only source; every call is a
new upstream tick) and N subscribers follow the symbol, over gRPC straight to market and
over SSE through Envoy. Latency is receive time minus the tick's own timestamp (same
clock). Under overload prices are coalesced (keep-latest), so "delivered" can be below
published × N while every subscriber still sees the newest price (and above it by the
scripted source's heartbeat, which re-publishes the pinned price every MARKET_TICK_INTERVAL).

The delivery path is measured apart from the clients' CPU: the subscribers run in a process
of their own pinned to one core, market, Envoy, PostgreSQL and the driver on the other
(devstack.cpus); each process's CPU seconds over the run give its cost per delivered message
and show whether either core was saturated.

    python -m bench.market_fanout [--subscribers 1000] [--rate 10] [--seconds 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import tempfile
import time
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path

import grpc
import httpx
from tradesense.market.v1 import market_pb2, market_pb2_grpc

from bench.report import cpu_by_process, git_rev, median_of, percentile, save
from devstack import cpus
from devstack.stack import Stack, StackConfig

SYMBOL = "XAUUSD"


async def _driver(stack: Stack, token: str, rate: float, seconds: float) -> int:
    md = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(stack.grpc_addr("market")) as ch:
        stub = market_pb2_grpc.MarketServiceStub(ch)
        n = int(rate * seconds)
        start = time.perf_counter()
        for i in range(n):
            bid = Decimal("2000.00") + Decimal(i % 50000) / 100
            await stub.SetPrice(
                market_pb2.SetPriceRequest(symbol=SYMBOL, bid=str(bid), ask=str(bid + Decimal("0.30"))), metadata=md
            )
            delay = start + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        return n


async def _grpc_subscriber(
    channel: grpc.aio.Channel, latencies: list[float], ready: asyncio.Event, counter: list[int], stop: asyncio.Event
) -> None:
    stub = market_pb2_grpc.MarketServiceStub(channel)
    call = stub.StreamPrices(market_pb2.StreamPricesRequest(symbols=[SYMBOL]))
    first = True
    try:
        async for price in call:
            if first:
                first = False
                counter[0] += 1
                if counter[0] >= counter[1]:
                    ready.set()
                continue
            if price.provider == "scripted" and not stop.is_set():
                latencies.append(time.time() - price.time.ToDatetime().timestamp() - 0.0)
    except (grpc.aio.AioRpcError, asyncio.CancelledError):
        pass


async def _sse_subscriber(
    host: str, port: int, latencies: list[float], ready: asyncio.Event, counter: list[int], stop: asyncio.Event
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET /api/market/stream?symbols={SYMBOL} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()  # noqa: E501
    )
    await writer.drain()
    first = True
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            if not line.startswith(b"data:"):
                continue
            if first:
                first = False
                counter[0] += 1
                if counter[0] >= counter[1]:
                    ready.set()
                continue
            if stop.is_set():
                continue
            price = json.loads(line[5:])
            if price["provider"] == "scripted":
                from datetime import datetime

                t = datetime.fromisoformat(price["time"].replace("Z", "+00:00")).timestamp()
                latencies.append(time.time() - t)
    except (asyncio.CancelledError, ConnectionError):
        pass
    finally:
        writer.close()


def _subscribers_main(transport: str, n: int, grpc_addr: str, port: int, conn: Connection) -> None:
    """The load clients, in a process of their own (on a core of their own): they connect,
    say "ready", count latencies until told "stop", and send them back."""
    asyncio.run(_subscribers(transport, n, grpc_addr, port, conn))


async def _subscribers(transport: str, n: int, grpc_addr: str, port: int, conn: Connection) -> None:
    latencies: list[float] = []
    ready = asyncio.Event()
    stop = asyncio.Event()
    counter = [0, n]
    channels: list[grpc.aio.Channel] = []
    if transport == "grpc":
        channels = [grpc.aio.insecure_channel(grpc_addr) for _ in range(8)]
        tasks = [
            asyncio.create_task(_grpc_subscriber(channels[i % 8], latencies, ready, counter, stop)) for i in range(n)
        ]
    else:
        tasks = []
        for _ in range(n):
            tasks.append(asyncio.create_task(_sse_subscriber("127.0.0.1", port, latencies, ready, counter, stop)))
            await asyncio.sleep(0)  # pace the connects
    # Everyone subscribed (got the current price) before the clock starts.
    await asyncio.wait_for(ready.wait(), 120)
    loop = asyncio.get_running_loop()
    conn.send("ready")
    cpu0 = time.process_time()
    await loop.run_in_executor(None, conn.recv)  # "stop"
    stop.set()
    cpu = time.process_time() - cpu0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for ch in channels:
        await ch.close()
    conn.send((latencies, cpu))


async def one_run(stack: Stack, token: str, transport: str, n: int, rate: float, seconds: float) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_subscribers_main, args=(transport, n, stack.grpc_addr("market"), stack.cfg.gateway_port, child)
    )
    proc.start()
    try:
        cpus.place(stack, also=[proc.pid])  # the clients' CPU apart from the delivery path's
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(None, parent.recv) != "ready":
            raise RuntimeError("subscribers did not start")
        cpu0 = _cpu(stack)
        t0 = time.perf_counter()
        published = await _driver(stack, token, rate, seconds)
        await asyncio.sleep(1.0)  # let the last ticks land
        elapsed = time.perf_counter() - t0
        cpu1 = _cpu(stack)
        parent.send("stop")
        latencies, client_cpu = await loop.run_in_executor(None, parent.recv)
    finally:
        cpus.place(stack)
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    ms = [x * 1000 for x in latencies]
    delivered = max(1, len(ms))
    return {
        "published": published,
        "delivered": len(ms),
        "delivered_per_s": len(ms) / elapsed,
        "delivered_ratio": len(ms) / max(1, published * n),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "market_us_per_msg": (cpu1["market"] - cpu0["market"]) / delivered * 1e6,
        "envoy_us_per_msg": (cpu1["envoy"] - cpu0["envoy"]) / delivered * 1e6,
        "server_core_busy": sum(cpu1[k] - cpu0[k] for k in cpu1) / elapsed,
        "client_core_busy": client_cpu / elapsed,
    }


def _cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of the delivery path's processes."""
    by_role = cpu_by_process(stack)
    return {role: sum(by_role[role].values()) for role in ("market", "envoy")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        with Stack(
            StackConfig.ephemeral(
                Path(d),
                services=("auth", "market"),
                env={
                    "MARKET_TICK_INTERVAL": "5",
                    "LOG_LEVEL": "WARNING",
                    # A thousand subscribers from one address, on purpose: no anonymous cap here.
                    "ANONYMOUS_STREAMS_PER_ADDRESS": "0",
                    "ANONYMOUS_STREAMS_TOTAL": "0",
                },
            )
        ) as stack:
            r = httpx.post(
                f"{stack.gateway_url}/api/auth/login",
                json={"email": stack.admin_email, "password": stack.admin_password},
                timeout=10,
            )
            token = r.json()["access_token"]
            # A first scripted price, so subscribers get a current price even when the
            # symbol's market is closed (weekends).
            asyncio.run(_driver(stack, token, 1, 1))
            rows = []
            results = {}
            for transport in ("grpc", "sse"):
                runs = [
                    asyncio.run(one_run(stack, token, transport, args.subscribers, args.rate, args.seconds))
                    for _ in range(args.runs)
                ]
                m = median_of(runs)
                results[transport] = m
                rows.append(
                    [
                        "gRPC → market" if transport == "grpc" else "SSE via Envoy",
                        args.subscribers,
                        f"{args.rate:g}",
                        f"{m['delivered_per_s']:.0f}",
                        f"{m['delivered_ratio']:.1%}",
                        f"{m['p50_ms']:.1f}",
                        f"{m['p99_ms']:.1f}",
                        f"{m['market_us_per_msg']:.1f}",
                        f"{m['envoy_us_per_msg']:.1f}",
                        f"{m['server_core_busy']:.0%}",
                        f"{m['client_core_busy']:.0%}",
                    ]
                )
                print(transport, m, flush=True)
    save(
        "market_fanout",
        {
            "command": f"python -m bench.market_fanout --subscribers {args.subscribers} --rate {args.rate:g} "
            f"--seconds {args.seconds:g} --runs {args.runs}",
            "commit": git_rev(),
            "notes": "Upstream ticks/s = rate; delivered = messages received by all subscribers. Latency: tick "
            "timestamp (set by market when published) to receipt by the subscriber, same host clock. "
            "The subscribers run in a process of their own on one core; market, Envoy, PostgreSQL and "
            "the driver on the other (devstack.cpus), so the clients' CPU is apart from the delivery "
            "path's. Delivered can exceed published×N by the scripted heartbeat's re-publishes.",
            "results": results,
            "tables": [
                {
                    "title": "Fan-out of one symbol's ticks",
                    "columns": [
                        "transport",
                        "subscribers",
                        "ticks/s in",
                        "messages/s delivered",
                        "delivered of published×N",
                        "p50 ms",
                        "p99 ms",
                        "market µs CPU/msg",
                        "Envoy µs CPU/msg",
                        "delivery core busy (market+Envoy)",
                        "client core busy",
                    ],
                    "rows": rows,
                }
            ],
        },
    )


if __name__ == "__main__":
    main()
