"""The mark-to-market index and the clock kept in step with what is committed: each live
challenge this replica owns has its account, positions and next clock moment indexed."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import Gauge

from services.challenges.domain import engine
from services.challenges.domain.engine import Account
from services.challenges.domain.marking import MarkIndex
from services.challenges.domain.rulepacks import Rules
from services.challenges.domain.session import OrderRejected, Session, Stops
from services.challenges.partitions import partition_of

ACTIVE_CHALLENGES = Gauge("challenges_active", "Challenges ACTIVE or PAUSED in this process's index.")


def index_account(index: MarkIndex, cid: object, a: Account, r: Rules) -> None:
    """The account's balance and levels in the mark index, as the engine puts them now."""
    warn = engine.warning_level(a, r)
    trail = r.intraday_trail()  # a floor that moves with every tick's equity
    index.set_account(
        cid,
        balance=float(a.balance),
        floor=float(engine.equity_floor(a, r)),
        warn=float(warn) if warn is not None else -math.inf,
        peak=float(a.max_equity_ever),
        trailing=trail is not None,
        trail_loss=float(trail[0]) if trail is not None else 0.0,
        trail_lock=float(trail[1]) if trail is not None and trail[1] is not None else math.inf,
    )


class IndexSync:
    def __init__(self, index: MarkIndex, holds: Callable[[uuid.UUID], bool]) -> None:
        self.index = index
        self.holds = holds  # the challenge's partition is this replica's share
        # When the clock must judge each live challenge next (a reset, a flat time, a deadline).
        self.clock_due: dict[uuid.UUID, datetime] = {}
        self.owner: dict[uuid.UUID, uuid.UUID] = {}
        self.indexed_version: dict[uuid.UUID, int] = {}

    def refresh(
        self, cid: uuid.UUID, uid: uuid.UUID, s: Session, version: int, clock_from: datetime | None = None
    ) -> None:
        """Index the challenge's committed state (`version`); its clock's next moment is the
        first after `clock_from` (default now): a takeover resumes the clock from when the old
        owner may have stopped judging, so a moment it missed is due at once."""
        # Orders commit without a lock held across the refresh: one that committed earlier
        # but resumes later must not overwrite a newer state.
        if version < self.indexed_version.get(cid, -1):
            return
        self.indexed_version[cid] = version
        a, r = s.account, s.rules
        if a.status not in (engine.ACTIVE, engine.PAUSED) or not self.holds(cid):
            self._forget(cid)
            return
        self.owner[cid] = uid
        index_account(self.index, cid, a, r)
        rows = []
        for sym, p in s.positions.items():
            if p.is_flat:
                continue
            try:
                rate = float(s.rate(sym))
            except OrderRejected:
                rate = 1.0
            st = s.stops.get(sym, Stops())
            rows.append(
                (
                    sym,
                    float(p.quantity),
                    float(p.avg_price),
                    float(s.specs[sym].contract_size) * rate,
                    float(st.stop_loss) if st.stop_loss is not None else math.nan,
                    float(st.take_profit) if st.take_profit is not None else math.nan,
                )
            )
        self.index.set_positions(cid, rows)
        if a.day is not None:
            self.clock_due[cid] = engine.next_instant(a, r, clock_from or datetime.now(UTC))
        ACTIVE_CHALLENGES.set(len(self.clock_due))

    def _forget(self, cid: uuid.UUID) -> None:
        # The version stays: an order that committed before the breach but refreshes after it
        # must not bring the ended challenge back into the index.
        self.owner.pop(cid, None)
        self.index.remove(cid)
        self.clock_due.pop(cid, None)
        ACTIVE_CHALLENGES.set(len(self.clock_due))

    def drop_partitions(self, lost: set[int]) -> None:
        """Forget the challenges of partitions another replica now owns."""
        for cid in [c for c in list(self.clock_due) if partition_of(c) in lost]:
            self.clock_due.pop(cid, None)
        for cid in [c for c in list(self.index.slot_of) if isinstance(c, uuid.UUID) and partition_of(c) in lost]:
            self.indexed_version.pop(cid, None)
            self.index.remove(cid)
        ACTIVE_CHALLENGES.set(len(self.clock_due))
