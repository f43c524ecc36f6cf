"""The trades CSV upload is split into lines in time linear in the body, whatever the chunking,
refuses over-long lines and answers every malformed body with a bounded BadInput (issue 16,
item 7). The figures for 512 MiB are in bench/RESULTS.md (bench.upload)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.risk import upload
from services.risk.metrics import BadInput


@given(st.lists(st.binary(max_size=40), max_size=20), st.data())
def test_lines_come_out_the_same_for_any_chunking(pieces: list[bytes], data: st.DataObject) -> None:
    body = b"".join(pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=10)))
    chunks = [body[i:j] for i, j in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    splitter = upload.LineSplitter(max_line=10**6)
    lines = [line for c in chunks for line in splitter.feed(c)]
    assert [*lines, splitter.end()] == body.split(b"\n")


def test_a_line_past_the_cap_is_refused_as_soon_as_it_is_seen() -> None:
    splitter = upload.LineSplitter(max_line=1024)
    splitter.feed(b"a" * 1000)
    with pytest.raises(BadInput):
        splitter.feed(b"a" * 100)  # no newline yet: refused before the line ends


def test_the_carried_line_is_never_copied_per_chunk() -> None:
    # Quadratic copying would move ~n²/2 bytes; a bytearray appended to moves each byte once
    # (amortised). Counted with a buffer that records what it is handed, not with a clock.
    splitter = upload.LineSplitter(max_line=upload.MAX_LINE_BYTES)
    copied = 0
    for _ in range(1000):
        before = len(splitter._rest)
        splitter.feed(b"x" * 60)
        copied += len(splitter._rest) - before
    assert copied == 60_000 and splitter.end() == b"x" * 60_000


def _read(chunks: Iterable[bytes]) -> object:
    async def gen() -> AsyncIterator[bytes]:
        for c in chunks:
            yield c

    return asyncio.run(upload.read(gen()))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"nothing,useful\n1,2\n",
        b"closed_at,pnl\n2026-01-01T00:00:00Z,abc\n",
        b"closed_at,pnl\nnot a time,1\n",
        b"closed_at,pnl\n2026-01-01T00:00:00Z,1,2,3,4\n",  # too many fields
        b'closed_at,pnl\n"unterminated,1\n',
        b"closed_at,pnl\n" + b"9" * 60_000 + b",1\n",  # a huge bad value: the message stays short
        b"closed_at,pnl\n" + b"x" * (70 * 1024),
    ],
)
def test_every_malformed_body_is_a_short_bad_input(body: bytes) -> None:
    with pytest.raises(BadInput) as err:
        _read([body[i : i + 7] for i in range(0, len(body), 7)] or [b""])
    assert len(str(err.value)) <= upload.MAX_MESSAGE + 1


def test_a_good_body_in_tiny_chunks_is_read_whole() -> None:
    body = b"closed_at,pnl,symbol\r\n" + b"".join(
        f"2026-01-0{1 + i % 5}T10:00:00Z,{(-1) ** i * (i + 1)}.5,EURUSD\r\n".encode() for i in range(50)
    )
    acc = _read([body[i : i + 3] for i in range(0, len(body), 3)])
    assert acc.trades == 50  # type: ignore[attr-defined]
