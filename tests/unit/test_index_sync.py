"""What a replica keeps indexed is its share of the partitions, whether or not its lease is
certain this second: a renewal late past its margin stops judging, never drops the share."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

from sqlalchemy.ext.asyncio import AsyncEngine

from services.challenges import simulate
from services.challenges.domain import engine
from services.challenges.domain.engine import Account
from services.challenges.domain.marking import MarkIndex
from services.challenges.domain.packs import FTMO_2STEP
from services.challenges.domain.session import Session
from services.challenges.index_sync import IndexSync
from services.common.partition_leases import Leases, partition_of

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def _session() -> Session:
    r = FTMO_2STEP.rules_for(1, Decimal("100000.00"))
    s = Session(r, Account.new(r.initial_balance), simulate.specs())
    engine.start(s.account, r, NOW)
    return s


def test_a_lapsed_lease_stops_handling_but_keeps_the_share() -> None:
    cid = uuid.uuid4()
    leases = Leases(cast(AsyncEngine, None), "replica-a")
    leases.owned = {partition_of(cid)}  # our share, but the lease not renewed in time
    assert leases.holds(cid) and not leases.owns(cid)
    sync = IndexSync(MarkIndex(), leases.holds)
    sync.refresh(cid, uuid.uuid4(), _session(), version=1)
    assert cid in sync.clock_due and cid in sync.index.slot_of  # still indexed, judged once renewed


def test_a_challenge_of_another_share_is_not_indexed() -> None:
    cid = uuid.uuid4()
    sync = IndexSync(MarkIndex(), lambda c: False)
    sync.refresh(cid, uuid.uuid4(), _session(), version=1)
    assert cid not in sync.clock_due
