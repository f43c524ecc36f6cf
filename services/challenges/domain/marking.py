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


_COLUMNS = ("slots", "qty", "avg", "value", "stop", "take", "last_u")


@dataclass
class _SymbolBook:
    """One symbol's rows in columns with spare capacity; rows [0, n) are live.

    An order replaces one challenge's row in place, appends into spare room or deletes by
    moving the last row into the hole: O(1) per row, never a copy of the whole book.
    """

    slots: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    qty: np.ndarray = field(default_factory=lambda: np.empty(0))
    avg: np.ndarray = field(default_factory=lambda: np.empty(0))
    value: np.ndarray = field(default_factory=lambda: np.empty(0))  # contract size × conversion rate
    stop: np.ndarray = field(default_factory=lambda: np.empty(0))  # nan when unset
    take: np.ndarray = field(default_factory=lambda: np.empty(0))
    last_u: np.ndarray = field(default_factory=lambda: np.empty(0))
    n: int = 0
    row_of: dict[int, int] = field(default_factory=dict)  # challenge slot -> row

    def upsert(self, slot: int, qty: float, avg: float, value: float, stop: float, take: float) -> None:
        row = self.row_of.get(slot)
        if row is None:
            if self.n == len(self.slots):
                cap = max(16, 2 * self.n)
                for name in _COLUMNS:
                    arr = getattr(self, name)
                    grown = np.empty(cap, arr.dtype)
                    grown[: self.n] = arr[: self.n]
                    setattr(self, name, grown)
            row = self.n
            self.n += 1
            self.row_of[slot] = row
            self.slots[row] = slot
        self.qty[row], self.avg[row], self.value[row] = qty, avg, value
        self.stop[row], self.take[row], self.last_u[row] = stop, take, 0.0

    def delete(self, slot: int) -> None:
        row = self.row_of.pop(slot, None)
        if row is None:
            return
        last = self.n - 1
        if row != last:
            for name in _COLUMNS:
                arr = getattr(self, name)
                arr[row] = arr[last]
            self.row_of[int(self.slots[row])] = row
        self.n = last


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
        self.held: dict[int, set[str]] = {}  # slot -> symbols it has a row in

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
        """Replace a challenge's positions: (symbol, qty, avg, value, stop, take).

        Touches only the books this challenge is or was in. Floating P&L restarts from the
        next tick of each symbol, as it does for a new position.
        """
        s = self._slot(cid)
        now_held = {p[0] for p in positions}
        for sym in self.held.get(s, set()) - now_held:
            self.books[sym].delete(s)
        self.unreal[s] = 0.0
        for sym, qty, avg, value, stop, take in positions:
            book = self.books.get(sym)
            if book is None:  # not setdefault: that built a book (seven arrays) per position
                book = self.books[sym] = _SymbolBook()
            book.upsert(s, qty, avg, value, stop, take)
        if now_held:
            self.held[s] = now_held
        else:
            self.held.pop(s, None)

    def remove(self, cid: object) -> None:
        if cid in self.slot_of:
            self.set_positions(cid, [])
            s = self.slot_of[cid]
            self.floor[s] = self.warn[s] = -np.inf

    def load_book(self, symbol: str, slots: np.ndarray, qty: np.ndarray, avg: np.ndarray, value: np.ndarray) -> None:
        """Bulk load (benchmarks, start-up): one symbol's rows at once."""
        n = len(slots)
        nan = np.full(n, np.nan)
        self.books[symbol] = _SymbolBook(
            slots, qty, avg, value, nan, nan.copy(), np.zeros(n), n, {int(x): i for i, x in enumerate(slots)}
        )
        for x in slots:
            self.held.setdefault(int(x), set()).add(symbol)

    def on_price(self, symbol: str, bid: float, ask: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply a tick; return the slots that (breach-or-stop, warn) candidates, and all touched slots."""
        b = self.books.get(symbol)
        if b is None or b.n == 0:
            empty = np.empty(0, np.int64)
            return empty, empty, empty
        n = b.n
        qty, s = b.qty[:n], b.slots[:n]
        long = qty > 0
        mark = np.where(long, bid, ask)
        u = qty * (mark - b.avg[:n]) * b.value[:n]
        self.unreal[s] += u - b.last_u[:n]  # one net position per symbol: slots are unique here
        b.last_u[:n] = u
        equity = self.balance[s] + self.unreal[s]
        trailing = self.trail[s]
        if trailing.any():
            self.peak[s] = np.maximum(self.peak[s], equity)
            tf = np.minimum(self.peak[s] - self.trail_loss[s], self.trail_lock[s])
            self.floor[s] = np.where(trailing, np.maximum(self.floor[s], tf), self.floor[s])
        stop, take = b.stop[:n], b.take[:n]
        stop_hit = np.where(long, mark <= stop, mark >= stop)
        take_hit = np.where(long, mark >= take, mark <= take)  # comparisons with nan are False
        judge = (equity <= self.floor[s] + MARGIN) | stop_hit | take_hit
        warn = ~judge & (equity <= self.warn[s] + MARGIN)
        return s[judge], s[warn], s

    def equity(self, slots: np.ndarray) -> np.ndarray:
        return self.balance[slots] + self.unreal[slots]

    def full_revaluation(self, prices: dict[str, tuple[float, float]]) -> np.ndarray:
        """Recompute every challenge's floating P&L from scratch; returns breach candidates."""
        self.unreal[:] = 0.0
        for sym, b in self.books.items():
            n = b.n
            if sym not in prices or n == 0:
                continue
            bid, ask = prices[sym]
            qty = b.qty[:n]
            mark = np.where(qty > 0, bid, ask)
            b.last_u[:n] = qty * (mark - b.avg[:n]) * b.value[:n]
            np.add.at(self.unreal, b.slots[:n], b.last_u[:n])
        n = len(self.ids) if self.ids else len(self.balance)
        equity = self.balance[:n] + self.unreal[:n]
        trailing = self.trail[:n]
        if trailing.any():  # a floor trailing peak equity moves with the new equity, as on a tick
            self.peak[:n] = np.where(trailing, np.maximum(self.peak[:n], equity), self.peak[:n])
            tf = np.minimum(self.peak[:n] - self.trail_loss[:n], self.trail_lock[:n])
            self.floor[:n] = np.where(trailing, np.maximum(self.floor[:n], tf), self.floor[:n])
        return np.nonzero(equity <= self.floor[:n] + MARGIN)[0]
