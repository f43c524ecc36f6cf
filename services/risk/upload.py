"""A trades CSV streamed in chunks (AnalyzeTrades): split into lines, parsed batch by batch.

Linear in the body for any chunking: a chunk is split on its own newlines and only the
unfinished line's bytes are carried over (appended to a buffer, never re-copied with every
chunk: joining the carried line to each new chunk cost time quadratic in a line's length —
32 MiB without a newline took 27 s of CPU). A line longer than MAX_LINE_BYTES is refused as
soon as it is seen, and every parser error is a BadInput with a bounded message.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterable

import pandas as pd

from services.risk.domain.metrics import TradeAccumulator
from services.risk.metrics import BadInput, _chunk_arrays

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024
FLUSH_ROWS = 100_000
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
    """Header first, then rows in batches of FLUSH_ROWS into one TradeAccumulator."""

    def __init__(self) -> None:
        self.acc = TradeAccumulator()
        self.header: str | None = None
        self._rows: list[bytes] = []

    def add(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if not line.strip():
            return
        if self.header is None:
            self.header = line.decode("utf-8", "replace")
            cols = [c.strip() for c in self.header.split(",")]
            if "closed_at" not in cols or "pnl" not in cols:
                raise BadInput("the header must name closed_at and pnl")
            return
        self._rows.append(line)
        if len(self._rows) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        assert self.header is not None
        text = self.header + "\n" + b"\n".join(self._rows).decode("utf-8", "replace")
        self._rows = []
        try:
            df = pd.read_csv(io.StringIO(text), dtype={"pnl": str, "closed_at": str})
            self.acc.add(*_chunk_arrays(df))
        except BadInput as exc:
            raise BadInput(bounded(str(exc))) from None
        except (ValueError, TypeError, OverflowError, pd.errors.ParserError) as exc:
            raise BadInput(bounded(f"not a trades CSV: {exc}")) from None


async def read(chunks: AsyncIterable[bytes]) -> TradeAccumulator:
    """The accumulated trades of a streamed CSV body; BadInput for anything malformed."""
    lines, csv = LineSplitter(), TradesCsv()
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > MAX_UPLOAD_BYTES:
            raise BadInput(f"at most {MAX_UPLOAD_BYTES // 2**20} MiB")
        for line in lines.feed(chunk):
            csv.add(line)
    csv.add(lines.end())
    if csv.header is None:
        raise BadInput("empty upload: expected CSV with a closed_at,pnl header")
    csv.flush()
    return csv.acc
