"""The challenges this process wrote last, kept so that their next order skips the read.

An order's write applies only at the version its state was computed from (ledger_sql._WRITE
checks it, and that no trade holds the order's idempotency key yet), so a cached state can
only be wrong by being old — changed since by the locked path, another replica or an
admin — and then the write changes nothing and the order is recomputed on a fresh read.
An entry is taken out while an order uses it and put back only once that order's write
applied: a state that an order changed but did not write (refused, stale, or handed to the
locked path) is never used again.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter

from services.challenges.domain.session import Session

STATE_SOURCE = Counter(
    "challenges_order_states_total",
    "Where an order's challenge state came from: this process's last write, or a database read.",
    ("source",),
)
_HIT, _MISS = STATE_SOURCE.labels("cache"), STATE_SOURCE.labels("database")


class SessionCache:
    """At most `capacity` challenges, least recently written dropped first (0 turns it off)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[uuid.UUID, tuple[Mapping[str, Any], Session]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, cid: uuid.UUID, user_id: uuid.UUID) -> tuple[Mapping[str, Any], Session] | None:
        """The challenge's row and session as last written here, if `user_id` owns it; out of
        the cache until `put` back."""
        entry = self._entries.get(cid)
        if entry is None or entry[0]["user_id"] != user_id:
            _MISS.inc()
            return None  # someone else's challenge stays cached for its owner; the read refuses
        del self._entries[cid]
        _HIT.inc()
        return entry

    def put(self, cid: uuid.UUID, row: Mapping[str, Any], session: Session) -> None:
        """The state just written at `row["version"]`."""
        if self.capacity <= 0:
            return
        self._entries[cid] = (row, session)
        self._entries.move_to_end(cid)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def drop(self, cid: uuid.UUID) -> None:
        self._entries.pop(cid, None)
