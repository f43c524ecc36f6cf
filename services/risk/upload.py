"""A trades CSV streamed in chunks (AnalyzeTrades): split into lines, parsed batch by batch.

Linear in the body for any chunking: a chunk is split on its own newlines and only the
unfinished line's bytes are carried over (appended to a buffer, never re-copied with every
chunk: joining the carried line to each new chunk cost time quadratic in a line's length —
32 MiB without a newline took 27 s of CPU). A line longer than MAX_LINE_BYTES is refused as
soon as it is seen, and every parser error is a BadInput with a bounded message.

Bounded in memory (issue 26): rows are parsed in batches of at most FLUSH_ROWS rows *or*
FLUSH_BYTES bytes, whichever comes first (100,000 rows of 64 KiB lines once meant 6 GiB held
and copied), the body is capped (RISK_UPLOAD_MAX_MIB, 32 by default), symbols are at most
MAX_SYMBOL characters and MAX_SYMBOLS distinct, and each batch is parsed in a worker thread so
the event loop keeps serving everyone else meanwhile.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterable

import numpy as np
import pandas as pd

from services.risk.domain.metrics import TradeAccumulator
from services.risk.metrics import BadInput, _chunk_arrays

MAX_UPLOAD_BYTES = 32 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024
FLUSH_ROWS = 100_000
FLUSH_BYTES = 4 * 1024 * 1024
MAX_SYMBOLS = 1_000
MAX_SYMBOL = 32
MAX_MESSAGE = 200  # characters of a parser's message quoted back


def bounded(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "…"


class LineSplitter:
    """The complete lines of a byte stream fed in chunks of any size."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self._rest = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        parts = chunk.split(b"\n")
        self._rest += parts[0]
        if len(parts) == 1:
            self._check(len(self._rest))
            return []
        lines = [bytes(self._rest), *parts[1:-1]]
        self._rest = bytearray(parts[-1])
        for line in lines:
            self._check(len(line))
        self._check(len(self._rest))
        return lines

    def end(self) -> bytes:
        """What is left after the last newline (the last line, when the body has no final one)."""
        rest, self._rest = bytes(self._rest), bytearray()
        return rest

    def _check(self, length: int) -> None:
        if length > self.max_line:
            raise BadInput(f"a line is longer than {self.max_line // 1024} KiB")


class TradesCsv:
    """Header first, then rows in batches (FLUSH_ROWS rows or FLUSH_BYTES bytes) into one
    TradeAccumulator."""

    def __init__(self, flush_rows: int = FLUSH_ROWS, flush_bytes: int = FLUSH_BYTES) -> None:
        self.acc = TradeAccumulator()
        self.header: str | None = None
        self.flush_rows, self.flush_bytes = flush_rows, flush_bytes
        self._rows: list[bytes] = []
        self._bytes = 0

    def add(self, line: bytes) -> bool:
        """Take a line; True when a batch is full and should be flushed."""
        line = line.rstrip(b"\r")
        if not line.strip():
            return False
        if self.header is None:
            self.header = line.decode("utf-8", "replace")
            cols = [c.strip() for c in self.header.split(",")]
            if "closed_at" not in cols or "pnl" not in cols:
                raise BadInput("the header must name closed_at and pnl")
            return False
        self._rows.append(line)
        self._bytes += len(line) + 1
        return len(self._rows) >= self.flush_rows or self._bytes >= self.flush_bytes

    def take_batch(self) -> list[bytes]:
        rows, self._rows, self._bytes = self._rows, [], 0
        return rows

    def parse(self, rows: list[bytes]) -> None:
        """Parse a batch into the accumulator (CPU-bound: run it off the event loop)."""
        if not rows:
            return
        assert self.header is not None
        text = self.header + "\n" + b"\n".join(rows).decode("utf-8", "replace")
        del rows
        try:
            df = pd.read_csv(io.StringIO(text), dtype={"pnl": str, "closed_at": str, "symbol": str})
            del text
            days, cents, symbols = _chunk_arrays(df)
            del df
            if symbols is not None:
                _check_symbols(symbols, self.acc)
            self.acc.add(days, cents, symbols)
        except BadInput as exc:
            raise BadInput(bounded(str(exc))) from None
        except (ValueError, TypeError, OverflowError, pd.errors.ParserError) as exc:
            raise BadInput(bounded(f"not a trades CSV: {exc}")) from None


def _check_symbols(symbols: np.ndarray, acc: TradeAccumulator) -> None:
    """A symbol is a short name, and an upload names a bounded number of them: per-symbol
    statistics are kept for each, so a million 64 KiB "symbols" must not fit."""
    distinct = np.unique(symbols)
    if len(distinct) and max(len(str(s)) for s in distinct) > MAX_SYMBOL:
        raise BadInput(f"a symbol is longer than {MAX_SYMBOL} characters")
    if len(set(acc.symbols) | {str(s) for s in distinct}) > MAX_SYMBOLS:
        raise BadInput(f"at most {MAX_SYMBOLS} distinct symbols")


async def read(
    chunks: AsyncIterable[bytes], max_bytes: int = MAX_UPLOAD_BYTES, flush_bytes: int = FLUSH_BYTES
) -> TradeAccumulator:
    """The accumulated trades of a streamed CSV body; BadInput for anything malformed."""
    lines, csv = LineSplitter(), TradesCsv(flush_bytes=flush_bytes)
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise BadInput(f"at most {max_bytes // 2**20} MiB")
        for line in lines.feed(chunk):
            if csv.add(line):
                await asyncio.to_thread(csv.parse, csv.take_batch())
    csv.add(lines.end())
    if csv.header is None:
        raise BadInput("empty upload: expected CSV with a closed_at,pnl header")
    await asyncio.to_thread(csv.parse, csv.take_batch())
    return csv.acc
