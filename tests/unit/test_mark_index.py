"""The vectorised mark-to-market index agrees with itself: a full revaluation selects what the
ticks would, a floor trailing peak equity included."""

from __future__ import annotations

import math

import numpy as np

from services.challenges.domain.marking import MarkIndex


def _index() -> MarkIndex:
    index = MarkIndex()
    # A static floor at 9,000 and one trailing peak equity by 1,000, locking at 10,500.
    index.set_account("static", balance=10_000.0, floor=9_000.0, warn=-math.inf, peak=10_000.0)
    index.set_account(
        "trailing", balance=10_000.0, floor=9_000.0, warn=-math.inf, peak=10_000.0,
        trailing=True, trail_loss=1_000.0, trail_lock=10_500.0,
    )  # fmt: skip
    for cid in ("static", "trailing"):
        index.set_positions(cid, [("X", 1.0, 100.0, 100.0, math.nan, math.nan)])  # $100 a point
    return index


def _ids(index: MarkIndex, slots: np.ndarray) -> set[object]:
    return {index.ids[int(s)] for s in slots}


def test_a_full_revaluation_trails_the_peak_as_ticks_do() -> None:
    ticked, full = _index(), _index()
    ticked.on_price("X", 116.0, 116.0)  # equity 11,600: the trailing floor rises to its lock, 10,500
    judge, _, _ = ticked.on_price("X", 104.0, 104.0)  # 10,400: under it
    full.full_revaluation({"X": (116.0, 116.0)})
    candidates = full.full_revaluation({"X": (104.0, 104.0)})
    assert _ids(ticked, judge) == _ids(full, candidates) == {"trailing"}
    assert ticked.floor[full.slot_of["trailing"]] == full.floor[full.slot_of["trailing"]] == 10_500.0
    assert full.floor[full.slot_of["static"]] == 9_000.0
