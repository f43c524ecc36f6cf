"""The event-stream bytes a browser's EventSource reads: retry first, id and event on every
event, a heartbeat comment while the source is quiet, the end marker last."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from tradesense.market.v1 import market_pb2

from services.common import sse
from services.common.errors import ServiceError


async def collect(events: AsyncIterator[sse.Event], heartbeat: float) -> list[str]:
    return [b.data.decode() async for b in sse.stream(events, heartbeat)]


async def test_events_are_framed_with_id_and_type_after_a_retry_hint() -> None:
    async def source() -> AsyncIterator[sse.Event]:
        yield sse.Event("price", market_pb2.Price(symbol="EURUSD", bid="1.07214"), id=7)
        yield sse.END

    chunks = await collect(source(), heartbeat=5)
    assert chunks[0] == f"retry: {sse.RETRY_MS}\n\n"
    assert chunks[1].startswith('id: 7\nevent: price\ndata: {"symbol": "EURUSD", "bid": "1.07214"')
    assert chunks[1].endswith("}\n\n") and "\n" not in chunks[1][:-2].split("data: ")[1]
    assert chunks[2] == "event: end\ndata: {}\n\n"


async def test_a_quiet_source_gets_heartbeats_and_nothing_is_lost_across_them() -> None:
    release = asyncio.Event()
    closed = []

    async def source() -> AsyncIterator[sse.Event]:
        try:
            await release.wait()
            yield sse.Event("price", market_pb2.Price(symbol="BTCUSD"), id=1)
        finally:
            closed.append(True)

    async def later() -> None:
        await asyncio.sleep(0.35)
        release.set()

    task = asyncio.create_task(later())
    chunks = await collect(source(), heartbeat=0.1)
    await task
    beats = [c for c in chunks if c == ": heartbeat\n\n"]
    assert len(beats) >= 2
    assert [c.split("\n")[0] for c in chunks if c.startswith("id:")] == ["id: 1"]
    assert closed == [True]  # the source's clean-up ran when the stream ended


def context(*metadata: tuple[str, str]) -> SimpleNamespace:
    return SimpleNamespace(invocation_metadata=lambda: metadata)


def test_a_reconnect_resumes_after_the_last_event_id_or_the_cursor_whichever_is_later() -> None:
    assert sse.resume_after(context(), 5) == 5
    assert sse.resume_after(context(("last-event-id", "42")), 5) == 42
    assert sse.resume_after(context(("last-event-id", "3")), 5) == 5
    with pytest.raises(ServiceError):
        sse.resume_after(context(("last-event-id", "abc")), 0)
