"""The recorder's pending buffer is bounded: while the database is down ticks pile up to a cap,
past which the oldest are dropped and counted, and a failed flush loses nothing below it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.market import recording
from services.market.domain.instruments import BY_SYMBOL
from services.market.domain.ticks import Tick
from services.market.recording import Recorder

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def tick(i: int, symbol: str = "EURUSD") -> Tick:
    bid = Decimal("1.07000") + Decimal(i) / 100000
    return Tick(symbol, bid, bid + Decimal("0.00010"), T0 + timedelta(milliseconds=i), "simulated")


def recorder(cap: int, monkeypatch: pytest.MonkeyPatch, fail: list[bool]) -> tuple[Recorder, list[Any]]:
    written: list[Any] = []
    rec = Recorder(cast(AsyncEngine, None), BY_SYMBOL, keep_days=7, max_pending=cap)
    rec.session_id = 1

    async def write(rows: list[Any], count: int, last: datetime) -> None:
        if fail and fail.pop(0):
            raise ConnectionError("database down")
        written.extend(rows)

    async def prune(today: Any) -> None:
        return None

    monkeypatch.setattr(rec, "_write", write)
    monkeypatch.setattr(rec, "_prune", prune)
    return rec, written


def dropped() -> float:
    return recording.DROPPED._value.get()  # type: ignore[attr-defined]


def bids(rows: list[Any]) -> list[int]:
    return [b for r in rows for b in r[4]]


async def test_past_the_cap_the_oldest_ticks_are_dropped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    rec, written = recorder(5, monkeypatch, [])
    before = dropped()
    for i in range(8):
        rec.record(tick(i))
    assert rec.pending == 5
    assert dropped() - before == 3
    assert await rec.flush() == 5
    assert bids(written) == [107003, 107004, 107005, 107006, 107007]  # the newest five, in order
    assert rec.pending == 0


async def test_a_failed_flush_keeps_its_ticks_before_the_newer_ones_within_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec, written = recorder(5, monkeypatch, [True])
    before = dropped()
    for i in range(3):
        rec.record(tick(i))
    rec.record(tick(3, "GBPUSD"))
    with pytest.raises(ConnectionError):
        await rec.flush()
    assert rec.pending == 4 and dropped() == before  # nothing lost below the cap
    for i in range(4, 6):
        rec.record(tick(i))
    assert rec.pending == 5 and dropped() - before == 1  # one over: EURUSD's oldest went
    assert await rec.flush() == 5
    by_symbol = {r[1]: r[4] for r in written}
    assert by_symbol == {"EURUSD": [107001, 107002, 107004, 107005], "GBPUSD": [107003]}
