"""Vectorised mark-to-market: which challenges does this tick put at or past a limit?

Positions are indexed by symbol; one tick touches only the arrays of its symbol, so
its cost is proportional to the positions in that symbol, not to all challenges. The
index works in float64 and only *selects candidates* (with a cent of margin): the
exact Decimal engine then judges each candidate, so money decisions stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MARGIN = 0.01  # float candidates within a cent of a level are judged exactly


@dataclass
class _SymbolBook:
    slots: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    qty: np.ndarray = field(default_factory=lambda: np.empty(0))
    avg: np.ndarray = field(default_factory=lambda: np.empty(0))
    value: np.ndarray = field(default_factory=lambda: np.empty(0))  # contract size × conversion rate
    stop: np.ndarray = field(default_factory=lambda: np.empty(0))  # nan when unset
    take: np.ndarray = field(default_factory=lambda: np.empty(0))
    last_u: np.ndarray = field(default_factory=lambda: np.empty(0))


class MarkIndex:
    def __init__(self, capacity: int = 1024) -> None:
        self.ids: list[object] = []
        self.slot_of: dict[object, int] = {}
        self.balance = np.zeros(capacity)
        self.unreal = np.zeros(capacity)
        self.floor = np.full(capacity, -np.inf)  # equity at or below: a limit breaks
        self.warn = np.full(capacity, -np.inf)  # equity at or below: a warning is due
        self.peak = np.zeros(capacity)  # intraday peak equity (trailing intraday)
        self.trail = np.zeros(capacity, bool)  # floor follows the intraday peak
        self.trail_loss = np.zeros(capacity)
        self.trail_lock = np.full(capacity, np.inf)
        self.books: dict[str, _SymbolBook] = {}

    def _slot(self, cid: object) -> int:
        s = self.slot_of.get(cid)
        if s is None:
            s = len(self.ids)
            if s >= len(self.balance):
                for name in ("balance", "unreal", "floor", "warn", "peak", "trail", "trail_loss", "trail_lock"):
                    arr = getattr(self, name)
                    fill = {"floor": -np.inf, "warn": -np.inf, "trail_lock": np.inf}.get(name, 0)
                    grown = np.full(len(arr) * 2, fill, dtype=arr.dtype)
                    grown[: len(arr)] = arr
                    setattr(self, name, grown)
            self.ids.append(cid)
            self.slot_of[cid] = s
        return s

    def set_account(
        self,
        cid: object,
        *,
        balance: float,
        floor: float,
        warn: float,
        peak: float,
        trailing: bool = False,
        trail_loss: float = 0.0,
        trail_lock: float = np.inf,
    ) -> None:
        s = self._slot(cid)
        self.balance[s], self.floor[s], self.warn[s], self.peak[s] = balance, floor, warn, peak
        self.trail[s], self.trail_loss[s], self.trail_lock[s] = trailing, trail_loss, trail_lock

    def set_positions(self, cid: object, positions: list[tuple[str, float, float, float, float, float]]) -> None:
        """Replace a challenge's positions: (symbol, qty, avg, value, stop, take)."""
        s = self._slot(cid)
        for book in self.books.values():  # drop the old rows of this challenge
            keep = book.slots != s
            if not keep.all():
                for name in ("slots", "qty", "avg", "value", "stop", "take", "last_u"):
                    setattr(book, name, getattr(book, name)[keep])
        self.unreal[s] = 0.0
        for sym, qty, avg, value, stop, take in positions:
            b = self.books.setdefault(sym, _SymbolBook())
            b.slots = np.append(b.slots, s)
            b.qty = np.append(b.qty, qty)
            b.avg = np.append(b.avg, avg)
            b.value = np.append(b.value, value)
            b.stop = np.append(b.stop, stop)
            b.take = np.append(b.take, take)
            b.last_u = np.append(b.last_u, 0.0)

    def remove(self, cid: object) -> None:
        if cid in self.slot_of:
            self.set_positions(cid, [])
            s = self.slot_of[cid]
            self.floor[s] = self.warn[s] = -np.inf

    def load_book(self, symbol: str, slots: np.ndarray, qty: np.ndarray, avg: np.ndarray, value: np.ndarray) -> None:
        """Bulk load (benchmarks, start-up): one symbol's rows at once."""
        n = len(slots)
        self.books[symbol] = _SymbolBook(slots, qty, avg, value, np.full(n, np.nan), np.full(n, np.nan), np.zeros(n))

    def on_price(self, symbol: str, bid: float, ask: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply a tick; return the slots that (breach-or-stop, warn) candidates, and all touched slots."""
        b = self.books.get(symbol)
        if b is None or len(b.slots) == 0:
            empty = np.empty(0, np.int64)
            return empty, empty, empty
        long = b.qty > 0
        mark = np.where(long, bid, ask)
        u = b.qty * (mark - b.avg) * b.value
        self.unreal[b.slots] += u - b.last_u  # one net position per symbol: slots are unique here
        b.last_u = u
        s = b.slots
        equity = self.balance[s] + self.unreal[s]
        trailing = self.trail[s]
        if trailing.any():
            self.peak[s] = np.maximum(self.peak[s], equity)
            tf = np.minimum(self.peak[s] - self.trail_loss[s], self.trail_lock[s])
            self.floor[s] = np.where(trailing, np.maximum(self.floor[s], tf), self.floor[s])
        stop_hit = np.where(long, mark <= b.stop, mark >= b.stop)
        take_hit = np.where(long, mark >= b.take, mark <= b.take)  # comparisons with nan are False
        judge = (equity <= self.floor[s] + MARGIN) | stop_hit | take_hit
        warn = ~judge & (equity <= self.warn[s] + MARGIN)
        return s[judge], s[warn], s

    def equity(self, slots: np.ndarray) -> np.ndarray:
        return self.balance[slots] + self.unreal[slots]

    def full_revaluation(self, prices: dict[str, tuple[float, float]]) -> np.ndarray:
        """Recompute every challenge's floating P&L from scratch; returns breach candidates."""
        self.unreal[:] = 0.0
        for sym, b in self.books.items():
            if sym not in prices or len(b.slots) == 0:
                continue
            bid, ask = prices[sym]
            mark = np.where(b.qty > 0, bid, ask)
            b.last_u = b.qty * (mark - b.avg) * b.value
            np.add.at(self.unreal, b.slots, b.last_u)
        n = len(self.ids) if self.ids else len(self.balance)
        equity = self.balance[:n] + self.unreal[:n]
        return np.nonzero(equity <= self.floor[:n] + MARGIN)[0]
