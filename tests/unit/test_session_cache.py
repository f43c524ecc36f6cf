"""The order path's cache of challenge states this process wrote last."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, cast

from services.challenges.domain.engine import Account
from services.challenges.domain.session import Session
from services.challenges.session_cache import SessionCache


def _state(owner: uuid.UUID) -> tuple[dict[str, Any], Session]:
    session = Session(cast(Any, None), Account.new(Decimal(100000)), {})
    return {"user_id": owner, "version": 1}, session


def test_a_state_is_lent_to_one_order_at_a_time_and_only_to_its_owner() -> None:
    cache = SessionCache(10)
    cid, owner = uuid.uuid4(), uuid.uuid4()
    row, session = _state(owner)
    cache.put(cid, row, session)
    assert cache.take(cid, uuid.uuid4()) is None  # a stranger reads the database (and is refused)
    assert cache.take(cid, owner) == (row, session)
    assert cache.take(cid, owner) is None  # out while an order uses it: the next one reads
    cache.put(cid, {**row, "version": 2}, session)  # back once its write applied
    taken = cache.take(cid, owner)
    assert taken is not None and taken[0]["version"] == 2


def test_a_dropped_state_is_read_again() -> None:
    cache = SessionCache(10)
    cid, owner = uuid.uuid4(), uuid.uuid4()
    cache.put(cid, *_state(owner))
    cache.drop(cid)
    cache.drop(cid)  # dropping what is not there is fine
    assert cache.take(cid, owner) is None


def test_the_least_recently_written_goes_first_and_zero_capacity_keeps_nothing() -> None:
    cache = SessionCache(2)
    owner = uuid.uuid4()
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.put(a, *_state(owner))
    cache.put(b, *_state(owner))
    cache.put(a, *_state(owner))  # written again: now the most recent
    cache.put(c, *_state(owner))
    assert len(cache) == 2
    assert cache.take(b, owner) is None
    assert cache.take(a, owner) is not None and cache.take(c, owner) is not None
    off = SessionCache(0)
    off.put(a, *_state(owner))
    assert len(off) == 0
